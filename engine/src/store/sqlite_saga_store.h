// The SQLite implementation of SagaStore: one writer thread doing group commit.
//
// Threading:
//   - Any thread may call append(), flush(), store_definition(), stats() and close().
//     append() only pushes onto queue_ (write_queue.h); it never touches SQLite.
//   - The writer thread (run()) owns db_ and every statement after open(). It
//     takes all waiting groups (up to max_batch_events_ events), writes them in
//     one transaction, commits (the one sync), then calls each group's `done`
//     and only then counts them finished (which releases flush()).
//   - `done` callbacks run on the writer thread: they must not block on the log
//     (flush, close and store_definition from a callback would wait for themselves)
//     and must not throw.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "store/append_group.h"
#include "store/open_store.h"
#include "store/saga_store.h"
#include "store/sqlite_db.h"
#include "store/write_queue.h"

namespace usher {

class SqliteSagaStore final : public SagaStore {
 public:
  static Result<std::unique_ptr<SqliteSagaStore>> open(const std::string& path, Durability durability,
                                                         size_t max_batch_events, const std::string& vfs = {});
  ~SqliteSagaStore() override;

  void append(std::vector<Event> events, std::vector<SagaRow> rows, std::function<void(Status)> done) override;
  Status store_definition(const std::string& hash, const std::string& workflow, int64_t version,
                          const std::string& source) override;
  void flush() override;
  void close() override;
  SagaStoreStats stats() const override;
  Result<std::unique_ptr<SagaStoreReader>> open_reader() override;

  // PRAGMA synchronous as read back on the write connection after open:
  // 2 = FULL, 1 = NORMAL. For tests and diagnostics.
  int synchronous_level() const { return synchronous_level_; }

 private:
  using Group = AppendGroup;

  SqliteSagaStore(std::string path, sqlite::Connection db, size_t max_batch_events);
  Status prepare_statements();

  // Writer thread only.
  void run();
  void commit_batch(std::vector<Group>& batch);
  Status begin();
  Status write_group(const Group& group);
  Status commit(uint64_t events);
  void rollback();
  void maybe_checkpoint();
  static int on_wal_commit(void* self, sqlite3* db, const char* name, int pages);

  const std::string path_;
  const size_t max_batch_events_;
  int synchronous_level_ = 0;

  // Owned by the writer thread once it runs. db_ is declared first so the
  // statements are finalized before the connection closes.
  sqlite::Connection db_;
  sqlite::Statement begin_;
  sqlite::Statement commit_;
  sqlite::Statement rollback_;
  sqlite::Statement insert_event_;
  sqlite::Statement update_saga_;  // a saga's row after its first transition
  sqlite::Statement insert_saga_;  // its first
  sqlite::Statement insert_definition_;
  std::vector<Group*> pending_;  // groups of the current batch still to be written
  int wal_pages_ = 0;            // WAL size after the last commit, from the WAL hook

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
