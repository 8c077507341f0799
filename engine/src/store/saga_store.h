// The saga store: everything the executor and the readers need from the log
// (docs/architecture.md), as an interface. SQLite (sqlite_saga_store.h) is its
// first implementation; a second one (PostgreSQL) fills the same interface and
// needs no change above it. tests/store runs against the interface.
//
// A store commits appends in groups: append() queues a group of events plus
// the `sagas` projection rows they change; the store writes every group that
// is waiting in one transaction, syncs once, then calls each group's `done` —
// so N concurrent sagas cost one sync, not N. Readers use their own
// connections and never wait for the writer.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "store/node_registry.h"
#include "usher/options.h"
#include "usher/saga_log.h"  // kSagaLogSchemaVersion: a log of a newer version is refused
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
  // Several nodes on one log (PostgreSQL; node_registry.h): the node that
  // writes the row and the fence it holds the saga under. The log writes the
  // row only if the saga is still owned so (a new saga: owned from now on)
  // and the node's lease holds; else the group fails with kNotOwner. 0, 0:
  // a log without nodes (SQLite, a store used alone).
  int64_t owner = 0;
  int64_t fence = 0;
};

struct SagaStoreStats {
  uint64_t commits = 0;
  uint64_t events = 0;
  uint64_t last_batch_events = 0;
  uint64_t commit_micros_total = 0;  // time spent in COMMIT (the sync), summed
  uint64_t queued_events = 0;        // appended, not yet committed or failed
};

// An event with its place in the commit order of the whole log: positions
// grow with each commit, and within one commit follow the order of append().
struct CommittedEvent {
  int64_t position = 0;
  std::string workflow;  // the saga's
  Event event;
};

// A node of a cluster: one engine sharing the log with others (README
// "Several nodes"), as the log records it.
struct NodeRow {
  int64_t id = 0;
  std::string name;     // host:pid
  std::string address;  // the API address it advertised; empty until it did
  int64_t started_at = 0;
  int64_t lease_until = 0;  // the database's clock
  bool stopped = false;     // it left (stopped cleanly) and handed its sagas over
  bool live = false;        // its lease holds now, by the database's clock
  int64_t sagas_owned = 0;  // running or compensating sagas it owns
};

// How many sagas the log holds in each status, and how old its oldest
// unfinished one is: what `usher stats`, GET /v1/stats and the metrics read.
struct SagaCounts {
  // Every status, zero included, in the order of SagaStatus, so a table of
  // them is stable. "terminated" (an operator ended the saga) is named here
  // as a string: the log's schema has it from version 2 (SQLite) / 3 (PostgreSQL).
  std::vector<std::pair<std::string, int64_t>> by_status;
  // created_at (µs) of the oldest running or compensating saga; none without one.
  std::optional<int64_t> oldest_unfinished_created_at;

  static SagaCounts zero() {
    SagaCounts c;
    for (const char* name : {"running", "compensating", "completed", "compensated", "stuck", "terminated"})
      c.by_status.emplace_back(name, 0);
    return c;
  }
  // Sets the count of `status`; false when it is not a status the log knows.
  bool set(std::string_view status, int64_t n) {
    for (auto& [name, count] : by_status) {
      if (name == status) {
        count = n;
        return true;
      }
    }
    return false;
  }
};

// How many unfinished sagas (running, compensating or stuck) run one
// definition of a workflow: a saga stays on the definition it started with,
// so after a newer version is loaded the older ones it is pinned to live on
// until their last saga finishes (GET /v1/workflows shows them).
struct PinnedVersion {
  std::string workflow;
  int64_t version = 0;
  std::string definition_hash;
  int64_t unfinished = 0;
};

// A read connection. Not thread-safe: open one per thread. Reads a consistent
// snapshot while writers (in this or another process) keep committing.
class SagaStoreReader {
 public:
  virtual ~SagaStoreReader() = default;

  virtual Result<std::optional<SagaRow>> saga(const std::string& id) = 0;
  virtual Result<std::optional<std::string>> saga_id_by_idempotency_key(const std::string& key) = 0;
  // Events of one saga in seq order; with `until_us`, only those that occurred at or before it.
  virtual Result<std::vector<Event>> events(const std::string& id,
                                            std::optional<int64_t> until_us = std::nullopt) = 0;
  // Up to `limit` events of every saga committed after `position` (0: from the
  // start), in commit order: what the event feed and read models consume.
  virtual Result<std::vector<CommittedEvent>> events_after(int64_t position, size_t limit) = 0;
  // The position of the last committed event (0 for an empty log): how far
  // behind it a publisher of the feed is (its lag), without reading events.
  virtual Result<int64_t> last_position() = 0;
  // Newest first (ids are UUIDv7, so by id descending), filtered and paged by SagaFilter.
  virtual Result<std::vector<SagaRow>> list(const SagaFilter& filter) = 0;
  // A definition's source by its hash, as store_definition() kept it.
  virtual Result<std::optional<std::string>> definition_source(const std::string& hash) = 0;
  // Every event of every saga whose status is not completed/compensated, grouped by
  // saga and in seq order: the input of recovery. Calls `each` once per saga.
  virtual Status for_each_unfinished(
      const std::function<void(const SagaRow&, std::vector<Event>&&)>& each) = 0;
  // The given sagas (those that exist) with their events, in seq order.
  virtual Status for_each_saga(const std::vector<std::string>& ids,
                               const std::function<void(const SagaRow&, std::vector<Event>&&)>& each) {
    for (const std::string& id : ids) {
      auto row = saga(id);
      if (!row.is_ok()) return row.status();
      if (!row.value()) continue;
      auto events = this->events(id);
      if (!events.is_ok()) return events.status();
      each(**row, std::move(events.value()));
    }
    return Status::ok();
  }
  // Counts by status and the oldest unfinished saga, from the indexes (no
  // saga is folded): GROUP BY over sagas_by_status, and the running and
  // compensating sagas' created_at.
  virtual Result<SagaCounts> counts() = 0;
  // The unfinished sagas counted per (workflow, version, definition_hash),
  // by workflow, then newest version first: a GROUP BY over the partial index
  // sagas_unfinished, so finished sagas are never read.
  virtual Result<std::vector<PinnedVersion>> unfinished_by_definition() = 0;
  // counts().by_status alone.
  Result<std::vector<std::pair<std::string, int64_t>>> count_by_status() {
    auto c = counts();
    if (!c.is_ok()) return c.status();
    return std::move(c.value().by_status);
  }
  // The nodes that share the log, by id (node_registry.h); none for SQLite.
  virtual Result<std::vector<NodeRow>> nodes() { return std::vector<NodeRow>{}; }
};

class SagaStore {
 public:
  virtual ~SagaStore() = default;

  // Queues events and projection rows for the next group commit. `done` runs on
  // the store's writer thread once the transaction holding them is durable (ok)
  // or has failed (rolled back: none of this group's rows were written). A
  // group whose rows do not continue from the seq the store holds
  // (SagaRow::prior_seq) fails alone with kAborted. A group that can never be
  // written (event data that is not valid JSON text, a closed store) is failed
  // at once, on the caller's thread. `done` must not block on the store.
  // A failure means the group is certainly not in the log: a store that lost
  // a commit's outcome (a dropped connection) finds it out before calling
  // `done`, and only close() may give up on that, with kUnavailable.
  virtual void append(std::vector<Event> events, std::vector<SagaRow> rows,
                      std::function<void(Status)> done) = 0;

  // Stores a definition's source by hash (idempotent). Synchronous and durable.
  virtual Status store_definition(const std::string& hash, const std::string& workflow,
                                  int64_t version, const std::string& source) = 0;

  // A new read connection on the same log, for one thread.
  virtual Result<std::unique_ptr<SagaStoreReader>> open_reader() = 0;

  // A connection to the log's node registry (node_registry.h), for one
  // thread; null for a log that one engine has alone (SQLite).
  virtual Result<std::unique_ptr<NodeRegistry>> open_registry() { return std::unique_ptr<NodeRegistry>(); }

  // Waits until everything queued so far is committed.
  virtual void flush() = 0;

  // Flushes, stops the writer, closes the connection. Idempotent.
  virtual void close() = 0;

  virtual SagaStoreStats stats() const = 0;
};

}  // namespace usher
