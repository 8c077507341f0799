// The PostgreSQL saga log writer (see pg_saga_store.h for what each failure
// means and the threading).
#include "store/postgres/pg_saga_store.h"

#include <algorithm>
#include <cassert>
#include <string_view>
#include <unordered_map>

#include "store/open_store.h"
#include "store/postgres/pg_schema.h"

namespace usher {
namespace {

// Reconnection backoff: the first retry after this, doubling up to the cap.
constexpr std::chrono::milliseconds kFirstBackoff{50};
constexpr std::chrono::milliseconds kMaxBackoff{2000};

// The parameters of usher_append, in order (schemas/saga-log-postgresql.sql).
constexpr const char* kAppendSql =
    "SELECT usher_append($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::jsonb[], $6::timestamptz[], "
    "$7::bigint[], $8::uuid[], $9::bigint[], $10::text[], $11::bigint[], $12::text[], $13::text[], $14::text[], "
    "$15::text[], $16::text[], $17::timestamptz[], $18::timestamptz[], $19::timestamptz[], $20::text[], "
    "$21::bigint[], $22::bigint[], $23::bigint[])";
constexpr int kAppendParams = 23;
constexpr const char* kDefinitionSql =
    "INSERT INTO definitions (hash, workflow, version, source) VALUES ($1, $2, $3, $4) ON CONFLICT (hash) DO NOTHING";
// What tells, after a lost connection, whether a batch committed: the batch
// is one transaction, so one of its events (or its definitions) is enough —
// that event as this batch wrote it, by its node under its fence: meanwhile
// another node may have taken the saga over and written its own at that seq.
constexpr const char* kEventExistsSql =
    "SELECT count(*) FROM saga_events WHERE saga_id = $1::uuid AND seq = $2 AND node IS NOT DISTINCT FROM "
    "$3::bigint AND fence = $4";
constexpr const char* kDefinitionsKnownSql = "SELECT count(*) FROM definitions WHERE hash = ANY($1::text[])";

// The saga rows of a batch, at most one per saga, as usher_append takes them:
// a saga with several groups in one batch (one append after another, before
// the first committed) gets one row, the last group's, checked against the
// first group's prior_seq, since usher_append's guard sees the log as it was
// before the batch.
struct MergedRows {
  std::vector<SagaRow> rows;
  std::vector<size_t> first_group;  // rows[i] came first from the batch's group first_group[i]
  // saga id -> rows[i]; the keys view the groups' rows, which outlive this
  // (not `rows`, whose strings move as it grows).
  std::unordered_map<std::string_view, size_t> index;

  void add(const SagaRow& row, size_t group) {
    auto [it, fresh] = index.try_emplace(row.id, rows.size());
    if (fresh) {
      rows.push_back(row);
      first_group.push_back(group);
      return;
    }
    SagaRow& merged = rows[it->second];
    const int64_t prior = merged.prior_seq;
    merged = row;
    merged.prior_seq = prior;
  }
};

}  // namespace

Result<std::unique_ptr<SagaStore>> open_postgres_store(const std::string& uri, size_t max_batch_events, bool migrate) {
  auto store = PgSagaStore::open(uri, max_batch_events, migrate);
  if (!store) return store.status();
  return std::unique_ptr<SagaStore>(std::move(*store));
}

Result<std::unique_ptr<PgSagaStore>> PgSagaStore::open(const std::string& uri, size_t max_batch_events, bool migrate) {
  auto conn = pg::Connection::open(uri, "usher");
  if (!conn) return conn.status();
  const std::string where = pg::describe(uri);
  if (Status s = migrate ? pg::migrate(*conn, where) : pg::check_version(*conn, where); !s) return s;
  std::unique_ptr<PgSagaStore> store(new PgSagaStore(uri, std::move(*conn), max_batch_events));
  if (Status s = store->prepare_statements(); !s) return s;
  store->writer_ = std::thread([raw = store.get()] { raw->run(); });
  store->writer_id_ = store->writer_.get_id();
  return store;
}

PgSagaStore::PgSagaStore(std::string uri, pg::Connection conn, size_t max_batch_events)
    : uri_(std::move(uri)),
      where_(pg::describe(uri_)),
      max_batch_events_(max_batch_events),
      conn_(std::move(conn)),
      backoff_(kFirstBackoff) {}

PgSagaStore::~PgSagaStore() { close(); }

Result<std::unique_ptr<SagaStoreReader>> PgSagaStore::open_reader() { return open_postgres_reader(uri_); }
Result<std::unique_ptr<NodeRegistry>> PgSagaStore::open_registry() { return open_postgres_registry(uri_); }

void PgSagaStore::append(std::vector<Event> events, std::vector<SagaRow> rows, std::function<void(Status)> done) {
  auto not_uuid = [&](const std::string& id) {
    return Status::invalid_argument("saga id \"" + id + "\" is not a UUID; " + where_ + " stores saga ids as uuid");
  };
  for (const Event& e : events)
    if (!pg::is_saga_id(e.saga_id)) return finish(done, not_uuid(e.saga_id));
  for (const SagaRow& r : rows)
    if (!pg::is_saga_id(r.id)) return finish(done, not_uuid(r.id));
  auto encoded = encode_events(std::move(events));
  if (!encoded) return finish(done, encoded.status());
  for (EncodedEvent& e : *encoded) e.data = pg::storable_json(std::move(e.data));
  enqueue(queue_, Group{std::move(*encoded), std::move(rows), std::nullopt, std::move(done)}, where_);
}

Status PgSagaStore::store_definition(const std::string& hash, const std::string& workflow, int64_t version,
                                     const std::string& source) {
  return write_definition(queue_, writer_id_, DefinitionRecord{hash, workflow, version, source}, where_);
}

void PgSagaStore::flush() {
  if (std::this_thread::get_id() == writer_id_) return;
  queue_.flush();
}

void PgSagaStore::close() {
  std::lock_guard close_lock(close_mu_);
  queue_.close();
  if (std::this_thread::get_id() == writer_id_) return;
  if (writer_.joinable()) writer_.join();
  conn_ = {};
}

SagaStoreStats PgSagaStore::stats() const {
  SagaStoreStats s;
  s.commits = commits_.load(std::memory_order_relaxed);
  s.events = events_.load(std::memory_order_relaxed);
  s.last_batch_events = last_batch_events_.load(std::memory_order_relaxed);
  s.commit_micros_total = commit_micros_total_.load(std::memory_order_relaxed);
  s.queued_events = queue_.queued_events();
  return s;
}

void PgSagaStore::run() {
  std::vector<Group> batch;
  while (queue_.take(batch, max_batch_events_)) {
    commit_batch(batch);
    const size_t groups = batch.size();
    size_t events = 0;
    for (const Group& g : batch) events += g.events.size();
    batch.clear();
    queue_.finished(groups, events);
  }
}

// As SqliteSagaStore::commit_batch: one transaction for the batch; a group at
// fault alone is failed and the rest redone; too many, or a fault no group can
// be blamed for, and the rest go one group per transaction.
void PgSagaStore::commit_batch(std::vector<Group>& batch) {
  pending_.clear();
  for (Group& g : batch) pending_.push_back(&g);
  auto finish_all = [this](const Status& s) {
    for (Group* g : pending_) finish(g->done, s);
    pending_.clear();
  };
  bool one_by_one = false;
  for (size_t excluded = 0; !pending_.empty(); ++excluded) {
    // Each pass may follow one that lost its connection after a refusal.
    if (Status s = connect(); !s) return finish_all(s);
    fail_broken_chains();
    if (pending_.empty()) return;
    Attempt a = write(pending_);
    if (a.outcome == Outcome::kCommitted) return finish_all(Status::ok());
    if (a.outcome == Outcome::kUnknown) {
      resolve(pending_, a.status);
      pending_.clear();
      return;
    }
    if (!is_group_fault(a.status)) return finish_all(a.status);
    auto culprit = std::find(pending_.begin(), pending_.end(), a.culprit);
    if (culprit == pending_.end() || excluded == kMaxExclusions) {
      one_by_one = true;
      break;
    }
    finish((*culprit)->done, std::move(a.status));
    pending_.erase(culprit);
  }
  if (!one_by_one) return;

  std::vector<Group*> rest = std::move(pending_);
  pending_.clear();
  for (Group* g : rest) {
    if (Status s = connect(); !s) {
      finish(g->done, s);
      continue;
    }
    Attempt a = write({g});
    if (a.outcome == Outcome::kUnknown) {
      resolve({g}, a.status);
    } else {
      finish(g->done, a.outcome == Outcome::kCommitted ? Status::ok() : a.status);
    }
  }
}

// A saga's groups in one batch must follow each other: a group that does not
// start where the saga's previous group in the batch ends cannot be written,
// here as in SQLite, where the log's guard would refuse it.
void PgSagaStore::fail_broken_chains() {
  std::unordered_map<std::string_view, const SagaRow*> previous;
  for (auto it = pending_.begin(); it != pending_.end();) {
    Group* g = *it;
    Status broken;
    for (const SagaRow& r : g->rows) {
      auto seen = previous.find(r.id);
      if (seen == previous.end()) continue;
      if (seen->second->last_seq != r.prior_seq) {
        broken = Status::aborted("saga " + r.id + ": events after seq " + std::to_string(r.prior_seq) +
                                 " do not continue the log in " + where_ + " (an earlier append failed)");
      } else if (seen->second->owner != r.owner || seen->second->fence != r.fence) {
        // One row stands for the saga's groups of the batch: all under one owner.
        broken = Status::not_owner("saga " + r.id + " changed owner between two appends of one batch");
      }
    }
    if (broken.is_ok()) {
      for (const SagaRow& r : g->rows) previous[r.id] = &r;
      ++it;
      continue;
    }
    finish(g->done, std::move(broken));
    it = pending_.erase(it);
  }
}

// The group usher_append blamed, from its error's DETAIL ("saga 3": the third
// row, "event 12": the twelfth event); nullptr if it names none.
PgSagaStore::Group* PgSagaStore::blamed(const std::string& detail, const std::vector<Group*>& groups,
                                        const std::vector<size_t>& event_group, const std::vector<size_t>& row_group) {
  auto ordinal = [&](std::string_view prefix, const std::vector<size_t>& owners) -> Group* {
    if (!detail.starts_with(prefix)) return nullptr;
    size_t n = 0;
    for (char c : std::string_view(detail).substr(prefix.size())) {
      if (c < '0' || c > '9') return nullptr;
      n = n * 10 + static_cast<size_t>(c - '0');
      if (n > owners.size()) return nullptr;
    }
    return n >= 1 ? groups[owners[n - 1]] : nullptr;
  };
  if (Group* g = ordinal("saga ", row_group)) return g;
  return ordinal("event ", event_group);
}

// One transaction for `groups`: usher_append over arrays of all their events
// and rows, an insert per definition, one Sync.
PgSagaStore::Attempt PgSagaStore::write(const std::vector<Group*>& groups) {
  pg::ArrayLiteral e_saga, e_seq, e_type, e_step, e_data, e_at, e_cause;
  MergedRows merged;
  std::vector<size_t> event_group;  // the i-th event sent belongs to groups[event_group[i]]
  uint64_t events = 0;
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    const Group* g = groups[gi];
    event_group.insert(event_group.end(), g->events.size(), gi);
    for (const EncodedEvent& e : g->events) {
      e_saga.add(e.saga_id);
      e_seq.add(e.seq);
      e_type.add(event_type_name(e.type));
      e_step.add_or_null(e.step);
      e_data.add(e.data);
      e_at.add_time(e.occurred_at);
      e_cause.add(e.causation_seq);
    }
    events += g->events.size();
    for (const SagaRow& r : g->rows) merged.add(r, gi);
  }
  pg::ArrayLiteral s_id, s_prior, s_workflow, s_version, s_hash, s_status, s_step, s_key, s_correlation, s_created,
      s_updated, s_deadline, s_error, s_last, s_owner, s_fence;
  for (const SagaRow& r : merged.rows) {
    s_id.add(r.id);
    s_prior.add(r.prior_seq);
    s_workflow.add(r.workflow);
    s_version.add(r.version);
    s_hash.add(r.definition_hash);
    s_status.add(saga_status_name(r.status));
    s_step.add_or_null(r.current_step);
    s_key.add_or_null(r.idempotency_key);
    s_correlation.add_or_null(r.correlation_id);
    s_created.add_time(r.created_at);
    s_updated.add_time(r.updated_at);
    r.deadline ? s_deadline.add_time(*r.deadline) : s_deadline.add_null();
    s_error.add_or_null(r.last_error);
    s_last.add(r.last_seq);
    r.owner ? s_owner.add(r.owner) : s_owner.add_null();
    s_fence.add(r.fence);
  }
  const std::string params[kAppendParams] = {
      e_saga.take(),   e_seq.take(),     e_type.take(),       e_step.take(),    e_data.take(),     e_at.take(),
      e_cause.take(),  s_id.take(),      s_prior.take(),      s_workflow.take(), s_version.take(), s_hash.take(),
      s_status.take(), s_step.take(),    s_key.take(),        s_correlation.take(), s_created.take(),
      s_updated.take(), s_deadline.take(), s_error.take(),    s_last.take(),    s_owner.take(),    s_fence.take()};
  const char* values[kAppendParams];
  for (int i = 0; i < kAppendParams; ++i) values[i] = params[i].c_str();

  PGconn* c = conn_.get();
  const std::string what = "append to saga log " + where_;
  auto lost = [&](Outcome outcome) {
    Attempt a{outcome, Status::unavailable(what + ": " + pg::describe_error(c)), nullptr};
    disconnect();
    return a;
  };
  if (PQenterPipelineMode(c) != 1) return lost(Outcome::kFailed);
  bool sent = true;
  if (events > 0 || !merged.rows.empty()) {
    sent = PQsendQueryPrepared(c, "usher_append", kAppendParams, values, nullptr, nullptr, 0) == 1;
  }
  for (const Group* g : groups) {
    if (!sent || !g->definition) continue;
    const DefinitionRecord& d = *g->definition;
    const std::string version = std::to_string(d.version);
    const std::string workflow = pg::storable(d.workflow);
    const std::string source = pg::storable(d.source);
    const char* def[] = {d.hash.c_str(), workflow.c_str(), version.c_str(), source.c_str()};
    sent = PQsendQueryPrepared(c, "usher_definition", 4, def, nullptr, nullptr, 0) == 1;
  }
  // Without a Sync the server commits nothing: a failure to send is a definite failure.
  if (!sent) return lost(Outcome::kFailed);
  const auto start = std::chrono::steady_clock::now();
  if (PQpipelineSync(c) != 1) return lost(Outcome::kUnknown);

  Status refused;
  Group* culprit = nullptr;
  bool synced = false;
  int nulls = 0;  // one NULL ends each statement's results; two in a row: nothing more will come
  while (!synced && nulls < 2) {
    pg::ResultPtr r(PQgetResult(c));
    if (!r) {
      ++nulls;
      if (conn_.broken()) break;
      continue;
    }
    nulls = 0;
    const ExecStatusType st = PQresultStatus(r.get());
    if (st == PGRES_PIPELINE_SYNC) {
      synced = true;
    } else if (st == PGRES_FATAL_ERROR && refused.is_ok()) {
      refused = pg::check(r.get(), c, what);
      culprit = blamed(pg::error_detail(r.get()), groups, event_group, merged.first_group);
    }
  }
  if (!synced) {
    // The connection went before the Sync's answer. An error the server gave
    // for one of our statements means it rolled back; anything else (the
    // connection lost, the server shutting down) leaves the commit unknown.
    if (!refused.is_ok() && refused.code() != StatusCode::kUnavailable) {
      disconnect();
      return {Outcome::kFailed, refused, culprit};
    }
    return lost(Outcome::kUnknown);
  }
  PQexitPipelineMode(c);
  if (!refused.is_ok()) return {Outcome::kFailed, refused, culprit};
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start).count();
  commits_.fetch_add(1, std::memory_order_relaxed);
  events_.fetch_add(events, std::memory_order_relaxed);
  last_batch_events_.store(events, std::memory_order_relaxed);
  commit_micros_total_.fetch_add(static_cast<uint64_t>(micros), std::memory_order_relaxed);
  return {Outcome::kCommitted, Status::ok(), nullptr};
}

// The outcome of `groups`' transaction is unknown: reconnect until the log
// can say whether it committed. Groups queued meanwhile were never sent and
// fail at once, so the engine refuses new sagas while the server is away.
void PgSagaStore::resolve(const std::vector<Group*>& groups, const Status& why) {
  for (;;) {
    if (connect().is_ok()) {
      auto in_log = committed(groups);
      if (in_log) {
        for (Group* g : groups) {
          finish(g->done, *in_log ? Status::ok()
                                  : Status::unavailable(why.message() + " (the transaction did not commit)"));
        }
        return;
      }
      disconnect();
    }
    if (queue_.closing()) {
      for (Group* g : groups) {
        finish(g->done,
               Status::unavailable(why.message() +
                                   "; whether it committed is unknown (recovery reads the log on the next start)"));
      }
      return;
    }
    fail_waiting(connect_error_.is_ok() ? why : connect_error_);
    queue_.pause(backoff_);
  }
}

Result<bool> PgSagaStore::committed(const std::vector<Group*>& groups) {
  const std::string what = "check whether a batch committed to " + where_;
  for (const Group* g : groups) {
    if (g->events.empty()) continue;
    const EncodedEvent& e = g->events.front();
    auto row = std::find_if(g->rows.begin(), g->rows.end(), [&](const SagaRow& r) { return r.id == e.saga_id; });
    const int64_t owner = row == g->rows.end() ? 0 : row->owner;
    const int64_t fence = row == g->rows.end() ? 0 : row->fence;
    auto r = conn_.exec_prepared("usher_event_exists",
                                 {e.saga_id, std::to_string(e.seq),
                                  owner ? std::optional(std::to_string(owner)) : std::nullopt, std::to_string(fence)},
                                 what);
    if (!r) return r.status();
    return std::string_view(PQgetvalue(r->get(), 0, 0)) != "0";
  }
  pg::ArrayLiteral hashes;
  size_t n = 0;
  for (const Group* g : groups) {
    if (g->definition) {
      hashes.add(g->definition->hash);
      ++n;
    }
  }
  auto r = conn_.exec_prepared("usher_definitions_known", {hashes.take()}, what);
  if (!r) return r.status();
  return std::stoull(PQgetvalue(r->get(), 0, 0)) == n;
}

// Keeps the writer's connection up: reconnects when it was lost, at most once
// per backoff interval, and prepares the statements on each new connection.
Status PgSagaStore::connect() {
  if (!conn_.broken()) return Status::ok();
  const auto now = std::chrono::steady_clock::now();
  if (now < next_connect_) return connect_error_;
  auto attempt = [&]() -> Status {
    auto opened = pg::Connection::open(uri_, "usher");
    if (!opened) return opened.status();
    conn_ = std::move(*opened);
    return prepare_statements();
  };
  Status s = attempt();
  if (s.is_ok()) {
    backoff_ = kFirstBackoff;
    connect_error_ = Status::ok();
    return s;
  }
  conn_ = {};
  connect_error_ = Status::unavailable("saga log " + where_ + " is unreachable: " + s.message());
  next_connect_ = now + backoff_;
  backoff_ = std::min(backoff_ * 2, kMaxBackoff);
  return connect_error_;
}

Status PgSagaStore::prepare_statements() {
  const std::string what = "prepare the writer's statements on " + where_;
  for (auto [name, sql] : {std::pair{"usher_append", kAppendSql}, std::pair{"usher_definition", kDefinitionSql},
                           std::pair{"usher_event_exists", kEventExistsSql},
                           std::pair{"usher_definitions_known", kDefinitionsKnownSql}}) {
    if (Status s = conn_.prepare(name, sql, what); !s) return s;
  }
  return Status::ok();
}

void PgSagaStore::disconnect() { conn_ = {}; }

void PgSagaStore::fail_waiting(const Status& why) {
  std::vector<Group> waiting;
  queue_.take_all(waiting);
  if (waiting.empty()) return;
  size_t events = 0;
  for (Group& g : waiting) {
    events += g.events.size();
    finish(g.done, why);
  }
  const size_t n = waiting.size();
  waiting.clear();
  queue_.finished(n, events);
}

}  // namespace usher
