#include "http/api/api_metrics.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <vector>

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

}  // namespace

void ApiMetrics::observe(const TransitionInfo& t) {
  switch (t.event) {
    case EventType::kSagaStarted: {
      std::lock_guard lock(mu_);
      ++started_[t.workflow];
      break;
    }
    case EventType::kSagaCompleted:
    case EventType::kSagaCompensated:
    case EventType::kSagaTerminated: {
      const char* status = saga_status_name(t.status);
      std::string k = key({t.workflow, status});
      std::lock_guard lock(mu_);
      ++finished_[k];
      break;
    }
    case EventType::kSagaStuck: {
      std::lock_guard lock(mu_);
      ++stuck_[t.workflow];
      break;
    }
    case EventType::kStepSucceeded:
    case EventType::kStepFailed: {
      std::string_view outcome = t.event == EventType::kStepSucceeded ? "ok" : failed_outcome(t.detail);
      std::string k = key({t.workflow, t.step, outcome});
      std::string hk = key({t.workflow, t.step});
      double seconds = static_cast<double>(std::max<int64_t>(0, t.latency_us)) / 1e6;
      size_t bucket = std::lower_bound(kDurationBuckets.begin(), kDurationBuckets.end(), seconds) -
                      kDurationBuckets.begin();
      std::lock_guard lock(mu_);
      ++attempts_[k];
      if (t.latency_us > 0) {
        Histogram& h = durations_[hk];
        if (bucket < h.buckets.size()) ++h.buckets[bucket];
        ++h.count;
        h.sum += seconds;
      }
      break;
    }
    default:
      break;
  }
}

std::string ApiMetrics::render(const EngineStats& stats) const {
  std::string out;
  out.reserve(4096);
  std::lock_guard lock(mu_);

  header(out, "usher_sagas_started_total", "counter", "Sagas started, by workflow.");
  for (const auto& [k, v] : sorted(started_))
    out += "usher_sagas_started_total" + labels({"workflow"}, {k}) + " " + std::to_string(v) + "\n";

  header(out, "usher_sagas_finished_total", "counter", "Sagas that reached a terminal status.");
  for (const auto& [k, v] : sorted(finished_))
    out += "usher_sagas_finished_total" + labels({"workflow", "status"}, split(k)) + " " + std::to_string(v) + "\n";

  header(out, "usher_sagas_stuck_total", "counter", "Times a saga became stuck and waited for an operator.");
  for (const auto& [k, v] : sorted(stuck_))
    out += "usher_sagas_stuck_total" + labels({"workflow"}, {k}) + " " + std::to_string(v) + "\n";

  header(out, "usher_sagas_in_flight", "gauge", "Non-terminal sagas held by the engine.");
  out += "usher_sagas_in_flight " + std::to_string(stats.sagas_in_flight) + "\n";

  header(out, "usher_step_attempts_total", "counter", "Step attempts (actions and compensations) by outcome.");
  for (const auto& [k, v] : sorted(attempts_))
    out += "usher_step_attempts_total" + labels({"workflow", "step", "outcome"}, split(k)) + " " +
           std::to_string(v) + "\n";

  header(out, "usher_step_duration_seconds", "histogram", "Time from sending a step attempt to its result.");
  for (const auto& [k, h] : sorted(durations_)) {
    std::vector<std::string> lv = split(k);
    uint64_t cumulative = 0;
    for (size_t i = 0; i < kDurationBuckets.size(); ++i) {
      cumulative += h.buckets[i];
      out += "usher_step_duration_seconds_bucket" +
             labels({"workflow", "step"}, lv, "le=\"" + number(kDurationBuckets[i]) + "\"") + " " +
             std::to_string(cumulative) + "\n";
    }
    out += "usher_step_duration_seconds_bucket" + labels({"workflow", "step"}, lv, "le=\"+Inf\"") + " " +
           std::to_string(h.count) + "\n";
    out += "usher_step_duration_seconds_sum" + labels({"workflow", "step"}, lv) + " " + number(h.sum) + "\n";
    out += "usher_step_duration_seconds_count" + labels({"workflow", "step"}, lv) + " " + std::to_string(h.count) +
           "\n";
  }

  header(out, "usher_log_commits_total", "counter", "Durable transactions of the saga log (group commits).");
  out += "usher_log_commits_total " + std::to_string(stats.commits) + "\n";
  header(out, "usher_log_events_total", "counter", "Events written to the saga log.");
  out += "usher_log_events_total " + std::to_string(stats.events_committed) + "\n";
  header(out, "usher_log_batch_events", "gauge", "Events per commit since start (events_total / commits_total).");
  out += "usher_log_batch_events " +
         number(stats.commits ? static_cast<double>(stats.events_committed) / static_cast<double>(stats.commits) : 0) +
         "\n";
  commit_seconds(out, stats);
  header(out, "usher_node_id", "gauge", "This node's id in the cluster on its PostgreSQL log; 0 when not a node.");
  out += "usher_node_id " + std::to_string(stats.node) + "\n";
  return out;
}

void log_transition(const TransitionInfo& t) {
  const char* event = event_type_name(t.event);
  const char* status = saga_status_name(t.status);
  switch (t.event) {
    case EventType::kSagaStuck:
      spdlog::error("saga {} ({}): {} step={} status={} {}", t.saga_id, t.workflow, event, t.step, status, t.detail);
      break;
    case EventType::kStepFailed:
      spdlog::warn("saga {} ({}): {} step={} status={} {}", t.saga_id, t.workflow, event, t.step, status, t.detail);
      break;
    default:
      spdlog::info("saga {} ({}): {} step={} status={}{}{}", t.saga_id, t.workflow, event,
                   t.step.empty() ? "-" : t.step, status, t.detail.empty() ? "" : " ", t.detail);
      break;
  }
}

}  // namespace usher::api
