// The query of the event feed (docs/api.md, "The event feed"):
//
//   GET /v1/events         after  a cursor: an event's "cursor" or a page's
//                                 `next` (absent or empty: from the start)
//                          limit  1 .. 1000 events per page (default 100)
//                          wait   how long to wait when nothing is new
//                                 ("10s"; default 0: answer at once), capped
//                                 at the server's longest wait
//   GET /v1/events/stream  after  as above; a Last-Event-ID header (what a
//                                 reconnecting EventSource sends) wins
//
// Anything else is refused with a message naming the parameter, so a typo
// (`?cursor=`) never silently reads the feed from the start.
#pragma once

#include <cstddef>
#include <map>
#include <string>

#include "usher/duration.h"
#include "usher/status.h"

namespace usher::api {

struct FeedQuery {
  std::string after;  // checked by the engine: a malformed cursor is a 400 there
  size_t limit = 100;
  Millis wait{0};
};

// kInvalidArgument (answered as 400) names the parameter that is wrong.
// `stream`: the query of /v1/events/stream, which takes `after` alone.
Result<FeedQuery> parse_feed_query(const std::map<std::string, std::string>& query, Millis max_wait, bool stream);

}  // namespace usher::api
