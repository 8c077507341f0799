// A booking as the read model keeps it, and how each event of its saga
// changes it: the projection itself, free of storage so it can be read (and
// replayed) on its own.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "feed_event.h"

namespace booking_history {

// The workflow this read model is about. Events of other workflows are not
// kept (their sagas are no bookings); the reader counts and drops them.
inline constexpr const char* kWorkflow = "concert-booking";

struct Booking {
  std::string saga_id;
  std::string status = "running";  // running, compensating, completed, compensated, stuck, terminated
  std::optional<std::string> user_id, concert_id, seat;
  nlohmann::json amount;  // as the input gave it: a number, or null when absent or redacted
  std::optional<std::string> started_at, finished_at;
  std::optional<std::string> outcome;  // completed, compensated, terminated; stuck while an operator is awaited
  std::optional<std::string> reason;   // why it compensated, is stuck or was terminated
  std::optional<std::string> ticket_id, confirmed_at;
  std::optional<int64_t> confirm_ms;  // from SagaStarted to the confirm step's success
  int64_t last_seq = 0;               // every event up to this seq is applied: the idempotency key

  // Working state, stored so that an event applied in a later run (or a
  // rebuild) folds exactly as it would have in one go:
  std::optional<std::string> failure;              // "step: error" of a failed action not retried (yet)
  std::optional<std::string> compensation_reason;  // why its compensation started
};

// Applies `e` (of this booking's saga, seq = last_seq + 1 or later) to `b`.
// Problems that do not stop the event (an unknown type, a field of the wrong
// type) are appended to `warnings`; the event still counts as applied.
void fold(Booking& b, const FeedEvent& e, std::vector<std::string>& warnings);

// Milliseconds since the epoch of an RFC 3339 UTC time as usher writes it
// ("2026-11-21T05:25:00.123Z"), or nullopt when it is not one.
std::optional<int64_t> parse_utc_ms(const std::string& text);

}  // namespace booking_history
