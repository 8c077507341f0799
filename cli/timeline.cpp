#include "timeline.h"

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "output.h"
#include "usher/event_data.h"

namespace usher::cli {

namespace {

// One event of the log, with the fields the timeline reads.
struct LogEvent {
  int64_t seq = 0;
  std::string type;
  std::string step;
  bool compensate = false;  // the event is about a compensation
  int64_t attempt = 0;
  int64_t at = 0;  // µs since the epoch
  Json data;
};

std::vector<LogEvent> read_events(const Json* events) {
  std::vector<LogEvent> out;
  if (!events || !events->is_object() || !events->contains("events") || !(*events)["events"].is_array()) return out;
  for (const Json& e : (*events)["events"]) {
    LogEvent ev;
    ev.seq = e.value("seq", int64_t{0});
    ev.type = string_at(e, "type").value_or("");
    ev.step = string_at(e, "step").value_or("");
    ev.at = time_at(e, "occurred_at").value_or(0);
    if (auto d = e.find("data"); d != e.end()) ev.data = *d;
    ev.compensate = event_call_kind(ev.data) == CallKind::kCompensate;
    ev.attempt = event_attempt(ev.data);
    out.push_back(std::move(ev));
  }
  return out;
}

std::string text_or_dash(const Json& object, const char* key) { return string_at(object, key).value_or("-"); }

std::string status_word(const std::string& status) { return paint(status, status_color(status)); }

// "3ms" between two RFC 3339 fields, or "" when either is missing.
std::string span(const Json& object, const char* from, const char* to) {
  auto a = time_at(object, from), b = time_at(object, to);
  return a && b ? format_elapsed(*b - *a) : "";
}

// A span the engine computed from a duration of the workflow (an attempt's
// timeout, a retry's backoff), so a whole number of ms: written exactly, as
// the workflow would write it ("5s", "1.5s").
std::string configured_span(int64_t micros) {
  return format_duration(Millis{std::max<int64_t>(micros, 0) / 1'000});
}

// The attempt-by-attempt lines of one call (a step's action or its compensation).
void print_attempts(std::ostream& out, const std::vector<LogEvent>& events, const std::string& step, bool compensate) {
  std::map<int64_t, int64_t> sent_at;  // attempt -> when it was scheduled
  const std::string indent = "       ";
  for (const LogEvent& e : events) {
    if (e.step != step) continue;
    // SagaStuck and OperatorRetried name the step and carry the kind too.
    if (e.compensate != compensate) continue;
    const std::string when = paint(clock_time(e.at), Color::kDim) + "  ";
    const std::string attempt = "attempt " + std::to_string(e.attempt);
    auto took = [&] {
      auto it = sent_at.find(e.attempt);
      return it == sent_at.end() ? std::string() : format_elapsed(e.at - it->second);
    };
    if (e.type == "StepScheduled") {
      sent_at[e.attempt] = e.at;
      std::string line = attempt + " scheduled";
      if (const int64_t deadline = read_step_scheduled(e.data).deadline; deadline != 0)
        line += " (timeout " + configured_span(deadline - e.at) + ")";
      out << indent << when << line << "\n";
    } else if (e.type == "StepSucceeded") {
      const std::string t = took();
      out << indent << when << attempt << " " << paint("succeeded", Color::kGreen) << (t.empty() ? "" : " in " + t)
          << "\n";
    } else if (e.type == "StepFailed") {
      const StepFailedData failed = read_step_failed(e.data);
      const std::string t = took();
      const std::string after = t.empty() ? "" : " after " + t;
      std::string line;
      if (failed.outcome == Outcome::kTimeout)
        line = attempt + " " + paint("timed out", Color::kRed) + after + ", outcome unknown";
      else if (failed.outcome == Outcome::kTransient)
        line = attempt + " " + paint("failed", Color::kRed) + " (transient)" + after;
      else line = attempt + " " + paint("failed", Color::kRed) + after;
      if (!failed.error.empty()) line += ": " + failed.error;
      out << indent << when << line << "\n";
    } else if (e.type == "RetryScheduled") {
      std::string line = "retry";
      if (const int64_t at = read_retry_scheduled(e.data).at; at != 0)
        line += " at " + clock_time(at) + " (in " + configured_span(at - e.at) + ")";
      out << indent << when << line << " as attempt " << e.attempt << "\n";
    } else if (e.type == "OperatorRetried") {
      out << indent << when << paint("retried by an operator", Color::kCyan) << "\n";
    } else if (e.type == "SagaStuck") {
      out << indent << when << paint("gave up: the saga is stuck", Color::kRed) << "\n";
    }
  }
}

std::string type_tag(const Json& step) {
  const std::string type = string_at(step, "type").value_or("compensatable");
  return type == "compensatable" ? "" : " (" + type + ")";
}

std::string attempts_text(const Json& object) {
  const int64_t n = object.value("attempts", int64_t{0});
  return n == 0 ? "" : plural(n, "attempt", "attempts");
}

void print_header(std::ostream& out, const Json& saga) {
  out << paint("saga " + text_or_dash(saga, "id"), Color::kBold) << "\n";
  auto field = [&](const char* label, const std::string& value) { out << "  " << pad_right(label, 13) << value << "\n"; };
  std::string workflow = text_or_dash(saga, "workflow");
  if (auto v = saga.find("version"); saga.is_object() && v != saga.end() && v->is_number_integer())
    workflow += " v" + std::to_string(v->get<int64_t>());
  const std::string status = text_or_dash(saga, "status");
  field("workflow", workflow);
  field("status", status_word(status));
  field("created", text_or_dash(saga, "created_at"));
  const std::string lasted = span(saga, "created_at", "updated_at");
  const bool settled = status == "completed" || status == "compensated" || status == "stuck";
  if (settled && !lasted.empty()) field("duration", lasted);
  if (!settled) field("updated", text_or_dash(saga, "updated_at") + (lasted.empty() ? "" : " (" + lasted + " after start)"));
  if (auto deadline = string_at(saga, "deadline"); deadline && !settled) field("deadline", *deadline);
  if (auto current = string_at(saga, "current_step"); current && status != "completed" && status != "compensated")
    field("current step", *current);
  field("correlation", text_or_dash(saga, "correlation_id"));
  if (auto key = string_at(saga, "idempotency_key")) field("idempotency", *key);
  if (auto input = saga.find("input"); saga.is_object() && input != saga.end() && !input->is_null())
    field("input", compact_json(*input));
  if (auto error = string_at(saga, "error")) field("error", paint(*error, Color::kRed));
}

// "call     payments.charge over kafka": which service a step or compensation
// calls, and how it gets there.
void print_call(std::ostream& out, const Json& part) {
  auto call = string_at(part, "call");
  if (!call) return;
  auto transport = string_at(part, "transport");
  out << "       call     " << *call << (transport ? " over " + *transport : "") << "\n";
}

void print_steps(std::ostream& out, const Json& steps, const std::vector<LogEvent>& events) {
  out << "\n" << paint("steps", Color::kBold) << "\n";
  size_t width = 0;
  for (const Json& s : steps) width = std::max(width, display_width(text_or_dash(s, "name") + type_tag(s)));
  int n = 0;
  for (const Json& s : steps) {
    const std::string name = text_or_dash(s, "name");
    const std::string status = text_or_dash(s, "status");
    std::string line = "  " + pad_right(std::to_string(++n), 3) + pad_right(name + type_tag(s), width + 2) +
                       pad_right(status_word(status), 13) + pad_right(attempts_text(s), 12) +
                       span(s, "started_at", "finished_at");
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << "\n";
    print_call(out, s);
    if (auto output = s.find("output"); output != s.end() && !output->is_null())
      out << "       output   " << compact_json(*output) << "\n";
    if (auto error = string_at(s, "error")) out << "       error    " << paint(*error, Color::kRed) << "\n";
    print_attempts(out, events, name, /*compensate=*/false);
  }
}

// Compensations in the order they ran: by the first time each was scheduled in
// the log; steps planned but not yet reached follow, in plan order. Without
// events, the plan is reverse step order (how usher always compensates).
std::vector<std::string> compensation_order(const Json& steps, const std::vector<LogEvent>& events) {
  std::vector<std::string> order;
  auto add = [&](const std::string& name) {
    if (!name.empty() && std::find(order.begin(), order.end(), name) == order.end()) order.push_back(name);
  };
  for (const LogEvent& e : events)
    if (e.type == "StepScheduled" && e.compensate) add(e.step);
  for (const LogEvent& e : events) {
    if (e.type != "CompensationStarted") continue;
    for (const std::string& name : read_compensation_started(e.data).steps) add(name);
  }
  for (auto it = steps.rbegin(); it != steps.rend(); ++it)
    if (it->is_object() && it->contains("compensation") && !(*it)["compensation"].is_null())
      add(text_or_dash(*it, "name"));
  return order;
}

void print_compensations(std::ostream& out, const Json& steps, const std::vector<LogEvent>& events) {
  const std::vector<std::string> order = compensation_order(steps, events);
  if (order.empty()) return;
  out << "\n" << paint("compensations", Color::kBold) << " (in the order they ran)\n";
  size_t width = 0;
  for (const std::string& name : order) width = std::max(width, display_width(name));
  int n = 0;
  for (const std::string& name : order) {
    const Json* step = nullptr;
    for (const Json& s : steps)
      if (string_at(s, "name") == name) step = &s;
    const Json comp = step && step->contains("compensation") ? (*step)["compensation"] : Json();
    std::string line = "  " + pad_right(std::to_string(++n), 3) + pad_right(name, width + 2);
    if (comp.is_null()) {
      line += status_word("pending");
    } else {
      line += pad_right(status_word(text_or_dash(comp, "status")), 13) + pad_right(attempts_text(comp), 12) +
              span(comp, "started_at", "finished_at");
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << "\n";
    print_call(out, comp);
    if (auto error = string_at(comp, "error")) out << "       error    " << paint(*error, Color::kRed) << "\n";
    print_attempts(out, events, name, /*compensate=*/true);
  }
}

void print_saga_events(std::ostream& out, const std::vector<LogEvent>& events) {
  std::vector<std::string> lines;
  for (const LogEvent& e : events) {
    std::string what;
    if (e.type == "SagaStarted") what = "started";
    else if (e.type == "CancelRequested") what = paint("cancel requested", Color::kYellow);
    else if (e.type == "CompensationStarted")
      what = paint("compensation started", Color::kYellow) + ": " +
             (e.data.contains("reason") ? read_compensation_started(e.data).reason : std::string("?"));
    else if (e.type == "SagaCompleted") what = paint("completed", Color::kGreen);
    else if (e.type == "SagaCompensated") what = paint("compensated", Color::kYellow);
    else if (e.type == "SagaStuck")
      what = paint("stuck", Color::kRed) + (e.step.empty() ? "" : " at step \"" + e.step + "\"") +
             (e.data.contains("error") ? ": " + read_saga_stuck(e.data).error : "");
    else if (e.type == "OperatorRetried") what = "retried by an operator (step \"" + e.step + "\")";
    else continue;
    lines.push_back("  " + paint(clock_time(e.at), Color::kDim) + "  " + what);
  }
  if (lines.empty()) return;
  out << "\n" << paint("saga events", Color::kBold) << "\n";
  for (const std::string& line : lines) out << line << "\n";
}

}  // namespace

void render_timeline(std::ostream& out, const Json& saga, const Json* events) {
  const std::vector<LogEvent> log = read_events(events);
  print_header(out, saga);
  const Json steps = saga.is_object() && saga.contains("steps") && saga["steps"].is_array() ? saga["steps"] : Json::array();
  print_steps(out, steps, log);
  print_compensations(out, steps, log);
  print_saga_events(out, log);
}

}  // namespace usher::cli
