#include "http/api/feed_query.h"

#include <algorithm>
#include <charconv>

namespace usher::api {

namespace {
constexpr size_t kMaxLimit = 1000;
}  // namespace

Result<FeedQuery> parse_feed_query(const std::map<std::string, std::string>& query, Millis max_wait, bool stream) {
  FeedQuery q;
  for (const auto& [name, value] : query) {
    if (name == "after") {
      q.after = value;
    } else if (name == "limit" && !stream) {
      if (value.empty()) continue;
      size_t n = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc() || end != value.data() + value.size() || n < 1 || n > kMaxLimit)
        return Status::invalid_argument("limit=\"" + value + "\" must be an integer from 1 to " +
                                        std::to_string(kMaxLimit));
      q.limit = n;
    } else if (name == "wait" && !stream) {
      if (value.empty()) continue;
      auto w = parse_duration(value);
      if (!w)
        return Status::invalid_argument("wait=\"" + value + "\" is not a duration; use e.g. 250ms, 10s or 1m (at most " +
                                        std::to_string(max_wait.count() / 1000) + "s)");
      q.wait = std::min(*w, max_wait);
    } else {
      return Status::invalid_argument("unknown query parameter \"" + name + "\"; " +
                                      (stream ? "GET /v1/events/stream accepts after"
                                              : "GET /v1/events accepts after, limit and wait"));
    }
  }
  return q;
}

}  // namespace usher::api
