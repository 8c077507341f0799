// How SagaRow and Event map to the columns of `sagas` and `saga_events`, shared
// by the writer (binding) and the readers (decoding) so the two cannot drift.
// Empty strings and std::nullopt are stored as NULL.
#pragma once

#include <string>
#include <string_view>

#include "store/saga_store.h"
#include "store/sqlite_db.h"

namespace usher::codec {

// The columns of `sagas`, in the order read_saga_row expects them, each
// preceded by `prefix` (a table alias such as "s.", or nothing).
std::string saga_columns(std::string_view prefix = "");
inline constexpr int kSagaColumnCount = 13;

// The columns of `saga_events` after saga_id, in the order read_event expects them.
std::string event_columns(std::string_view prefix = "");

// Binds parameters ?1..?13 in saga_columns() order. Text is bound without a copy.
void bind_saga_row(sqlite::Statement& stmt, const SagaRow& row);

// Decode the current result row starting at column `first`. A value this build
// cannot decode (an unknown status or event type, data that is not JSON) means
// the file was not written by a compatible usher: kDataLoss.
Status read_saga_row(const sqlite::Statement& stmt, int first, SagaRow& row);
Status read_event(const sqlite::Statement& stmt, int first, std::string saga_id, Event& event);

}  // namespace usher::codec
