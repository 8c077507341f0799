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

// ` by token:1a2b3c4d: "refunded by hand"`: who acted and why, from an
// operator event's data (OperatorRetried, OperatorResolved, SagaTerminated,
// CancelRequested); empty when the event carries neither.
std::string actor_and_note(const Json& data, const char* note_key = "note") {
  std::string text;
  if (auto actor = string_at(data, "actor")) text += " by " + *actor;
  if (auto note = string_at(data, note_key); note && !note->empty()) text += ": \"" + *note + "\"";
  return text;
}

// The reason a forward step's failure gives for compensating reads
// `step "pay" failed: ` + the step's error, and the adapters' errors already
// begin with the step (`step "pay": HTTP 422 …`, `step "pay" (payments.charge):
// …`): written once, `step "pay" failed: HTTP 422 …`, `step "pay"
// (payments.charge) failed: …`. Logs written before the engine stopped
// doubling it read the same.
std::string undoubled(const std::string& text) {
  if (text.rfind("step \"", 0) != 0) return text;
  const size_t name_end = text.find('"', 6);
  if (name_end == std::string::npos) return text;
  const std::string name = text.substr(6, name_end - 6);
  const std::string outer = "step \"" + name + "\" failed: ", inner = "step \"" + name + "\"";
  if (text.compare(0, outer.size() + inner.size(), outer + inner) != 0) return text;
  const std::string rest = text.substr(outer.size() + inner.size());  // ": …" or " (payments.charge): …"
  const size_t colon = rest.find(": ");
  if (colon == std::string::npos || (colon != 0 && rest[0] != ' ')) return text;
  return inner + rest.substr(0, colon) + " failed: " + rest.substr(colon + 2);
}

// The last operator action (OperatorRetried, OperatorResolved) on one call
// of `step` that came after its last failure: its time, or 0. The call's
// error is then history, not its current state.
int64_t retried_after_failure(const std::vector<LogEvent>& events, const std::string& step, bool compensate) {
  int64_t acted = 0;
  for (const LogEvent& e : events) {
    if (e.step != step || e.compensate != compensate) continue;
    if (e.type == "StepFailed") acted = 0;
    else if (e.type == "OperatorRetried" || e.type == "OperatorResolved") acted = e.at;
  }
  return acted;
}

// The same for the saga: an operator action after the last event that set
// the saga's error (a failure, a compensation's reason, the saga stuck).
int64_t saga_retried_after_failure(const std::vector<LogEvent>& events) {
  int64_t acted = 0;
  for (const LogEvent& e : events) {
    if (e.type == "StepFailed" || e.type == "CompensationStarted" || e.type == "SagaStuck") acted = 0;
    else if (e.type == "OperatorRetried" || e.type == "OperatorResolved") acted = e.at;
  }
  return acted;
}

// "error    …" under a step or compensation: its last error, or, when an
// operator acted on it since, that error marked as the one before.
void print_error(std::ostream& out, const std::string& error, int64_t acted_at) {
  if (acted_at == 0) {
    out << "       error    " << paint(error, Color::kRed) << "\n";
    return;
  }
  out << "       earlier  " << paint(error + " (before the operator acted at " + clock_time(acted_at) + ")", Color::kDim)
      << "\n";
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
      // The same attempt scheduled twice: a restart (or another node taking
      // the saga over) sent it again with the same idempotency key.
      const bool again = sent_at.count(e.attempt) != 0;
      sent_at[e.attempt] = e.at;
      std::string line = attempt + (again ? " " + paint("sent again after a restart", Color::kYellow) : " scheduled");
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
      // Resent after a restart: the send before it may have reached the service.
      if (failed.may_have_happened) line += " " + paint("[resent after a restart: it may have happened]", Color::kYellow);
      out << indent << when << line << "\n";
    } else if (e.type == "RetryScheduled") {
      std::string line = "retry";
      if (const int64_t at = read_retry_scheduled(e.data).at; at != 0)
        line += " at " + clock_time(at) + " (in " + configured_span(at - e.at) + ")";
      out << indent << when << line << " as attempt " << e.attempt << "\n";
    } else if (e.type == "OperatorRetried") {
      out << indent << when << paint("retried by an operator", Color::kCyan) << actor_and_note(e.data)
          << " (a fresh retry budget)\n";
    } else if (e.type == "OperatorResolved") {
      const std::string outcome = string_at(e.data, "outcome").value_or("?");
      out << indent << when << paint("resolved as " + outcome + " by an operator", Color::kCyan) << actor_and_note(e.data)
          << "\n";
      if (auto output = e.data.find("output"); e.data.is_object() && output != e.data.end() && !output->is_null())
        out << indent << "              output stated: " << compact_json(*output) << "\n";
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

void print_header(std::ostream& out, const Json& saga, const std::vector<LogEvent>& events) {
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
  // Only a saga that ended has a duration; a stuck one is waiting, not done.
  const bool ended = status == "completed" || status == "compensated" || status == "terminated";
  if (ended && !lasted.empty()) field("duration", lasted);
  if (status == "stuck") {
    field("stuck since", text_or_dash(saga, "updated_at"));
  } else if (!ended) {
    field("updated", text_or_dash(saga, "updated_at") + (lasted.empty() ? "" : " (" + lasted + " after start)"));
    if (auto deadline = string_at(saga, "deadline")) field("deadline", *deadline);
  }
  if (auto current = string_at(saga, "current_step"); current && !ended) field("current step", *current);
  field("correlation", text_or_dash(saga, "correlation_id"));
  if (auto key = string_at(saga, "idempotency_key")) field("idempotency", *key);
  if (auto input = saga.find("input"); saga.is_object() && input != saga.end() && !input->is_null())
    field("input", compact_json(*input));
  if (auto error = string_at(saga, "error")) {
    // After an operator's retry or resolve the saga runs again: its last
    // error is history until something fails anew.
    const int64_t acted = status == "running" || status == "compensating" ? saga_retried_after_failure(events) : 0;
    if (acted == 0) field("error", paint(undoubled(*error), Color::kRed));
    else field("last error", paint(undoubled(*error) + " (before the operator acted at " + clock_time(acted) + ")", Color::kDim));
  }
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
    if (auto error = string_at(s, "error")) {
      const bool current = status != "running" && status != "pending";
      print_error(out, *error, current ? 0 : retried_after_failure(events, name, /*compensate=*/false));
    }
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
    if (auto error = string_at(comp, "error")) {
      const bool current = text_or_dash(comp, "status") != "running";
      print_error(out, *error, current ? 0 : retried_after_failure(events, name, /*compensate=*/true));
    }
    print_attempts(out, events, name, /*compensate=*/true);
  }
}

void print_saga_events(std::ostream& out, const std::vector<LogEvent>& events) {
  std::vector<std::string> lines;
  for (const LogEvent& e : events) {
    std::string what;
    const std::string on_step = e.step.empty() ? "" : " (step \"" + e.step + "\"" + (e.compensate ? ", compensation" : "") + ")";
    if (e.type == "SagaStarted") what = "started";
    else if (e.type == "CancelRequested") what = paint("cancel requested", Color::kYellow) + actor_and_note(e.data);
    else if (e.type == "CompensationStarted")
      what = paint("compensation started", Color::kYellow) + ": " +
             (e.data.contains("reason") ? undoubled(read_compensation_started(e.data).reason) : std::string("?"));
    else if (e.type == "SagaCompleted") what = paint("completed", Color::kGreen);
    else if (e.type == "SagaCompensated") what = paint("compensated", Color::kYellow);
    else if (e.type == "SagaStuck")
      what = paint("stuck", Color::kRed) + (e.step.empty() ? "" : " at step \"" + e.step + "\"") +
             (e.data.contains("error") ? ": " + read_saga_stuck(e.data).error : "");
    else if (e.type == "OperatorRetried") what = paint("retried by an operator", Color::kCyan) + on_step + actor_and_note(e.data);
    else if (e.type == "OperatorResolved")
      what = paint("resolved by an operator", Color::kCyan) + on_step + ": " +
             string_at(e.data, "outcome").value_or("?") + actor_and_note(e.data);
    else if (e.type == "SagaTerminated")
      what = paint("terminated by an operator", Color::kRed) + actor_and_note(e.data, "reason");
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
  print_header(out, saga, log);
  const Json steps = saga.is_object() && saga.contains("steps") && saga["steps"].is_array() ? saga["steps"] : Json::array();
  print_steps(out, steps, log);
  print_compensations(out, steps, log);
  print_saga_events(out, log);
}

}  // namespace usher::cli
