#include "booking.h"

#include <chrono>
#include <cstdio>

namespace booking_history {

namespace {

std::optional<std::string> string_field(const nlohmann::json& obj, const char* name) {
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return std::nullopt;
  // An input value that is not a string (the schema only requires it to be
  // there) is kept as its JSON text rather than lost.
  return it->is_string() ? it->get<std::string>() : it->dump();
}

std::string data_text(const FeedEvent& e, const char* name) {
  auto it = e.data.find(name);
  return it != e.data.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// "action" or "compensate"; an action unless it says otherwise, as the engine reads it.
bool is_compensation(const FeedEvent& e) { return data_text(e, "kind") == "compensate"; }

// "step: error". Adapters often name the step themselves ("step \"pay\"
// (payments.charge): card declined"): said once, as "pay: payments.charge:
// card declined", so equal causes group together in compensation_reasons.
std::string step_error(const FeedEvent& e) {
  std::string error = data_text(e, "error");
  if (e.step.empty()) return error;
  const std::string named = "step \"" + e.step + "\"";
  if (error.rfind(named, 0) == 0) {
    error.erase(0, named.size());
    if (error.rfind(" (", 0) == 0) {
      const size_t close = error.find(')');
      if (close != std::string::npos) error = error.substr(2, close - 2) + error.substr(close + 1);
    }
    if (error.rfind(": ", 0) == 0) error.erase(0, 2);
    while (!error.empty() && error.front() == ' ') error.erase(0, 1);
  }
  return e.step + ": " + error;
}

void confirmed(Booking& b, const FeedEvent& e, const nlohmann::json& output, std::vector<std::string>& warnings) {
  auto ticket = output.is_object() ? output.find("ticketId") : output.end();
  if (output.is_object() && ticket != output.end() && ticket->is_string()) {
    b.ticket_id = ticket->get<std::string>();
  } else {
    warnings.push_back("confirm succeeded without a \"ticketId\" string in its output");
  }
  b.confirmed_at = e.occurred_at;
  auto start = b.started_at ? parse_utc_ms(*b.started_at) : std::nullopt;
  auto end = parse_utc_ms(e.occurred_at);
  if (start && end) b.confirm_ms = *end - *start;
}

// Leaving `stuck` by an operator's action: back to the direction it was going.
void resumed(Booking& b, const FeedEvent& e) {
  b.outcome.reset();
  if (is_compensation(e)) {
    b.status = "compensating";
    b.reason = b.compensation_reason;
  } else {
    b.status = "running";
    b.reason.reset();
  }
}

void ended(Booking& b, const FeedEvent& e, const char* status) {
  b.status = status;
  b.outcome = status;
  b.finished_at = e.occurred_at;
}

}  // namespace

void fold(Booking& b, const FeedEvent& e, std::vector<std::string>& warnings) {
  const std::string& t = e.type;
  if (t == "SagaStarted") {
    b.status = "running";
    b.started_at = e.occurred_at;
    auto input = e.data.find("input");
    if (input == e.data.end() || !input->is_object()) {
      warnings.push_back("SagaStarted without an \"input\" object");
    } else {
      b.user_id = string_field(*input, "userId");
      b.concert_id = string_field(*input, "concertId");
      b.seat = string_field(*input, "seat");
      auto amount = input->find("amount");
      b.amount = amount != input->end() && amount->is_number() ? *amount : nlohmann::json();
    }
  } else if (t == "StepSucceeded") {
    if (!is_compensation(e)) {
      b.failure.reset();
      if (e.step == "confirm") confirmed(b, e, e.data.value("output", nlohmann::json()), warnings);
    }
  } else if (t == "StepFailed") {
    // Only an action's failure can be why the booking is undone.
    if (!is_compensation(e)) b.failure = step_error(e);
  } else if (t == "RetryScheduled") {
    // Retried: that failure was not the end of it.
    if (!is_compensation(e)) b.failure.reset();
  } else if (t == "CancelRequested") {
    // The compensation that follows is the cancel's, whatever failed before.
    b.failure.reset();
  } else if (t == "CompensationStarted") {
    b.status = "compensating";
    // The failed step and its error says more than the engine's sentence
    // about it; a cancel or the deadline has only the sentence.
    b.compensation_reason = b.failure ? b.failure : std::optional<std::string>(data_text(e, "reason"));
    b.reason = b.compensation_reason;
  } else if (t == "SagaCompleted") {
    ended(b, e, "completed");
    b.reason.reset();
  } else if (t == "SagaCompensated") {
    ended(b, e, "compensated");
    b.reason = b.compensation_reason;
  } else if (t == "SagaStuck") {
    b.status = "stuck";
    b.outcome = "stuck";
    b.reason = step_error(e);
  } else if (t == "OperatorRetried") {
    resumed(b, e);
  } else if (t == "OperatorResolved") {
    resumed(b, e);
    if (!is_compensation(e) && e.step == "confirm" && data_text(e, "outcome") == "succeeded")
      confirmed(b, e, e.data.value("output", nlohmann::json()), warnings);
  } else if (t == "SagaTerminated") {
    ended(b, e, "terminated");
    b.reason = data_text(e, "reason");
  } else if (t != "StepScheduled") {
    warnings.push_back("unknown event type \"" + t + "\": ignored");
  }
  b.last_seq = e.seq;
}

std::optional<int64_t> parse_utc_ms(const std::string& text) {
  int y, mo, d, h, mi, s, n = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &n) != 6 || n != 19)
    return std::nullopt;
  // Fractional seconds (any number of digits; milliseconds kept), then Z.
  int64_t ms = 0;
  size_t i = 19;
  if (i < text.size() && text[i] == '.') {
    int digits = 0;
    for (++i; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i, ++digits)
      if (digits < 3) ms = ms * 10 + (text[i] - '0');
    if (digits == 0) return std::nullopt;
    for (; digits < 3; ++digits) ms *= 10;
  }
  if (i + 1 != text.size() || (text[i] != 'Z' && text[i] != 'z')) return std::nullopt;
  const std::chrono::year_month_day ymd{std::chrono::year(y), std::chrono::month(static_cast<unsigned>(mo)),
                                        std::chrono::day(static_cast<unsigned>(d))};
  if (!ymd.ok() || h > 23 || mi > 59 || s > 60) return std::nullopt;
  const auto days = std::chrono::sys_days(ymd).time_since_epoch().count();
  return ((static_cast<int64_t>(days) * 24 + h) * 60 + mi) * 60'000 + static_cast<int64_t>(s) * 1000 + ms;
}

}  // namespace booking_history
