#include "http/api/api_metrics.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <vector>

#include "http/api/log_line.h"
#include "usher/inspect.h"

#ifndef USHER_VERSION
#error "USHER_VERSION must be defined (adapters/CMakeLists.txt passes the project version)"
#endif

namespace usher::api {

namespace {

constexpr char kSep = '\x1f';

std::string key(std::initializer_list<std::string_view> parts) {
  std::string k;
  bool first = true;
  for (auto p : parts) {
    if (!first) k += kSep;
    first = false;
    k += p;
  }
  return k;
}

std::vector<std::string> split(const std::string& k) {
  std::vector<std::string> out(1);
  for (char c : k) {
    if (c == kSep)
      out.emplace_back();
    else
      out.back() += c;
  }
  return out;
}

// Label values are escaped as the exposition format requires: \ " and newline.
std::string escape(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string labels(std::initializer_list<std::string_view> names, const std::vector<std::string>& values,
                   std::string_view extra = {}) {
  std::string out = "{";
  size_t i = 0;
  for (auto n : names) {
    if (i) out += ',';
    out += n;
    out += "=\"";
    out += escape(i < values.size() ? values[i] : std::string());
    out += '"';
    ++i;
  }
  if (!extra.empty()) {
    if (i) out += ',';
    out += extra;
  }
  out += '}';
  return out;
}

// The shortest text that reads back as the same double ("0.0025", not "0.0025000000000000001").
std::string number(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, end) : std::string("NaN");
}

// Sorted copies, so a scrape lists series in a stable order.
template <typename V>
std::vector<std::pair<std::string, V>> sorted(const std::unordered_map<std::string, V>& m) {
  std::vector<std::pair<std::string, V>> v(m.begin(), m.end());
  std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return v;
}

void header(std::string& out, const char* name, const char* type, const char* help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

// The engine's stats may carry the time spent in COMMIT; not every version of
// EngineStats does, and the series is left out when it does not.
template <typename S>
void commit_seconds(std::string& out, const S& s) {
  if constexpr (requires { s.commit_micros_total; }) {
    header(out, "usher_log_commit_seconds_total", "counter", "Time spent committing (and syncing) the saga log.");
    out += "usher_log_commit_seconds_total " + number(static_cast<double>(s.commit_micros_total) / 1e6) + "\n";
  }
}

// The outcome of a StepFailed transition: its detail reads "outcome: error".
std::string_view failed_outcome(const std::string& detail) {
  std::string_view d = detail;
  size_t colon = d.find(':');
  std::string_view o = colon == std::string_view::npos ? d : d.substr(0, colon);
  if (o == "failed" || o == "transient" || o == "timeout") return o;
  return "failed";
}

std::string_view kind_label(CallKind k) { return k == CallKind::kCompensate ? "compensation" : "action"; }

// The statuses usher_sagas always lists, so a status with no saga reads 0
// rather than vanishing (an alert on stuck > 0 needs the series).
constexpr std::array<const char*, 6> kStatuses = {"running", "compensating", "completed",
                                                  "compensated", "stuck", "terminated"};

void histogram_lines(std::string& out, const char* name, std::initializer_list<std::string_view> names,
                     const std::vector<std::string>& lv, const std::array<uint64_t, 14>& buckets, uint64_t count,
                     double sum) {
  const std::string n = name;
  uint64_t cumulative = 0;
  for (size_t i = 0; i < ApiMetrics::kDurationBuckets.size(); ++i) {
    cumulative += buckets[i];
    out += n + "_bucket" + labels(names, lv, "le=\"" + number(ApiMetrics::kDurationBuckets[i]) + "\"") + " " +
           std::to_string(cumulative) + "\n";
  }
  out += n + "_bucket" + labels(names, lv, "le=\"+Inf\"") + " " + std::to_string(count) + "\n";
  out += n + "_sum" + labels(names, lv) + " " + number(sum) + "\n";
  out += n + "_count" + labels(names, lv) + " " + std::to_string(count) + "\n";
}

}  // namespace

void ApiMetrics::Histogram::add(double seconds) {
  size_t bucket =
      std::lower_bound(kDurationBuckets.begin(), kDurationBuckets.end(), seconds) - kDurationBuckets.begin();
  if (bucket < buckets.size()) ++buckets[bucket];
  ++count;
  sum += seconds;
}

void ApiMetrics::observe(const TransitionInfo& t) {
  const char* status = saga_status_name(t.status);
  switch (t.event) {
    case EventType::kSagaStarted: {
      std::string k = key({t.workflow, status});
      std::lock_guard lock(mu_);
      ++started_[t.workflow];
      ++transitions_[k];
      break;
    }
    case EventType::kSagaCompleted:
    case EventType::kSagaCompensated:
    case EventType::kSagaTerminated: {
      std::string k = key({t.workflow, status});
      std::lock_guard lock(mu_);
      ++finished_[k];
      ++transitions_[k];
      break;
    }
    case EventType::kSagaStuck:
    case EventType::kCompensationStarted:
    case EventType::kOperatorRetried:
    case EventType::kOperatorResolved: {
      std::string k = key({t.workflow, status});
      std::lock_guard lock(mu_);
      ++transitions_[k];
      break;
    }
    case EventType::kStepSucceeded:
    case EventType::kStepFailed: {
      std::string_view outcome = t.event == EventType::kStepSucceeded ? "ok" : failed_outcome(t.detail);
      std::string_view kind = kind_label(t.kind);
      std::string k = key({t.workflow, t.step, t.service, t.operation, kind, outcome});
      std::string hk = key({t.workflow, t.step, t.service, t.operation, kind});
      double seconds = static_cast<double>(std::max<int64_t>(0, t.latency_us)) / 1e6;
      std::lock_guard lock(mu_);
      ++attempts_[k];
      if (t.latency_us > 0) durations_[hk].add(seconds);
      break;
    }
    default:
      break;
  }
}

void ApiMetrics::observe_request(std::string_view method, std::string_view route, unsigned code, double seconds) {
  std::string k = key({method, route, std::to_string(code)});
  std::string hk = key({method, route});
  std::lock_guard lock(mu_);
  ++requests_[k];
  request_durations_[hk].add(std::max(0.0, seconds));
}

std::string ApiMetrics::render(Engine& engine) const {
  const EngineStats stats = engine.stats();
  auto counts = engine.saga_counts();
  if (!counts.is_ok()) spdlog::warn("metrics: cannot count sagas in the log: {}", counts.status().message());
  const auto publication = engine.publication();
  return render(stats, counts.is_ok() ? &counts.value() : nullptr, system_clock().now_us(),
                publication ? &*publication : nullptr);
}

std::string ApiMetrics::render(const EngineStats& stats, const Json* counts, int64_t now_us,
                               const PublicationStats* publication) const {
  std::string out;
  out.reserve(8192);

  if (counts && counts->is_object()) {
    const Json sagas = counts->value("sagas", Json::object());
    header(out, "usher_sagas", "gauge", "Sagas in the log by status, read at scrape time (every node's on a shared log).");
    for (const char* s : kStatuses) {
      const Json n = sagas.is_object() ? sagas.value(s, Json(0)) : Json(0);
      out += std::string("usher_sagas{status=\"") + s + "\"} " + std::to_string(n.is_number() ? n.get<int64_t>() : 0) +
             "\n";
    }
    double age = 0;
    const Json oldest = counts->value("oldest_unfinished_created_at", Json(nullptr));
    if (oldest.is_string()) {
      if (auto at = parse_time(oldest.get<std::string>()))
        age = static_cast<double>(std::max<int64_t>(0, now_us - *at)) / 1e6;
    }
    header(out, "usher_oldest_unfinished_saga_age_seconds", "gauge",
           "Age of the oldest running or compensating saga in the log; 0 when there is none.");
    out += "usher_oldest_unfinished_saga_age_seconds " + number(age) + "\n";
  }

  std::lock_guard lock(mu_);

  header(out, "usher_sagas_started_total", "counter", "Sagas started by this process, by workflow.");
  for (const auto& [k, v] : sorted(started_))
    out += "usher_sagas_started_total" + labels({"workflow"}, {k}) + " " + std::to_string(v) + "\n";

  header(out, "usher_sagas_finished_total", "counter", "Sagas that reached a terminal status in this process.");
  for (const auto& [k, v] : sorted(finished_))
    out += "usher_sagas_finished_total" + labels({"workflow", "status"}, split(k)) + " " + std::to_string(v) + "\n";

  header(out, "usher_saga_transitions_total", "counter",
         "Times a saga entered a status in this process (stuck counts every time; see usher_sagas for now).");
  for (const auto& [k, v] : sorted(transitions_))
    out += "usher_saga_transitions_total" + labels({"workflow", "status"}, split(k)) + " " + std::to_string(v) + "\n";

  header(out, "usher_sagas_in_memory", "gauge",
         "Unfinished sagas this engine holds in memory (not a count of the log: see usher_sagas).");
  out += "usher_sagas_in_memory " + std::to_string(stats.sagas_in_flight) + "\n";

  header(out, "usher_step_attempts_total", "counter",
         "Step attempts by service, operation, kind (action or compensation) and outcome.");
  for (const auto& [k, v] : sorted(attempts_))
    out += "usher_step_attempts_total" +
           labels({"workflow", "step", "service", "operation", "kind", "outcome"}, split(k)) + " " +
           std::to_string(v) + "\n";

  header(out, "usher_step_duration_seconds", "histogram", "Time from sending a step attempt to its result.");
  for (const auto& [k, h] : sorted(durations_))
    histogram_lines(out, "usher_step_duration_seconds", {"workflow", "step", "service", "operation", "kind"}, split(k), h.buckets, h.count, h.sum);

  header(out, "usher_api_requests_total", "counter", "Trigger API requests answered, by route template and status code.");
  for (const auto& [k, v] : sorted(requests_))
    out += "usher_api_requests_total" + labels({"method", "route", "code"}, split(k)) + " " + std::to_string(v) + "\n";

  header(out, "usher_api_request_duration_seconds", "histogram", "Time from a trigger API request to its response.");
  for (const auto& [k, h] : sorted(request_durations_))
    histogram_lines(out, "usher_api_request_duration_seconds", {"method", "route"}, split(k), h.buckets, h.count,
                    h.sum);

  header(out, "usher_log_commits_total", "counter", "Durable transactions of the saga log (group commits).");
  out += "usher_log_commits_total " + std::to_string(stats.commits) + "\n";
  header(out, "usher_log_events_total", "counter", "Events written to the saga log.");
  out += "usher_log_events_total " + std::to_string(stats.events_committed) + "\n";
  header(out, "usher_log_batch_events", "gauge", "Events per commit since start (events_total / commits_total).");
  out += "usher_log_batch_events " +
         number(stats.commits ? static_cast<double>(stats.events_committed) / static_cast<double>(stats.commits) : 0) +
         "\n";
  commit_seconds(out, stats);
  if (publication) {
    const std::string name = "{publication=\"" + escape(publication->name) + "\"}";
    header(out, "usher_publication_active", "gauge",
           "1 while this node publishes the event feed (0: another node does, or it is starting).");
    out += "usher_publication_active" + name + " " +
           (publication->state == "publishing" || publication->state == "stalled" ? "1" : "0") + "\n";
    header(out, "usher_publication_stalled", "gauge", "1 while publishing fails (a broker outage) and is retried.");
    out += "usher_publication_stalled" + name + " " + (publication->state == "stalled" ? "1" : "0") + "\n";
    header(out, "usher_publication_position", "gauge", "Feed position up to which every event is published.");
    out += "usher_publication_position" + name + " " + std::to_string(publication->position) + "\n";
    header(out, "usher_publication_lag_events", "gauge", "Committed events not yet published.");
    out += "usher_publication_lag_events" + name + " " + std::to_string(publication->lag_events) + "\n";
    header(out, "usher_publication_lag_seconds", "gauge", "Age of the oldest event not yet published; 0 when none.");
    out += "usher_publication_lag_seconds" + name + " " + number(publication->lag_seconds) + "\n";
    header(out, "usher_published_events_total", "counter", "Events this process published (acknowledged).");
    out += "usher_published_events_total" + name + " " + std::to_string(publication->published) + "\n";
    header(out, "usher_publish_failures_total", "counter", "Batches of events that failed to publish and were retried.");
    out += "usher_publish_failures_total" + name + " " + std::to_string(publication->failures) + "\n";
  }
  header(out, "usher_node_id", "gauge", "This node's id in the cluster on its PostgreSQL log; 0 when not a node.");
  out += "usher_node_id " + std::to_string(stats.node) + "\n";
  header(out, "usher_build_info", "gauge", "Always 1; the version of usher serving these metrics.");
  out += "usher_build_info{version=\"" + escape(USHER_VERSION) + "\"} 1\n";
  return out;
}

void log_transition(const TransitionInfo& t) {
  // The level and message first: a line below the logger's level costs no
  // JSON on the engine thread (most transitions are debug).
  spdlog::level::level_enum level = spdlog::level::info;
  std::string message;
  switch (t.event) {
    case EventType::kSagaStuck:
      level = spdlog::level::err;
      message = "saga stuck";
      break;
    case EventType::kSagaCompleted: message = "saga completed"; break;
    case EventType::kSagaCompensated: message = "saga compensated"; break;
    case EventType::kSagaTerminated: message = "saga terminated by an operator"; break;
    case EventType::kCancelRequested: message = "operator cancelled the saga"; break;
    case EventType::kOperatorRetried: message = "operator retried the saga"; break;
    case EventType::kOperatorResolved: message = "operator resolved the step"; break;
    default:
      level = spdlog::level::debug;
      message = std::string("saga ") + event_type_name(t.event);
      break;
  }
  if (!spdlog::should_log(level)) return;
  LogFields fields = {{"saga_id", t.saga_id},
                      {"workflow", t.workflow},
                      {"correlation_id", t.correlation_id},
                      {"event", event_type_name(t.event)},
                      {"status", saga_status_name(t.status)},
                      {"step", t.step},
                      {"detail", t.detail}};
  if (level == spdlog::level::debug) {
    if (!t.service.empty()) {
      fields["service"] = t.service;
      fields["operation"] = t.operation;
      fields["kind"] = kind_label(t.kind);
    }
    if (t.latency_us > 0) fields["latency_ms"] = static_cast<double>(t.latency_us) / 1e3;
  }
  spdlog::log(level, "{}", with_fields(message, fields));
}

}  // namespace usher::api
