// Reading sagas straight from a log file, without an engine: what `usher ls`,
// `show`, `events` and `stats` use with --db, and what the engine itself uses
// to answer get/list/events. Works while a server writes the same file (WAL)
// and while none runs.
//
// Saga JSON (docs/api.md; fields may be added, these keep their names):
//   {"id","workflow","version","status","input","created_at","updated_at",
//    "correlation_id","idempotency_key","deadline","error","current_step",
//    "steps":[{"name","type","call","transport","status","attempts","output","error",
//              "started_at","finished_at",
//              "compensation": null | {"call","transport","status","attempts","error","started_at","finished_at"}}]}
// Times are RFC 3339 UTC strings with milliseconds; absent values are null.
// A step's status: pending|running|succeeded|failed|unknown|compensating|compensated.
// A compensation's status: running|succeeded|failed (failed: gave up, saga stuck).
// Events: {"events":[{"seq","type","step","data","occurred_at"}]} in seq order.
// A list: {"sagas":[saga…],"next":cursor|null}.
// The event feed: {"events":[{"cursor","saga_id","workflow","seq","type","step",
//   "data","occurred_at"}],"next":cursor}, every saga's events in commit order.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "usher/definition.h"
#include "usher/saga.h"
#include "usher/status.h"

namespace usher {

class LogInspector {
 public:
  // `db_path`: a SQLite file or a postgresql:// URI. read_only: open a SQLite
  // file read-only (it must exist); the CLI's --db mode.
  static Result<std::unique_ptr<LogInspector>> open(const std::string& db_path, bool read_only = true);
  virtual ~LogInspector() = default;

  // The saga folded from its events; with `at_us` (µs since epoch), only the
  // events that occurred at or before that moment (`usher show --at`).
  virtual Result<Json> saga(const std::string& id, std::optional<int64_t> at_us = std::nullopt) = 0;
  virtual Result<Json> events(const std::string& id) = 0;
  // The sagas `filter` selects, newest first, at most filter.limit (clamped
  // to 1 .. 1000); kInvalidArgument when filter.after is not a saga id.
  virtual Result<Json> list(const SagaFilter& filter) = 0;
  // The event feed (docs/api.md, "The event feed"): up to `limit` (clamped
  // to 1 .. 1000) events of every saga committed after the cursor `after`
  // ("" from the start), in commit order. A reader that always continues
  // from `next` (the last event's cursor, or `after` when there was none)
  // sees every event once, each saga's in seq order, also while several
  // nodes write. kInvalidArgument when `after` is not a cursor.
  virtual Result<Json> feed(const std::string& after, size_t limit) = 0;
  // Counts from the log's indexes, no saga folded (`usher stats`, GET /v1/stats):
  //   {"sagas": {"running": n, "compensating": n, "completed": n, "compensated": n,
  //              "stuck": n, "terminated": n},
  //    "total": n, "oldest_unfinished_created_at": RFC 3339 | null}
  // where the oldest unfinished saga is the running or compensating one
  // created first (stuck sagas wait for an operator and are left out).
  virtual Result<Json> stats() = 0;
  // The nodes that share the log, as Engine::cluster() shows them, with
  // "node": null (`usher nodes --db`).
  virtual Result<Json> cluster() = 0;
};

// RFC 3339 UTC with milliseconds, e.g. "2026-11-21T05:25:00.123Z".
std::string format_time(int64_t micros_since_epoch);
// Accepts RFC 3339 (with or without fraction, Z or ±hh:mm); nullopt when malformed.
std::optional<int64_t> parse_time(std::string_view text);
// True for a saga id as usher writes it: a UUID in lowercase hex,
// "0190a1b2-c3d4-7e5f-8a6b-0c1d2e3f4a5b" (what a list's `next` cursor holds).
bool is_saga_id(std::string_view text);

}  // namespace usher
