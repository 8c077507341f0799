// How the event feed looks in the API, `usher tail --json` and the embedding
// API (the JSON documented in usher/inspect.h, LogInspector::feed).
//
// A cursor names a place in the feed: the position of an event in commit
// order (store/saga_store.h, CommittedEvent), written as decimal digits.
// Clients treat it as opaque text: they hand back what `next` or an event's
// "cursor" gave them.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "store/saga_store.h"
#include "usher/definition.h"

namespace usher {

// The most events one page of the feed holds; a larger limit is cut to it.
inline constexpr size_t kMaxFeedPage = 1000;

// The position a cursor names: "" is the start (0); nullopt when `cursor` is
// not one.
std::optional<int64_t> parse_feed_cursor(std::string_view cursor);
std::string feed_cursor(int64_t position);

// {"cursor","saga_id","workflow","seq","type","step","data","occurred_at"}
Json feed_event_to_json(const CommittedEvent& e);
// {"events": [...], "next": cursor}: `next` is the last event's cursor, or
// `after`'s when the page is empty, so a reader always continues from `next`.
Json feed_page_to_json(const std::vector<CommittedEvent>& events, int64_t after);

}  // namespace usher
