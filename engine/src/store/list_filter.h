// How both stores turn a SagaFilter into one indexed query: which filters a
// listing uses (its shape, so each shape is prepared and planned once), and
// the bound on saga ids that a start time implies.
//
// Saga ids are UUIDv7 (exec/saga_id.h): their first 48 bits are Unix
// milliseconds, taken from the same clock reading as the saga's created_at,
// and a generator never hands out a millisecond smaller than one it handed out
// before (when the clock steps back or a millisecond's counter is spent, it
// keeps to the last one, or the next). So an id's millisecond is never less
// than its created_at's:
//
//   created_at >= T  implies  id >= smallest_saga_id_at(T / 1000)
//
// which lets `created_after` be a range on the primary key, with created_at
// itself compared too to keep the result exact. The converse does not hold
// (an id may run ahead of its created_at after the clock stepped back), so
// `created_before` compares created_at alone, on the rows the other bounds
// leave: exact, though it reads the sagas newer than T before the first match.
#pragma once

#include <cstdint>
#include <string>

#include "usher/saga.h"

namespace usher {

// The smallest saga id whose UUIDv7 time is `ms` (clamped to 0 .. 2^48 - 1):
// "0190a1b2-c3d4-0000-0000-000000000000". Ids compare as text in the order of
// their time, in SQLite and, as uuid, in PostgreSQL.
std::string smallest_saga_id_at(int64_t ms);

// The id bound created_after implies (see above).
inline std::string saga_id_lower_bound(int64_t created_after_us) {
  return smallest_saga_id_at(created_after_us < 0 ? 0 : created_after_us / 1000);
}

// Which of a filter's parts are set, as bits: a listing is prepared once per shape.
enum ListPart : unsigned {
  kListStatus = 1u << 0,
  kListWorkflow = 1u << 1,
  kListAfter = 1u << 2,
  kListKey = 1u << 3,
  kListCorrelation = 1u << 4,
  kListCreatedAfter = 1u << 5,
  kListCreatedBefore = 1u << 6,
};
inline constexpr unsigned kListShapes = 1u << 7;

inline unsigned list_shape(const SagaFilter& f) {
  return (f.status ? kListStatus : 0u) | (f.workflow ? kListWorkflow : 0u) | (f.after ? kListAfter : 0u) |
         (f.idempotency_key ? kListKey : 0u) | (f.correlation_id ? kListCorrelation : 0u) |
         (f.created_after ? kListCreatedAfter : 0u) | (f.created_before ? kListCreatedBefore : 0u);
}

// The SQLite listing of one shape, selecting `columns`. Parameters: ?1 status,
// ?2 workflow, ?3 after, ?4 limit, ?5 idempotency key, ?6 correlation id,
// ?7 the id bound of created_after, ?8 created_after, ?9 created_before.
std::string sqlite_list_sql(unsigned shape, const std::string& columns);

}  // namespace usher
