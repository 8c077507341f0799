// The bounds of a page of sagas (GET /v1/sagas, `usher ls`): a page ends
// early, with `next` set, once it holds kListPageBytes of JSON or once
// kListReadBytes of sagas were read for it; and a listed saga is a summary,
// whose input and step outputs larger than kListedValueBytes are left out
// (null, named in "omitted") — GET /v1/sagas/{id} has them whole.
//
// Why: sagas with megabyte inputs made one `?limit=1000` answer tens of
// megabytes, and held the API's worker threads while building it. A page now
// costs at most a few megabytes of reading and one of answer, however large
// the sagas are. A page always holds at least one saga, so `next` always
// moves on.
#pragma once

#include <cstddef>

#include "usher/definition.h"  // Json

namespace usher {

inline constexpr size_t kListPageBytes = 1 << 20;
inline constexpr size_t kListReadBytes = 16 << 20;
inline constexpr size_t kListedValueBytes = 4 << 10;

// The size of `value` as compact JSON text, counted up to `cap` and a little
// past it (a count over `cap` means "larger"), without writing the text.
// Strings count their bytes, escaping aside. Recursion is bounded: every
// value usher stores is at most 64 levels deep (usher/service_text.h).
size_t json_text_size(const Json& value, size_t cap);

// Turns a saga's JSON (saga_to_json) into a list item: its "input" and each
// step's "output" larger than kListedValueBytes become null, and the item
// gains "omitted": the JSON pointers of what was left out (only when
// something was). Returns {size of the saga before, size after}.
struct ListItemSize {
  size_t whole = 0;
  size_t listed = 0;
};
ListItemSize summarise_list_item(Json& saga);

}  // namespace usher
