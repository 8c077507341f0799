// SagaStoreReader over its own PostgreSQL connection. MVCC gives each
// statement a consistent snapshot without waiting for the writer; a reader
// whose connection was lost (the server restarted) reconnects once per read,
// since every read can simply be asked again.
#include <algorithm>
#include <array>
#include <cstdint>

#include "store/list_filter.h"
#include "store/open_store.h"
#include "store/postgres/pg.h"
#include "store/postgres/pg_schema.h"
#include "store/saga_store.h"

namespace usher {
namespace {

// The columns of `sagas` and `saga_events` as the decoders below read them:
// ids and times as usher writes them (text, µs since the epoch).
std::string saga_columns(const std::string& t = "") {
  return t + "id::text, " + t + "workflow, " + t + "version, " + t + "definition_hash, " + t + "status, " + t +
         "current_step, " + t + "idempotency_key, " + t + "correlation_id, usher_us(" + t + "created_at), usher_us(" +
         t + "updated_at), usher_us(" + t + "deadline), " + t + "last_error, " + t + "last_seq, " + t + "owner, " + t +
         "fence";
}
constexpr int kSagaColumnCount = 15;
std::string event_columns(const std::string& t = "") {
  return t + "seq, " + t + "type, " + t + "step, " + t + "data::text, usher_us(" + t + "occurred_at), " + t +
         "causation_seq";
}
constexpr const char* kUnfinished = "status IN ('running', 'compensating', 'stuck')";

struct Statement {
  const char* name;
  std::string sql;
};

const std::array<Statement, 12>& statements() {
  static const std::array<Statement, 12> all = {{
      {"saga", "SELECT " + saga_columns() + " FROM sagas WHERE id = $1::uuid"},
      {"by_key", "SELECT id::text FROM sagas WHERE idempotency_key = $1"},
      {"events", "SELECT " + event_columns() +
                     " FROM saga_events WHERE saga_id = $1::uuid AND ($2::bigint IS NULL OR occurred_at <= "
                     "usher_time($2::bigint)) ORDER BY seq"},
      {"events_after", "SELECT e.position, e.saga_id::text, s.workflow, " + event_columns("e.") +
                           " FROM saga_events AS e JOIN sagas AS s ON s.id = e.saga_id"
                           " WHERE e.position > $1 ORDER BY e.position LIMIT $2"},
      // The unique index on position answers max() from its last entry.
      {"last_position", "SELECT coalesce(max(position), 0) FROM saga_events"},
      {"definition", "SELECT source FROM definitions WHERE hash = $1"},
      // A page of unfinished sagas after $1 (by id) with all their events.
      {"unfinished", "SELECT " + saga_columns("s.") + ", " + event_columns("e.") +
                         " FROM (SELECT * FROM sagas WHERE " + kUnfinished +
                         " AND id > $1::uuid ORDER BY id LIMIT $2::bigint) AS s"
                         " JOIN saga_events AS e ON e.saga_id = s.id ORDER BY s.id, e.seq"},
      {"counts", "SELECT status, count(*) FROM sagas GROUP BY status"},
      // Through sagas_by_status: reads the running and compensating sagas only.
      {"oldest", "SELECT usher_us(min(created_at)) FROM sagas WHERE status IN ('running', 'compensating')"},
      // Given sagas with all their events (those a node just took over).
      {"sagas_by_id", "SELECT " + saga_columns("s.") + ", " + event_columns("e.") +
                          " FROM sagas AS s JOIN saga_events AS e ON e.saga_id = s.id"
                          " WHERE s.id = ANY($1::uuid[]) ORDER BY s.id, e.seq"},
      {"nodes", "SELECT n.id, n.name, n.address, usher_us(n.started_at), usher_us(n.lease_until),"
                " n.stopped_at IS NOT NULL, n.stopped_at IS NULL AND n.lease_until > clock_timestamp(),"
                " (SELECT count(*) FROM sagas AS s WHERE s.owner = n.id AND s.status IN ('running', 'compensating'))"
                " FROM usher_nodes AS n ORDER BY n.id"},
      // The WHERE clause is the partial index sagas_unfinished's, so the
      // planner can read the unfinished sagas alone.
      {"pinned", std::string("SELECT workflow, version, definition_hash, count(*) FROM sagas WHERE ") + kUnfinished +
                     " GROUP BY workflow, version, definition_hash ORDER BY workflow, version DESC, definition_hash"},
  }};
  return all;
}

int64_t int_at(const PGresult* r, int row, int col) { return std::stoll(PQgetvalue(r, row, col)); }
std::string text_at(const PGresult* r, int row, int col) { return PQgetvalue(r, row, col); }

// Decoders: a value this build cannot read means the database was not written
// by a compatible usher: kDataLoss.
Status read_saga_row(const PGresult* r, int row, int first, SagaRow& out) {
  out.id = text_at(r, row, first + 0);
  out.workflow = text_at(r, row, first + 1);
  out.version = int_at(r, row, first + 2);
  out.definition_hash = text_at(r, row, first + 3);
  auto status = parse_saga_status(PQgetvalue(r, row, first + 4));
  if (!status)
    return Status::data_loss("saga " + out.id + " has unknown status \"" + text_at(r, row, first + 4) + "\"");
  out.status = *status;
  out.current_step = text_at(r, row, first + 5);
  out.idempotency_key = text_at(r, row, first + 6);
  out.correlation_id = text_at(r, row, first + 7);
  out.created_at = int_at(r, row, first + 8);
  out.updated_at = int_at(r, row, first + 9);
  out.deadline = PQgetisnull(r, row, first + 10) ? std::nullopt : std::optional<int64_t>(int_at(r, row, first + 10));
  out.last_error = text_at(r, row, first + 11);
  out.last_seq = int_at(r, row, first + 12);
  out.owner = PQgetisnull(r, row, first + 13) ? 0 : int_at(r, row, first + 13);
  out.fence = int_at(r, row, first + 14);
  return Status::ok();
}

Status read_event(const PGresult* r, int row, int first, std::string saga_id, Event& e) {
  e.saga_id = std::move(saga_id);
  e.seq = int_at(r, row, first + 0);
  auto type = parse_event_type(PQgetvalue(r, row, first + 1));
  if (!type) {
    return Status::data_loss("event " + std::to_string(e.seq) + " of saga " + e.saga_id + " has unknown type \"" +
                             text_at(r, row, first + 1) + "\"");
  }
  e.type = *type;
  e.step = text_at(r, row, first + 2);
  const char* data = PQgetvalue(r, row, first + 3);
  e.data = Json::parse(data, data + PQgetlength(r, row, first + 3), nullptr, /*allow_exceptions=*/false);
  if (e.data.is_discarded()) {
    return Status::data_loss("event " + std::to_string(e.seq) + " of saga " + e.saga_id + " has data that is not JSON");
  }
  e.occurred_at = int_at(r, row, first + 4);
  e.causation_seq = int_at(r, row, first + 5);
  return Status::ok();
}

using Params = std::vector<std::optional<std::string>>;

class PgSagaReader final : public SagaStoreReader {
 public:
  PgSagaReader(std::string uri, pg::Connection conn)
      : uri_(std::move(uri)), where_(pg::describe(uri_)), conn_(std::move(conn)) {}

  Status prepare_statements();

  Result<std::optional<SagaRow>> saga(const std::string& id) override;
  Result<std::optional<std::string>> saga_id_by_idempotency_key(const std::string& key) override;
  Result<std::vector<Event>> events(const std::string& id, std::optional<int64_t> until_us) override;
  Result<std::vector<CommittedEvent>> events_after(int64_t position, size_t limit) override;
  Result<int64_t> last_position() override;
  Result<std::vector<SagaRow>> list(const SagaFilter& filter) override;
  Result<std::optional<std::string>> definition_source(const std::string& hash) override;
  Status for_each_unfinished(const std::function<void(const SagaRow&, std::vector<Event>&&)>& each) override;
  Status for_each_saga(const std::vector<std::string>& ids,
                       const std::function<void(const SagaRow&, std::vector<Event>&&)>& each) override;
  Result<SagaCounts> counts() override;
  Result<std::vector<NodeRow>> nodes() override;
  Result<std::vector<PinnedVersion>> unfinished_by_definition() override;

 private:
  // Reads a result of sagas joined with their events, ordered by saga, whole,
  // then calls `each` per saga.
  Status each_saga_of(pg::ResultPtr r, const std::function<void(const SagaRow&, std::vector<Event>&&)>& each,
                      size_t& sagas);
  Result<pg::ResultPtr> run(const char* name, const Params& params, const std::string& what);
  Status reconnect();

  const std::string uri_;
  const std::string where_;
  pg::Connection conn_;
  // list() has a statement per filter shape (list_filter.h, and one more
  // bit: `after` is not a saga id and is compared as text), prepared on first
  // use, so each is planned for its indexes.
  static constexpr unsigned kAfterText = kListShapes;
  std::array<bool, 2 * kListShapes> list_prepared_{};
};

Status PgSagaReader::prepare_statements() {
  list_prepared_ = {};
  for (const Statement& s : statements()) {
    if (Status st = conn_.prepare(s.name, s.sql, "prepare reads of " + where_); !st) return st;
  }
  return Status::ok();
}

Status PgSagaReader::reconnect() {
  auto opened = pg::Connection::open(uri_, "usher reader");
  if (!opened) return opened.status();
  conn_ = std::move(*opened);
  return prepare_statements();
}

Result<pg::ResultPtr> PgSagaReader::run(const char* name, const Params& params, const std::string& what) {
  if (conn_.broken()) {
    if (Status s = reconnect(); !s) return s;
  }
  auto r = conn_.exec_prepared(name, params, what + " in " + where_);
  if (r || !conn_.broken()) return r;
  // The connection went (a server restart): a read can be asked again.
  if (Status s = reconnect(); !s) return s;
  return conn_.exec_prepared(name, params, what + " in " + where_);
}

Result<std::optional<SagaRow>> PgSagaReader::saga(const std::string& id) {
  if (!pg::is_saga_id(id)) return std::optional<SagaRow>();
  auto r = run("saga", {id}, "read saga " + id);
  if (!r) return r.status();
  if (PQntuples(r->get()) == 0) return std::optional<SagaRow>();
  SagaRow row;
  if (Status s = read_saga_row(r->get(), 0, 0, row); !s) return s;
  return std::optional<SagaRow>(std::move(row));
}

Result<std::optional<std::string>> PgSagaReader::saga_id_by_idempotency_key(const std::string& key) {
  if (key.empty()) return std::optional<std::string>();  // "none" is stored as NULL
  auto r = run("by_key", {pg::storable(key)}, "find saga by idempotency key");
  if (!r) return r.status();
  if (PQntuples(r->get()) == 0) return std::optional<std::string>();
  return std::optional<std::string>(text_at(r->get(), 0, 0));
}

Result<std::vector<Event>> PgSagaReader::events(const std::string& id, std::optional<int64_t> until_us) {
  std::vector<Event> out;
  if (!pg::is_saga_id(id)) return out;
  auto r = run("events", {id, until_us ? std::optional(std::to_string(*until_us)) : std::nullopt},
               "read events of saga " + id);
  if (!r) return r.status();
  const int n = PQntuples(r->get());
  out.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    if (Status s = read_event(r->get(), i, 0, id, out.emplace_back()); !s) return s;
  }
  return out;
}

Result<std::vector<CommittedEvent>> PgSagaReader::events_after(int64_t position, size_t limit) {
  const size_t bounded = std::min<size_t>(limit, INT64_MAX);
  auto r = run("events_after", {std::to_string(position), std::to_string(bounded)},
               "read events after position " + std::to_string(position));
  if (!r) return r.status();
  std::vector<CommittedEvent> out;
  const int n = PQntuples(r->get());
  out.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    CommittedEvent& c = out.emplace_back();
    c.position = int_at(r->get(), i, 0);
    c.workflow = text_at(r->get(), i, 2);
    if (Status s = read_event(r->get(), i, 3, text_at(r->get(), i, 1), c.event); !s) return s;
  }
  return out;
}

Result<std::vector<SagaRow>> PgSagaReader::list(const SagaFilter& filter) {
  const bool after_text = filter.after && !pg::is_saga_id(*filter.after);
  const unsigned shape = list_shape(filter) | (after_text ? kAfterText : 0u);
  const std::string name = "list_" + std::to_string(shape);
  auto prepare = [&]() -> Status {
    if (list_prepared_[shape]) return Status::ok();
    std::string sql = "SELECT " + saga_columns() + " FROM sagas WHERE true";
    if (shape & kListStatus) sql += " AND status = $1";
    if (shape & kListWorkflow) sql += " AND workflow = $2";
    if (shape & kListAfter) sql += after_text ? " AND id::text < $3" : " AND id < $3::uuid";
    if (shape & kListKey) sql += " AND idempotency_key = $5";
    if (shape & kListCorrelation) sql += " AND correlation_id = $6";
    // The id bound makes the window a range of the primary key (list_filter.h).
    if (shape & kListCreatedAfter) sql += " AND id >= $7::uuid AND created_at >= usher_time($8)";
    if (shape & kListCreatedBefore) sql += " AND created_at < usher_time($9)";
    sql += " ORDER BY id DESC LIMIT $4";
    // Every shape takes the same nine parameters, typed here since a shape
    // need not mention them all.
    if (Status s = conn_.prepare(name.c_str(), sql, "prepare a listing of " + where_,
                                 {pg::kTextOid, pg::kTextOid, pg::kTextOid, pg::kInt8Oid, pg::kTextOid, pg::kTextOid,
                                  pg::kTextOid, pg::kInt8Oid, pg::kInt8Oid});
        !s) {
      return s;
    }
    list_prepared_[shape] = true;
    return Status::ok();
  };
  if (conn_.broken()) {
    if (Status s = reconnect(); !s) return s;
  }
  if (Status s = prepare(); !s) return s;
  constexpr size_t kMaxLimit = static_cast<size_t>(INT64_MAX);
  auto text = [](const std::optional<std::string>& v) {
    return v ? std::optional(pg::storable(*v)) : std::nullopt;
  };
  auto number = [](const std::optional<int64_t>& v) {
    return v ? std::optional(std::to_string(*v)) : std::nullopt;
  };
  Params params = {filter.status ? std::optional<std::string>(saga_status_name(*filter.status)) : std::nullopt,
                   text(filter.workflow),
                   text(filter.after),
                   std::to_string(std::min(filter.limit, kMaxLimit)),
                   text(filter.idempotency_key),
                   text(filter.correlation_id),
                   filter.created_after ? std::optional(saga_id_lower_bound(*filter.created_after)) : std::nullopt,
                   number(filter.created_after),
                   number(filter.created_before)};
  auto r = conn_.exec_prepared(name.c_str(), params, "list sagas in " + where_);
  if (!r) return r.status();
  std::vector<SagaRow> out;
  const int n = PQntuples(r->get());
  out.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    if (Status s = read_saga_row(r->get(), i, 0, out.emplace_back()); !s) return s;
  }
  return out;
}

Result<std::optional<std::string>> PgSagaReader::definition_source(const std::string& hash) {
  auto r = run("definition", {pg::storable(hash)}, "read definition " + hash);
  if (!r) return r.status();
  if (PQntuples(r->get()) == 0) return std::optional<std::string>();
  return std::optional<std::string>(text_at(r->get(), 0, 0));
}

// Page by page, each page read whole before `each` runs: `each` may use this
// reader (recovery reads definitions through it), which a half-read result
// would not allow, and a page bounds the memory that recovery of many sagas
// needs. Each page is one consistent snapshot of its sagas.
Status PgSagaReader::for_each_unfinished(const std::function<void(const SagaRow&, std::vector<Event>&&)>& each) {
  constexpr size_t kPageSagas = 1000;
  std::string after = "00000000-0000-0000-0000-000000000000";
  for (;;) {
    auto r = run("unfinished", {after, std::to_string(kPageSagas)}, "read unfinished sagas");
    if (!r) return r.status();
    size_t sagas = 0;
    std::string last;
    if (Status s = each_saga_of(std::move(*r), [&](const SagaRow& row, std::vector<Event>&& events) {
          last = row.id;
          each(row, std::move(events));
        }, sagas); !s) {
      return s;
    }
    if (sagas < kPageSagas) return Status::ok();
    after = last;
  }
}

Status PgSagaReader::for_each_saga(const std::vector<std::string>& ids,
                                   const std::function<void(const SagaRow&, std::vector<Event>&&)>& each) {
  pg::ArrayLiteral list;
  for (const std::string& id : ids) {
    if (pg::is_saga_id(id)) list.add(id);
  }
  auto r = run("sagas_by_id", {list.take()}, "read sagas with their events");
  if (!r) return r.status();
  size_t sagas = 0;
  return each_saga_of(std::move(*r), each, sagas);
}

Status PgSagaReader::each_saga_of(pg::ResultPtr r,
                                  const std::function<void(const SagaRow&, std::vector<Event>&&)>& each,
                                  size_t& sagas) {
  const PGresult* res = r.get();
  std::vector<std::pair<SagaRow, std::vector<Event>>> page;
  for (int i = 0; i < PQntuples(res); ++i) {
    // Rows come ordered by saga: a new id starts the next saga.
    if (page.empty() || page.back().first.id != PQgetvalue(res, i, 0)) {
      auto& [row, events] = page.emplace_back();
      if (Status s = read_saga_row(res, i, 0, row); !s) return s;
    }
    auto& [row, events] = page.back();
    if (Status s = read_event(res, i, kSagaColumnCount, row.id, events.emplace_back()); !s) return s;
  }
  r.reset();
  sagas = page.size();
  for (auto& [row, events] : page) each(row, std::move(events));
  return Status::ok();
}

Result<int64_t> PgSagaReader::last_position() {
  auto r = run("last_position", {}, "read the last position");
  if (!r) return r.status();
  return int_at(r->get(), 0, 0);
}

Result<SagaCounts> PgSagaReader::counts() {
  SagaCounts out = SagaCounts::zero();
  auto r = run("counts", {}, "count sagas by status");
  if (!r) return r.status();
  for (int i = 0; i < PQntuples(r->get()); ++i) {
    const std::string status = text_at(r->get(), i, 0);
    if (!out.set(status, int_at(r->get(), i, 1)))
      return Status::data_loss("sagas in " + where_ + " have unknown status \"" + status + "\"");
  }
  auto oldest = run("oldest", {}, "find the oldest unfinished saga");
  if (!oldest) return oldest.status();
  if (PQntuples(oldest->get()) == 1 && !PQgetisnull(oldest->get(), 0, 0))
    out.oldest_unfinished_created_at = int_at(oldest->get(), 0, 0);
  return out;
}

Result<std::vector<NodeRow>> PgSagaReader::nodes() {
  auto r = run("nodes", {}, "read the nodes");
  if (!r) return r.status();
  std::vector<NodeRow> out;
  const PGresult* res = r->get();
  for (int i = 0; i < PQntuples(res); ++i) {
    NodeRow& n = out.emplace_back();
    n.id = int_at(res, i, 0);
    n.name = text_at(res, i, 1);
    n.address = text_at(res, i, 2);
    n.started_at = int_at(res, i, 3);
    n.lease_until = int_at(res, i, 4);
    n.stopped = text_at(res, i, 5) == "t";
    n.live = text_at(res, i, 6) == "t";
    n.sagas_owned = int_at(res, i, 7);
  }
  return out;
}

Result<std::vector<PinnedVersion>> PgSagaReader::unfinished_by_definition() {
  auto r = run("pinned", {}, "count unfinished sagas by definition");
  if (!r) return r.status();
  std::vector<PinnedVersion> out;
  const PGresult* res = r->get();
  for (int i = 0; i < PQntuples(res); ++i) {
    PinnedVersion& p = out.emplace_back();
    p.workflow = text_at(res, i, 0);
    p.version = int_at(res, i, 1);
    p.definition_hash = text_at(res, i, 2);
    p.unfinished = int_at(res, i, 3);
  }
  return out;
}

}  // namespace

Result<std::unique_ptr<SagaStoreReader>> open_postgres_reader(const std::string& uri) {
  auto conn = pg::Connection::open(uri, "usher reader");
  if (!conn) return conn.status();
  if (Status s = pg::check_version(*conn, pg::describe(uri)); !s) return s;
  auto reader = std::make_unique<PgSagaReader>(uri, std::move(*conn));
  if (Status s = reader->prepare_statements(); !s) return s;
  return std::unique_ptr<SagaStoreReader>(std::move(reader));
}

}  // namespace usher
