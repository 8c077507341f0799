// The saga log writer: group commit on one thread (see sqlite_saga_store.h for
// the threading). Durability comes from SQLite: WAL with synchronous=FULL syncs
// the WAL on every COMMIT, so once `done(ok)` runs the group survives a power
// loss; with NORMAL it survives a crash of the process only.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "store/log_codec.h"
#include "store/schema.h"
#include "store/sqlite_saga_store.h"

namespace usher {
namespace {

// The writer waits this long for a lock held by another process (a migration
// by a second engine, a CLI repairing the file) before failing with kUnavailable.
constexpr int kBusyTimeoutMs = 5000;
// Checkpoint once the WAL holds this many pages (16 MiB at 4 KiB pages). The
// writer does it itself after releasing a batch's callbacks, instead of inside
// COMMIT as SQLite's auto-checkpoint would, so no append waits for it.
constexpr int kCheckpointPages = 4096;
// After a checkpoint resets the WAL, SQLite truncates the file to this size, so
// a burst does not leave a large WAL behind forever.
constexpr const char* kJournalSizeLimit = "PRAGMA journal_size_limit = 67108864";

constexpr const char* kInsertEvent =
    "INSERT INTO saga_events (saga_id, seq, type, step, data, occurred_at, causation_seq) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
constexpr const char* kInsertDefinition =
    "INSERT OR IGNORE INTO definitions (hash, workflow, version, source, loaded_at) VALUES (?1, ?2, ?3, ?4, ?5)";

std::string insert_saga_sql() {
  return "INSERT INTO sagas (" + codec::saga_columns() + ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";
}
// Rows are full snapshots, but a saga's identity (workflow, version,
// definition, keys, created_at) is fixed by its first row: a transition sets
// only what it changes, so SQLite leaves the indexes over the fixed columns
// (by workflow, idempotency key) alone. The parameters are numbered as in the
// insert, so one bind_saga_row serves both. A plain UPDATE (and an INSERT only
// when it matched no row) costs one seek of the primary key per transition,
// where an upsert costs two.
constexpr const char* kUpdateSaga =
    "UPDATE sagas SET status = ?5, current_step = ?6, updated_at = ?10, deadline = ?11, last_error = ?12, "
    "last_seq = ?13 WHERE id = ?1 AND last_seq = ?14";

// The log holds every saga's input and outputs: a new one is created
// readable by its owner only, whatever the umask. SQLite gives the -wal and
// -shm files the mode of the database file. An existing file keeps the mode
// its owner chose.
Status create_owner_only(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return Status::ok();
    return Status::unavailable("create saga log " + path + ": " + std::strerror(errno));
  }
  const bool ok = ::fchmod(fd, 0600) == 0;
  const int err = errno;
  ::close(fd);
  if (!ok) return Status::unavailable("make saga log " + path + " owner-only: " + std::strerror(err));
  return Status::ok();
}

int64_t wall_clock_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Result<std::unique_ptr<SagaStore>> open_sqlite_store(const std::string& path, Durability durability,
                                               size_t max_batch_events, const std::string& vfs) {
  auto log = SqliteSagaStore::open(path, durability, max_batch_events, vfs);
  if (!log) return log.status();
  return std::unique_ptr<SagaStore>(std::move(*log));
}

Result<std::unique_ptr<SagaStoreReader>> SqliteSagaStore::open_reader() { return open_sqlite_reader(path_, false); }

Result<std::unique_ptr<SqliteSagaStore>> SqliteSagaStore::open(const std::string& path, Durability durability,
                                                               size_t max_batch_events, const std::string& vfs) {
  if (path.empty() || path == ":memory:" || path.starts_with("file:")) {
    return Status::invalid_argument("the saga log needs a file path, not \"" + path +
                                    "\": a saga engine without a durable log loses sagas on restart");
  }
  if (Status s = create_owner_only(path); !s) return s;
  auto db = sqlite::Connection::open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, vfs);
  if (!db) return db.status();
  sqlite3_busy_timeout(db->get(), kBusyTimeoutMs);

  const std::string what = "configure saga log " + path;
  auto mode = db->query_text("PRAGMA journal_mode = WAL", what);
  if (!mode) return mode.status();
  if (*mode != "wal") {
    return Status::unavailable("saga log " + path + " could not be switched to WAL (journal_mode is " + *mode + ")");
  }
  const char* synchronous =
      durability == Durability::kFull ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL";
  for (const char* pragma : {synchronous, kJournalSizeLimit, "PRAGMA temp_store = MEMORY"}) {
    if (Status s = db->exec(pragma, what); !s) return s;
  }
  if (Status s = schema::migrate(*db, path); !s) return s;
  auto level = db->query_int("PRAGMA synchronous", what);
  if (!level) return level.status();

  std::unique_ptr<SqliteSagaStore> log(new SqliteSagaStore(path, std::move(*db), max_batch_events));
  log->synchronous_level_ = static_cast<int>(*level);
  if (Status s = log->prepare_statements(); !s) return s;
  // Replaces SQLite's auto-checkpoint, see kCheckpointPages.
  sqlite3_wal_hook(log->db_.get(), &SqliteSagaStore::on_wal_commit, log.get());
  log->writer_ = std::thread([raw = log.get()] { raw->run(); });
  log->writer_id_ = log->writer_.get_id();
  return log;
}

SqliteSagaStore::SqliteSagaStore(std::string path, sqlite::Connection db, size_t max_batch_events)
    : path_(std::move(path)), max_batch_events_(max_batch_events), db_(std::move(db)) {}

SqliteSagaStore::~SqliteSagaStore() { close(); }

Status SqliteSagaStore::prepare_statements() {
  struct {
    sqlite::Statement* stmt;
    std::string sql;
  } const all[] = {
      {&begin_, "BEGIN IMMEDIATE"},
      {&commit_, "COMMIT"},
      {&rollback_, "ROLLBACK"},
      {&insert_event_, kInsertEvent},
      {&update_saga_, kUpdateSaga},
      {&insert_saga_, insert_saga_sql()},
      {&insert_definition_, kInsertDefinition},
  };
  for (const auto& [stmt, sql] : all) {
    auto prepared = db_.prepare(sql);
    if (!prepared) return prepared.status();
    *stmt = std::move(*prepared);
  }
  return Status::ok();
}

void SqliteSagaStore::append(std::vector<Event> events, std::vector<SagaRow> rows, std::function<void(Status)> done) {
  auto encoded = encode_events(std::move(events));
  if (!encoded) return finish(done, encoded.status());
  enqueue(queue_, Group{std::move(*encoded), std::move(rows), std::nullopt, std::move(done)}, path_);
}

Status SqliteSagaStore::store_definition(const std::string& hash, const std::string& workflow, int64_t version,
                                       const std::string& source) {
  return write_definition(queue_, writer_id_, DefinitionRecord{hash, workflow, version, source}, path_);
}

void SqliteSagaStore::flush() {
  // From a callback this would wait for the batch that is running it.
  if (std::this_thread::get_id() == writer_id_) return;
  queue_.flush();
}

void SqliteSagaStore::close() {
  std::lock_guard close_lock(close_mu_);
  queue_.close();
  // From a callback the writer cannot join itself; it stops once the queue is
  // drained and the destructor joins it.
  if (std::this_thread::get_id() == writer_id_) return;
  if (writer_.joinable()) writer_.join();
  // Finalize every statement before closing, or the connection stays open.
  begin_ = {};
  commit_ = {};
  rollback_ = {};
  insert_event_ = {};
  update_saga_ = {};
  insert_saga_ = {};
  insert_definition_ = {};
  db_.close();
}

SagaStoreStats SqliteSagaStore::stats() const {
  SagaStoreStats s;
  s.commits = commits_.load(std::memory_order_relaxed);
  s.events = events_.load(std::memory_order_relaxed);
  s.last_batch_events = last_batch_events_.load(std::memory_order_relaxed);
  s.commit_micros_total = commit_micros_total_.load(std::memory_order_relaxed);
  s.queued_events = queue_.queued_events();
  return s;
}

void SqliteSagaStore::run() {
  std::vector<Group> batch;
  while (queue_.take(batch, max_batch_events_)) {
    commit_batch(batch);
    const size_t groups = batch.size();
    size_t events = 0;
    for (const Group& g : batch) events += g.events.size();
    batch.clear();  // frees the events before flush() returns
    queue_.finished(groups, events);
    maybe_checkpoint();
  }
}

// Writes the batch in one transaction and one sync. If the transaction fails
// because of one group's own content (a duplicate seq or idempotency key), that
// group alone is failed and the batch redone without it, so its batch-mates
// still share one sync. If it fails for any other reason (I/O error, full disk,
// busy) or too many groups were excluded, the remaining groups are written one
// per transaction, each getting its own outcome. No group is ever half written:
// a failed transaction is rolled back whole.
void SqliteSagaStore::commit_batch(std::vector<Group>& batch) {
  pending_.clear();
  for (Group& g : batch) pending_.push_back(&g);
  // A failure to begin is no group's fault and would repeat for each of them
  // (the write lock is held elsewhere past the busy timeout, the file is gone).
  auto finish_all = [this](const Status& s) {
    for (Group* g : pending_) finish(g->done, s);
  };

  for (size_t excluded = 0;; ++excluded) {
    if (Status s = begin(); !s) {
      finish_all(s);
      return;
    }
    Status s;
    size_t failed = pending_.size();
    uint64_t events = 0;
    for (size_t i = 0; s && i < pending_.size(); ++i) {
      s = write_group(*pending_[i]);
      if (s) {
        events += pending_[i]->events.size();
      } else {
        failed = i;
      }
    }
    if (s) s = commit(events);
    if (s) {
      finish_all(Status::ok());
      return;
    }
    rollback();
    if (failed == pending_.size() || !is_group_fault(s) || excluded == kMaxExclusions) break;
    finish(pending_[failed]->done, std::move(s));
    pending_.erase(pending_.begin() + static_cast<std::ptrdiff_t>(failed));
    if (pending_.empty()) return;
  }

  for (size_t i = 0; i < pending_.size(); ++i) {
    Group* g = pending_[i];
    if (Status s = begin(); !s) {
      pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(i));
      finish_all(s);
      return;
    }
    Status s = write_group(*g);
    if (s) s = commit(g->events.size());
    if (!s) rollback();
    finish(g->done, std::move(s));
  }
}

Status SqliteSagaStore::begin() {
  int rc = begin_.step();
  begin_.reset();
  return sqlite::to_status(rc, db_.get(), "begin a transaction on saga log " + path_);
}

Status SqliteSagaStore::write_group(const Group& group) {
  for (const EncodedEvent& e : group.events) {
    sqlite::ResetOnExit reset(insert_event_);
    insert_event_.bind(1, e.saga_id);
    insert_event_.bind(2, e.seq);
    insert_event_.bind(3, event_type_name(e.type));
    insert_event_.bind_or_null(4, e.step);
    insert_event_.bind(5, e.data);
    insert_event_.bind(6, e.occurred_at);
    insert_event_.bind(7, e.causation_seq);
    int rc = insert_event_.step();
    if (rc != SQLITE_DONE) {
      return sqlite::to_status(rc, db_.get(),
                               "append event " + std::to_string(e.seq) + " of saga " + e.saga_id + " to " + path_);
    }
  }
  for (const SagaRow& row : group.rows) {
    int rc;
    {
      sqlite::ResetOnExit reset(update_saga_);
      codec::bind_saga_row(update_saga_, row);
      update_saga_.bind(14, row.prior_seq);
      rc = update_saga_.step();
    }
    if (rc == SQLITE_DONE && sqlite3_changes(db_.get()) == 0 && row.prior_seq != 0) {
      return Status::aborted("saga " + row.id + ": events after seq " + std::to_string(row.prior_seq) +
                             " do not continue the log in " + path_ + " (an earlier append failed)");
    }
    if (rc == SQLITE_DONE && sqlite3_changes(db_.get()) == 0) {
      sqlite::ResetOnExit reset(insert_saga_);
      codec::bind_saga_row(insert_saga_, row);
      rc = insert_saga_.step();
    }
    if (rc != SQLITE_DONE) return sqlite::to_status(rc, db_.get(), "write saga " + row.id + " to " + path_);
  }
  if (group.definition) {
    const DefinitionRecord& d = *group.definition;
    sqlite::ResetOnExit reset(insert_definition_);
    insert_definition_.bind(1, d.hash);
    insert_definition_.bind(2, d.workflow);
    insert_definition_.bind(3, d.version);
    insert_definition_.bind(4, d.source);
    insert_definition_.bind(5, wall_clock_us());
    int rc = insert_definition_.step();
    if (rc != SQLITE_DONE) {
      return sqlite::to_status(rc, db_.get(), "store definition " + d.workflow + " (" + d.hash + ") in " + path_);
    }
  }
  return Status::ok();
}

Status SqliteSagaStore::commit(uint64_t events) {
  const auto start = std::chrono::steady_clock::now();
  int rc = commit_.step();
  commit_.reset();
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start).count();
  if (rc != SQLITE_DONE) return sqlite::to_status(rc, db_.get(), "commit to saga log " + path_);
  commits_.fetch_add(1, std::memory_order_relaxed);
  events_.fetch_add(events, std::memory_order_relaxed);
  last_batch_events_.store(events, std::memory_order_relaxed);
  commit_micros_total_.fetch_add(static_cast<uint64_t>(micros), std::memory_order_relaxed);
  return Status::ok();
}

void SqliteSagaStore::rollback() {
  // After some errors (I/O, full disk) SQLite has already rolled back.
  if (sqlite3_get_autocommit(db_.get()) != 0) return;
  rollback_.step();
  rollback_.reset();
}

void SqliteSagaStore::maybe_checkpoint() {
  if (wal_pages_ < kCheckpointPages) return;
  wal_pages_ = 0;
  // PASSIVE: copies what no reader still needs and never waits for readers, so
  // a long read transaction (a CLI listing) delays the WAL's reset, not the writer.
  sqlite3_wal_checkpoint_v2(db_.get(), nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
}

int SqliteSagaStore::on_wal_commit(void* self, sqlite3* /*db*/, const char* /*name*/, int pages) {
  static_cast<SqliteSagaStore*>(self)->wal_pages_ = pages;
  return SQLITE_OK;
}

}  // namespace usher
