#include "feed_event.h"

namespace booking_history {

std::optional<FeedEvent> parse_feed_event(const nlohmann::json& j, std::string& why) {
  if (!j.is_object()) {
    why = j.is_discarded() ? "not JSON" : "not a JSON object";
    return std::nullopt;
  }
  auto text = [&](const char* name, std::string& out) {
    auto it = j.find(name);
    if (it == j.end() || !it->is_string() || it->get_ref<const std::string&>().empty()) {
      why = std::string("\"") + name + "\" is missing or not a non-empty string";
      return false;
    }
    out = it->get<std::string>();
    return true;
  };
  FeedEvent e;
  if (!text("saga_id", e.saga_id) || !text("workflow", e.workflow) || !text("type", e.type) ||
      !text("occurred_at", e.occurred_at))
    return std::nullopt;
  auto seq = j.find("seq");
  // seq counts from 1; it is the idempotency key with saga_id, so it must be exact.
  if (seq == j.end() || !seq->is_number_integer() || seq->get<int64_t>() < 1) {
    why = "\"seq\" is missing or not a positive integer";
    return std::nullopt;
  }
  e.seq = seq->get<int64_t>();
  auto step = j.find("step");
  if (step != j.end() && step->is_string()) {
    e.step = step->get<std::string>();
  } else if (step != j.end() && !step->is_null()) {
    why = "\"step\" is neither a string nor null";
    return std::nullopt;
  }
  auto data = j.find("data");
  if (data == j.end() || !data->is_object()) {
    why = "\"data\" is missing or not an object";
    return std::nullopt;
  }
  e.data = *data;
  return e;
}

}  // namespace booking_history
