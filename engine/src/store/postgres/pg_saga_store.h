// The PostgreSQL implementation of SagaStore: one writer connection doing
// group commit, as the SQLite store does (sqlite_saga_store.h) and with the
// same threading: any thread appends, the writer thread owns the connection
// and runs every `done` callback.
//
// A batch is one statement, usher_append (schemas/saga-log-postgresql.sql),
// over arrays of every event and saga row of the batch, plus one insert per new
// definition, sent in pipeline mode with one Sync: one implicit transaction,
// one round trip, one WAL flush (durable as the server's synchronous_commit
// makes it).
//
// What a failure means, group by group, is as for SQLite: a group refused for
// its own content (it does not continue its saga's log, its idempotency key
// is taken) fails alone and the rest are written again without it; any other
// failure fails the batch with kUnavailable; nothing is half written. One case
// is new: the connection can drop after the transaction was sent and before
// its outcome came back, when PostgreSQL may or may not have committed it.
// The store never guesses. It holds those groups, reconnects (with backoff)
// and reads whether the batch is in the log, then reports what is true; only
// close() gives up on it, with kUnavailable, and the next start's recovery
// reads the truth. Meanwhile and whenever the server cannot be reached, groups
// that were never sent fail at once with kUnavailable, so the engine refuses
// new sagas (503) instead of queueing them.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "store/append_group.h"
#include "store/postgres/pg.h"
#include "store/saga_store.h"
#include "store/write_queue.h"

namespace usher {

class PgSagaStore final : public SagaStore {
 public:
  // Connects, migrates the schema (or, with migrate = false, checks that it is
  // current), starts the writer thread.
  static Result<std::unique_ptr<PgSagaStore>> open(const std::string& uri, size_t max_batch_events, bool migrate);
  ~PgSagaStore() override;

  void append(std::vector<Event> events, std::vector<SagaRow> rows, std::function<void(Status)> done) override;
  Status store_definition(const std::string& hash, const std::string& workflow, int64_t version,
                          const std::string& source) override;
  void flush() override;
  void close() override;
  SagaStoreStats stats() const override;
  Result<std::unique_ptr<SagaStoreReader>> open_reader() override;
  Result<std::unique_ptr<NodeRegistry>> open_registry() override;

 private:
  using Group = AppendGroup;
  enum class Outcome { kCommitted, kFailed, kUnknown };
  struct Attempt {
    Outcome outcome = Outcome::kFailed;
    Status status;
    Group* culprit = nullptr;  // the group usher_append blamed, when it refused one
  };

  PgSagaStore(std::string uri, pg::Connection conn, size_t max_batch_events);

  // Writer thread only.
  void run();
  void commit_batch(std::vector<Group>& batch);
  void fail_broken_chains();
  Attempt write(const std::vector<Group*>& groups);
  static Group* blamed(const std::string& detail, const std::vector<Group*>& groups,
                       const std::vector<size_t>& event_group, const std::vector<size_t>& row_group);
  void resolve(const std::vector<Group*>& groups, const Status& why);
  Result<bool> committed(const std::vector<Group*>& groups);
  Status connect();
  Status prepare_statements();
  void disconnect();
  void fail_waiting(const Status& why);

  const std::string uri_;
  const std::string where_;  // uri_ without the password, for messages
  const size_t max_batch_events_;

  // Owned by the writer thread once it runs.
  pg::Connection conn_;
  std::vector<Group*> pending_;  // groups of the current batch still to be written
  std::chrono::steady_clock::time_point next_connect_{};
  std::chrono::milliseconds backoff_;
  Status connect_error_;

  WriteQueue<Group> queue_;
  std::mutex close_mu_;  // serialises close() with itself
  std::thread writer_;
  std::thread::id writer_id_;

  std::atomic<uint64_t> commits_{0};
  std::atomic<uint64_t> events_{0};
  std::atomic<uint64_t> last_batch_events_{0};
  std::atomic<uint64_t> commit_micros_total_{0};
};

}  // namespace usher
