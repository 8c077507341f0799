#include "view/feed_view.h"

#include <charconv>
#include <string>

#include "view/saga_view.h"

namespace usher {

std::optional<int64_t> parse_feed_cursor(std::string_view cursor) {
  if (cursor.empty()) return 0;
  // Digits only: from_chars would also take a sign.
  if (cursor.size() > 18 || cursor.find_first_not_of("0123456789") != std::string_view::npos) return std::nullopt;
  int64_t position = 0;
  auto [end, ec] = std::from_chars(cursor.data(), cursor.data() + cursor.size(), position);
  if (ec != std::errc() || end != cursor.data() + cursor.size()) return std::nullopt;
  return position;
}

std::string feed_cursor(int64_t position) { return std::to_string(position); }

Json feed_event_to_json(const CommittedEvent& c) {
  // The event as GET /v1/sagas/{id}/events shows it, and where it is from.
  Json out = event_to_json(c.event);
  out["cursor"] = feed_cursor(c.position);
  out["saga_id"] = c.event.saga_id;
  out["workflow"] = c.workflow;
  return out;
}

Json feed_page_to_json(const std::vector<CommittedEvent>& events, int64_t after) {
  Json list = Json::array();
  for (const CommittedEvent& c : events) list.push_back(feed_event_to_json(c));
  const int64_t next = events.empty() ? after : events.back().position;
  return {{"events", std::move(list)}, {"next", feed_cursor(next)}};
}

}  // namespace usher
