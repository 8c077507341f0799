// One event of usher's feed (docs/api.md, "The event feed"), checked: the
// fields every event carries, so the read model never has to look twice.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace booking_history {

struct FeedEvent {
  std::string saga_id;
  std::string workflow;
  int64_t seq = 0;
  std::string type;
  std::string step;  // empty for saga-level events (`"step": null`)
  nlohmann::json data;  // always an object
  std::string occurred_at;
};

// The event in `j`, or nullopt with `why` set when it is not an object or a
// field is missing or of the wrong type. The feed's own `cursor` is not
// needed here: a page's `next` covers it, and Kafka messages have offsets.
std::optional<FeedEvent> parse_feed_event(const nlohmann::json& j, std::string& why);

}  // namespace booking_history
