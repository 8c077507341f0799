// Pages of usher's event feed over HTTP: GET /v1/events?after=&limit=&wait=
// (docs/api.md, "The event feed"), one request per page, on a new
// connection each time (a page every few seconds at most needs no pool).
#pragma once

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace booking_history {

struct FeedPage {
  std::vector<nlohmann::json> events;
  std::string next;  // the cursor to continue from
};

class HttpFeed {
 public:
  // `server` is http://HOST:PORT (https is not spoken: keep the reader next
  // to usher, or behind a proxy); `token` is sent as a Bearer token when not
  // empty. Throws std::invalid_argument for a URL it cannot use.
  HttpFeed(const std::string& server, std::string token);

  // The page after `cursor` (empty: from the start), at most `limit` events;
  // with `wait` > 0 the server holds an empty answer that long for new
  // events. nullopt with `error` set when there is no usable page; also when
  // `stop` turns true while waiting for the answer.
  std::optional<FeedPage> page(const std::string& cursor, int limit, std::chrono::milliseconds wait,
                               const std::atomic<bool>& stop, std::string& error);

 private:
  std::string host_, port_, prefix_, token_;
};

}  // namespace booking_history
