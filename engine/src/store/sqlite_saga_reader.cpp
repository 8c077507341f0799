// SagaStoreReader over its own SQLite connection. WAL lets it read a consistent
// snapshot while the writer (in this or another process) keeps committing; every
// statement is reset when its method returns, so a reader never pins the WAL.
#include <algorithm>
#include <array>
#include <cstdint>
#include <filesystem>
#include <system_error>

#include "store/list_filter.h"
#include "store/log_codec.h"
#include "store/open_store.h"
#include "store/saga_store.h"
#include "store/schema.h"
#include "store/sqlite_db.h"

namespace usher {
namespace {

// Readers wait this long for the moment a writer holds an exclusive lock (a
// WAL reset or recovery) before reporting kUnavailable.
constexpr int kBusyTimeoutMs = 5000;

// The partial index sagas_unfinished is used only when a query repeats its
// WHERE clause exactly (schemas/saga-log.sql).
constexpr const char* kUnfinished = "status IN ('running', 'compensating', 'stuck')";

class SqliteSagaReader final : public SagaStoreReader {
 public:
  SqliteSagaReader(std::string path, sqlite::Connection db) : path_(std::move(path)), db_(std::move(db)) {}

  Status prepare_statements();

  Result<std::optional<SagaRow>> saga(const std::string& id) override;
  Result<std::optional<std::string>> saga_id_by_idempotency_key(const std::string& key) override;
  Result<std::vector<Event>> events(const std::string& id, std::optional<int64_t> until_us) override;
  Result<std::vector<CommittedEvent>> events_after(int64_t position, size_t limit) override;
  Result<int64_t> last_position() override;
  Result<std::vector<SagaRow>> list(const SagaFilter& filter) override;
  Result<std::optional<std::string>> definition_source(const std::string& hash) override;
  Status for_each_unfinished(const std::function<void(const SagaRow&, std::vector<Event>&&)>& each) override;
  Result<SagaCounts> counts() override;
  Result<std::vector<PinnedVersion>> unfinished_by_definition() override;

 private:
  Status error(int rc, const std::string& what) const { return sqlite::to_status(rc, db_.get(), what + " in " + path_); }

  const std::string path_;
  // Declared first so the statements are finalized before it closes.
  sqlite::Connection db_;
  sqlite::Statement saga_;
  sqlite::Statement by_key_;
  sqlite::Statement events_;
  sqlite::Statement events_after_;
  sqlite::Statement last_position_;
  sqlite::Statement definition_;
  sqlite::Statement unfinished_;
  sqlite::Statement counts_;
  sqlite::Statement oldest_;
  sqlite::Statement pinned_;
  // list() has a statement per filter shape (list_filter.h), prepared on
  // first use, so each is planned for its indexes.
  std::array<sqlite::Statement, kListShapes> list_;
};

Status SqliteSagaReader::prepare_statements() {
  const std::string cols = codec::saga_columns();
  const std::string event_cols = codec::event_columns();
  struct {
    sqlite::Statement* stmt;
    std::string sql;
  } const all[] = {
      {&saga_, "SELECT " + cols + " FROM sagas WHERE id = ?1"},
      {&by_key_, "SELECT id FROM sagas WHERE idempotency_key = ?1"},
      {&events_, "SELECT " + event_cols +
                     " FROM saga_events WHERE saga_id = ?1 AND (?2 IS NULL OR occurred_at <= ?2) ORDER BY seq"},
      // saga_events is a rowid table written by one writer at a time, so rowid
      // order is commit order (rows are never deleted, so rowids are not reused).
      // With the saga's workflow, for the feed (the sagas row is written in
      // the transaction of the saga's first event).
      {&events_after_, "SELECT e.rowid, e.saga_id, s.workflow, " + codec::event_columns("e.") +
                           " FROM saga_events AS e JOIN sagas AS s ON s.id = e.saga_id"
                           " WHERE e.rowid > ?1 ORDER BY e.rowid LIMIT ?2"},
      // max(rowid) is one step to the last leaf of the table's b-tree, not a
      // scan; NULL on an empty table.
      {&last_position_, "SELECT max(rowid) FROM saga_events"},
      {&definition_, "SELECT source FROM definitions WHERE hash = ?1"},
      // One pass in (saga, seq) order: sagas by the partial index, their events
      // by the primary key, so no sort and no per-saga query.
      {&unfinished_, "SELECT " + codec::saga_columns("s.") + ", " + codec::event_columns("e.") +
                         " FROM sagas AS s INDEXED BY sagas_unfinished JOIN saga_events AS e ON e.saga_id = s.id"
                         " WHERE s." + kUnfinished + " ORDER BY s.id, e.seq"},
      // Over the index sagas_by_status alone (it covers status).
      {&counts_, "SELECT status, count(*) FROM sagas INDEXED BY sagas_by_status GROUP BY status"},
      // Through sagas_by_status too: reads the running and compensating sagas only.
      {&oldest_, "SELECT min(created_at) FROM sagas INDEXED BY sagas_by_status"
                 " WHERE status IN ('running', 'compensating')"},
      // Reads the unfinished sagas alone, through the partial index.
      {&pinned_, std::string("SELECT workflow, version, definition_hash, count(*)"
                             " FROM sagas INDEXED BY sagas_unfinished WHERE ") + kUnfinished +
                     " GROUP BY workflow, version, definition_hash"
                     " ORDER BY workflow, version DESC, definition_hash"},
  };
  for (const auto& [stmt, sql] : all) {
    auto prepared = db_.prepare(sql);
    if (!prepared) return prepared.status();
    *stmt = std::move(*prepared);
  }
  return Status::ok();
}

Result<std::optional<SagaRow>> SqliteSagaReader::saga(const std::string& id) {
  sqlite::ResetOnExit reset(saga_);
  saga_.bind(1, id);
  int rc = saga_.step();
  if (rc == SQLITE_DONE) return std::optional<SagaRow>();
  if (rc != SQLITE_ROW) return error(rc, "read saga " + id);
  SagaRow row;
  if (Status s = codec::read_saga_row(saga_, 0, row); !s) return s;
  return std::optional<SagaRow>(std::move(row));
}

Result<std::optional<std::string>> SqliteSagaReader::saga_id_by_idempotency_key(const std::string& key) {
  if (key.empty()) return std::optional<std::string>();  // "none" is stored as NULL
  sqlite::ResetOnExit reset(by_key_);
  by_key_.bind(1, key);
  int rc = by_key_.step();
  if (rc == SQLITE_DONE) return std::optional<std::string>();
  if (rc != SQLITE_ROW) return error(rc, "find saga by idempotency key");
  return std::optional<std::string>(std::string(by_key_.text(0)));
}

Result<std::vector<Event>> SqliteSagaReader::events(const std::string& id, std::optional<int64_t> until_us) {
  sqlite::ResetOnExit reset(events_);
  events_.bind(1, id);
  if (until_us) {
    events_.bind(2, *until_us);
  } else {
    events_.bind_null(2);
  }
  std::vector<Event> out;
  int rc;
  while ((rc = events_.step()) == SQLITE_ROW) {
    Event& e = out.emplace_back();
    if (Status s = codec::read_event(events_, 0, id, e); !s) return s;
  }
  if (rc != SQLITE_DONE) return error(rc, "read events of saga " + id);
  return out;
}

Result<std::vector<CommittedEvent>> SqliteSagaReader::events_after(int64_t position, size_t limit) {
  sqlite::ResetOnExit reset(events_after_);
  events_after_.bind(1, position);
  events_after_.bind(2, static_cast<int64_t>(std::min<size_t>(limit, INT64_MAX)));
  std::vector<CommittedEvent> out;
  int rc;
  while ((rc = events_after_.step()) == SQLITE_ROW) {
    CommittedEvent& c = out.emplace_back();
    c.position = events_after_.int64(0);
    c.workflow = std::string(events_after_.text(2));
    if (Status s = codec::read_event(events_after_, 3, std::string(events_after_.text(1)), c.event); !s) return s;
  }
  if (rc != SQLITE_DONE) return error(rc, "read events after position " + std::to_string(position));
  return out;
}

Result<int64_t> SqliteSagaReader::last_position() {
  sqlite::ResetOnExit reset(last_position_);
  const int rc = last_position_.step();
  if (rc != SQLITE_ROW) return error(rc, "read the last position");
  return last_position_.is_null(0) ? int64_t{0} : last_position_.int64(0);
}

Result<std::vector<SagaRow>> SqliteSagaReader::list(const SagaFilter& filter) {
  const unsigned shape = list_shape(filter);
  sqlite::Statement& stmt = list_[shape];
  if (!stmt) {
    auto prepared = db_.prepare(sqlite_list_sql(shape, codec::saga_columns()));
    if (!prepared) return prepared.status();
    stmt = std::move(*prepared);
  }
  // Bound without a copy: lives until the statement is reset.
  const std::string lowest_id = filter.created_after ? saga_id_lower_bound(*filter.created_after) : std::string();
  sqlite::ResetOnExit reset(stmt);
  if (filter.status) stmt.bind(1, saga_status_name(*filter.status));
  if (filter.workflow) stmt.bind(2, *filter.workflow);
  if (filter.after) stmt.bind(3, *filter.after);
  if (filter.idempotency_key) stmt.bind(5, *filter.idempotency_key);
  if (filter.correlation_id) stmt.bind(6, *filter.correlation_id);
  if (filter.created_after) {
    stmt.bind(7, lowest_id);
    stmt.bind(8, *filter.created_after);
  }
  if (filter.created_before) stmt.bind(9, *filter.created_before);
  constexpr size_t kMaxLimit = static_cast<size_t>(INT64_MAX);
  stmt.bind(4, static_cast<int64_t>(std::min(filter.limit, kMaxLimit)));
  std::vector<SagaRow> out;
  int rc;
  while ((rc = stmt.step()) == SQLITE_ROW) {
    if (Status s = codec::read_saga_row(stmt, 0, out.emplace_back()); !s) return s;
  }
  if (rc != SQLITE_DONE) return error(rc, "list sagas");
  return out;
}

Result<std::optional<std::string>> SqliteSagaReader::definition_source(const std::string& hash) {
  sqlite::ResetOnExit reset(definition_);
  definition_.bind(1, hash);
  int rc = definition_.step();
  if (rc == SQLITE_DONE) return std::optional<std::string>();
  if (rc != SQLITE_ROW) return error(rc, "read definition " + hash);
  return std::optional<std::string>(std::string(definition_.text(0)));
}

Status SqliteSagaReader::for_each_unfinished(
    const std::function<void(const SagaRow&, std::vector<Event>&&)>& each) {
  sqlite::ResetOnExit reset(unfinished_);
  constexpr int kFirstEventColumn = codec::kSagaColumnCount;
  SagaRow row;
  std::vector<Event> events;
  bool have_row = false;
  int rc;
  while ((rc = unfinished_.step()) == SQLITE_ROW) {
    // The rows come ordered by saga: a new id closes the previous saga.
    if (!have_row || unfinished_.text(0) != row.id) {
      if (have_row) each(row, std::move(events));
      events.clear();
      if (Status s = codec::read_saga_row(unfinished_, 0, row); !s) return s;
      have_row = true;
    }
    if (Status s = codec::read_event(unfinished_, kFirstEventColumn, row.id, events.emplace_back()); !s) return s;
  }
  if (rc != SQLITE_DONE) return error(rc, "read unfinished sagas");
  if (have_row) each(row, std::move(events));
  return Status::ok();
}

Result<SagaCounts> SqliteSagaReader::counts() {
  SagaCounts out = SagaCounts::zero();
  {
    sqlite::ResetOnExit reset(counts_);
    int rc;
    while ((rc = counts_.step()) == SQLITE_ROW) {
      std::string_view status = counts_.text(0);
      if (!out.set(status, counts_.int64(1)))
        return Status::data_loss("sagas in " + path_ + " have unknown status \"" + std::string(status) + "\"");
    }
    if (rc != SQLITE_DONE) return error(rc, "count sagas by status");
  }
  sqlite::ResetOnExit reset(oldest_);
  const int rc = oldest_.step();
  if (rc != SQLITE_ROW) return error(rc, "find the oldest unfinished saga");
  if (!oldest_.is_null(0)) out.oldest_unfinished_created_at = oldest_.int64(0);
  return out;
}

Result<std::vector<PinnedVersion>> SqliteSagaReader::unfinished_by_definition() {
  sqlite::ResetOnExit reset(pinned_);
  std::vector<PinnedVersion> out;
  int rc;
  while ((rc = pinned_.step()) == SQLITE_ROW) {
    PinnedVersion& p = out.emplace_back();
    p.workflow = pinned_.text(0);
    p.version = pinned_.int64(1);
    p.definition_hash = pinned_.text(2);
    p.unfinished = pinned_.int64(3);
  }
  if (rc != SQLITE_DONE) return error(rc, "count unfinished sagas by definition");
  return out;
}

}  // namespace

Result<std::unique_ptr<SagaStoreReader>> open_sqlite_reader(const std::string& path, bool read_only) {
  // Without this check SQLite reports only "unable to open database file".
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return ec ? Status::unavailable("cannot access saga log " + path + ": " + ec.message())
              : Status::not_found("saga log " + path + " does not exist");
  }
  const int flags = (read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) | SQLITE_OPEN_NOMUTEX;
  auto db = sqlite::Connection::open(path, flags);
  if (!db) return db.status();
  sqlite3_busy_timeout(db->get(), kBusyTimeoutMs);
  if (Status s = schema::check_version(*db, path); !s) return s;
  auto reader = std::make_unique<SqliteSagaReader>(path, std::move(*db));
  if (Status s = reader->prepare_statements(); !s) return s;
  return std::unique_ptr<SagaStoreReader>(std::move(reader));
}

}  // namespace usher
