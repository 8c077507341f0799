// The saga log: SQLite, WAL, schema in schemas/saga-log.sql (DESIGN.md section 4).
//
// One writer thread owns the only write connection. append() queues a group of
// events plus the `sagas` projection rows they change; the writer takes every
// group that is waiting, writes them in one transaction, syncs once, then calls
// each group's `done` — so N concurrent sagas cost one fsync, not N.
// Readers (SagaLogReader) use their own connections and never wait for it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "usher/options.h"
#include "usher/saga.h"

namespace usher {

// The `sagas` projection row. The engine computes it from the saga's state and
// upserts it in the same transaction as the events that changed it.
struct SagaRow {
  std::string id;
  std::string workflow;
  int64_t version = 0;
  std::string definition_hash;
  SagaStatus status = SagaStatus::kRunning;
  std::string current_step;  // empty when none
  std::string idempotency_key;  // empty = none (stored as NULL, so not unique-checked)
  std::string correlation_id;
  int64_t created_at = 0;  // µs since epoch
  int64_t updated_at = 0;
  std::optional<int64_t> deadline;
  std::string last_error;
  int64_t last_seq = 0;
  // Not stored: the saga's last seq before this append. The log writes the
  // row (and so the events with it) only if that is what it holds, so a saga's
  // events never skip a seq, even after a failed append. 0 = a new saga.
  int64_t prior_seq = 0;
};

struct SagaLogStats {
  uint64_t commits = 0;
  uint64_t events = 0;
  uint64_t last_batch_events = 0;
  uint64_t commit_micros_total = 0;  // time spent in COMMIT (the sync), summed
  uint64_t queued_events = 0;        // appended, not yet committed or failed
};

class SagaLog {
 public:
  static constexpr int kSchemaVersion = 1;

  // Opens or creates the database, applies forward migrations, sets WAL and the
  // synchronous level, starts the writer thread. A file whose schema version is
  // newer than kSchemaVersion is refused with kDataLoss. `vfs` names a
  // registered SQLite VFS for the write connection (fault-injection tests);
  // empty = SQLite's default.
  static Result<std::unique_ptr<SagaLog>> open(const std::string& path, Durability durability,
                                               size_t max_batch_events = 8192, const std::string& vfs = {});
  virtual ~SagaLog() = default;

  // Queues events and projection rows for the next group commit. `done` runs on
  // the writer thread once the transaction holding them is durable (ok) or has
  // failed (rolled back: none of this group's rows were written). A group whose
  // rows do not continue from the seq the log holds (SagaRow::prior_seq) fails
  // alone with kAborted. A group that
  // can never be written (event data that is not valid JSON text, a closed log)
  // is failed at once, on the caller's thread.
  virtual void append(std::vector<Event> events, std::vector<SagaRow> rows,
                      std::function<void(Status)> done) = 0;

  // Stores a definition's source by hash (idempotent). Synchronous and durable.
  virtual Status store_definition(const std::string& hash, const std::string& workflow,
                                  int64_t version, const std::string& source) = 0;

  // Waits until everything queued so far is committed.
  virtual void flush() = 0;
  // Flushes, stops the writer thread, closes the connection. Idempotent.
  virtual void close() = 0;
  virtual SagaLogStats stats() const = 0;
};

// A read connection. Not thread-safe: open one per thread. Works on a database
// another process is writing (WAL readers never block the writer).
class SagaLogReader {
 public:
  // read_only: open with SQLITE_OPEN_READONLY (the CLI's --db mode); the file must exist.
  static Result<std::unique_ptr<SagaLogReader>> open(const std::string& path, bool read_only);
  virtual ~SagaLogReader() = default;

  virtual Result<std::optional<SagaRow>> saga(const std::string& id) = 0;
  virtual Result<std::optional<std::string>> saga_id_by_idempotency_key(const std::string& key) = 0;
  // Events of one saga in seq order; with `until_us`, only those that occurred at or before it.
  virtual Result<std::vector<Event>> events(const std::string& id,
                                            std::optional<int64_t> until_us = std::nullopt) = 0;
  // Newest first (ids are UUIDv7, so by id descending), filtered and paged by SagaFilter.
  virtual Result<std::vector<SagaRow>> list(const SagaFilter& filter) = 0;
  virtual Result<std::optional<std::string>> definition_source(const std::string& hash) = 0;
  // Every event of every saga whose status is not completed/compensated, grouped by
  // saga and in seq order: the input of recovery. Calls `each` once per saga.
  virtual Status for_each_unfinished(
      const std::function<void(const SagaRow&, std::vector<Event>&&)>& each) = 0;
  // Counts by status, for `usher stats`.
  virtual Result<std::vector<std::pair<std::string, int64_t>>> count_by_status() = 0;
};

}  // namespace usher
