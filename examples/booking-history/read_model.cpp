#include "read_model.h"

#include <sqlite3.h>

#include <cstdio>
#include <stdexcept>

namespace booking_history {

namespace {

// The schema. `last_seq` is the idempotency key (with saga_id, the primary
// key): each saga's events arrive in seq order, so "seq <= last_seq" means
// "already applied". `failure` and `compensation_reason` are working state
// of the fold (booking.h), kept so that a later event folds the same way
// whether it comes in this run, the next one, or a rebuild.
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS bookings (
  saga_id             TEXT PRIMARY KEY,
  status              TEXT NOT NULL,
  user_id             TEXT,
  concert_id          TEXT,
  seat                TEXT,
  amount              NUMERIC,
  started_at          TEXT,
  finished_at         TEXT,
  outcome             TEXT,
  reason              TEXT,
  ticket_id           TEXT,
  confirmed_at        TEXT,
  confirm_ms          INTEGER,
  last_seq            INTEGER NOT NULL,
  failure             TEXT,
  compensation_reason TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS feed_position (
  source   TEXT PRIMARY KEY,
  position TEXT NOT NULL
);
-- Bookings per concert and day; started_at is UTC ("…Z"), so its first ten
-- characters are the UTC date.
CREATE VIEW IF NOT EXISTS bookings_per_concert_day AS
  SELECT concert_id, substr(started_at, 1, 10) AS day, count(*) AS bookings
  FROM bookings GROUP BY concert_id, day;
-- Of the bookings that ended (completed, compensated or terminated; running
-- and stuck ones have not), the share that was undone.
CREATE VIEW IF NOT EXISTS compensation_rate AS
  SELECT sum(status IN ('completed', 'compensated', 'terminated')) AS ended,
         sum(status = 'compensated') AS compensated,
         100.0 * sum(status = 'compensated') / nullif(sum(status IN ('completed', 'compensated', 'terminated')), 0)
           AS percent
  FROM bookings;
CREATE VIEW IF NOT EXISTS compensation_reasons AS
  SELECT reason, count(*) AS bookings FROM bookings WHERE status = 'compensated' GROUP BY reason;
-- Time to confirm per confirmed booking; the average is here, the p95 is
-- computed by the reader (summary.cpp) from these rows.
CREATE VIEW IF NOT EXISTS confirm_times AS
  SELECT saga_id, confirm_ms FROM bookings WHERE confirm_ms IS NOT NULL;
CREATE VIEW IF NOT EXISTS confirm_time_average AS
  SELECT count(*) AS confirmed, avg(confirm_ms) AS average_ms FROM confirm_times;
)sql";

constexpr const char* kDrop = R"sql(
DROP VIEW IF EXISTS confirm_time_average;
DROP VIEW IF EXISTS confirm_times;
DROP VIEW IF EXISTS compensation_reasons;
DROP VIEW IF EXISTS compensation_rate;
DROP VIEW IF EXISTS bookings_per_concert_day;
DROP TABLE IF EXISTS feed_position;
DROP TABLE IF EXISTS bookings;
)sql";

// A prepared statement, finalized when it goes out of scope.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK)
      throw std::runtime_error(std::string("sqlite: ") + sqlite3_errmsg(db));
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  void bind(int i, const std::string& v) { check(sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT)); }
  void bind(int i, const std::optional<std::string>& v) { v ? bind(i, *v) : check(sqlite3_bind_null(stmt_, i)); }
  void bind(int i, int64_t v) { check(sqlite3_bind_int64(stmt_, i, v)); }
  void bind(int i, const std::optional<int64_t>& v) { v ? bind(i, *v) : check(sqlite3_bind_null(stmt_, i)); }
  void bind_number(int i, const nlohmann::json& v) {
    if (v.is_number_integer()) check(sqlite3_bind_int64(stmt_, i, v.get<int64_t>()));
    else if (v.is_number()) check(sqlite3_bind_double(stmt_, i, v.get<double>()));
    else check(sqlite3_bind_null(stmt_, i));
  }
  // True while there is a row.
  bool step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw std::runtime_error(std::string("sqlite: ") + sqlite3_errmsg(db_));
  }
  std::optional<std::string> text(int col) {
    if (sqlite3_column_type(stmt_, col) == SQLITE_NULL) return std::nullopt;
    return std::string(reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col)),
                       static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
  }
  std::optional<int64_t> integer(int col) {
    if (sqlite3_column_type(stmt_, col) == SQLITE_NULL) return std::nullopt;
    return sqlite3_column_int64(stmt_, col);
  }
  nlohmann::json number(int col) {
    switch (sqlite3_column_type(stmt_, col)) {
      case SQLITE_INTEGER: return sqlite3_column_int64(stmt_, col);
      case SQLITE_FLOAT: return sqlite3_column_double(stmt_, col);
      default: return nullptr;
    }
  }

 private:
  void check(int rc) {
    if (rc != SQLITE_OK) throw std::runtime_error(std::string("sqlite: ") + sqlite3_errmsg(db_));
  }
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

}  // namespace

ApplyCounts& ApplyCounts::operator+=(const ApplyCounts& o) {
  applied += o.applied;
  repeats += o.repeats;
  other_workflows += o.other_workflows;
  malformed += o.malformed;
  return *this;
}

ReadModel::ReadModel(const std::string& path) {
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK) {
    std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    throw std::runtime_error(path + ": " + why);
  }
  // Another reader of the same file (a dashboard) waits instead of failing.
  sqlite3_busy_timeout(db_, 5000);
  exec("PRAGMA journal_mode = WAL");
  create_schema();
}

ReadModel::~ReadModel() { sqlite3_close(db_); }

void ReadModel::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string why = err ? err : sqlite3_errmsg(db_);
    sqlite3_free(err);
    throw std::runtime_error("sqlite: " + why);
  }
}

void ReadModel::create_schema() { exec(kSchema); }

void ReadModel::reset() {
  exec("BEGIN IMMEDIATE");
  try {
    exec(kDrop);
    create_schema();
    exec("COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

std::string ReadModel::position(const std::string& source) {
  Statement q(db_, "SELECT position FROM feed_position WHERE source = ?");
  q.bind(1, source);
  return q.step() ? q.text(0).value_or("") : "";
}

std::optional<Booking> ReadModel::load(const std::string& saga_id) {
  Statement q(db_,
              "SELECT status, user_id, concert_id, seat, amount, started_at, finished_at, outcome, reason, ticket_id, "
              "confirmed_at, confirm_ms, last_seq, failure, compensation_reason FROM bookings WHERE saga_id = ?");
  q.bind(1, saga_id);
  if (!q.step()) return std::nullopt;
  Booking b;
  b.saga_id = saga_id;
  b.status = q.text(0).value_or("");
  b.user_id = q.text(1);
  b.concert_id = q.text(2);
  b.seat = q.text(3);
  b.amount = q.number(4);
  b.started_at = q.text(5);
  b.finished_at = q.text(6);
  b.outcome = q.text(7);
  b.reason = q.text(8);
  b.ticket_id = q.text(9);
  b.confirmed_at = q.text(10);
  b.confirm_ms = q.integer(11);
  b.last_seq = q.integer(12).value_or(0);
  b.failure = q.text(13);
  b.compensation_reason = q.text(14);
  return b;
}

void ReadModel::save(const Booking& b) {
  Statement q(db_,
              "INSERT OR REPLACE INTO bookings (saga_id, status, user_id, concert_id, seat, amount, started_at, "
              "finished_at, outcome, reason, ticket_id, confirmed_at, confirm_ms, last_seq, failure, "
              "compensation_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  q.bind(1, b.saga_id);
  q.bind(2, b.status);
  q.bind(3, b.user_id);
  q.bind(4, b.concert_id);
  q.bind(5, b.seat);
  q.bind_number(6, b.amount);
  q.bind(7, b.started_at);
  q.bind(8, b.finished_at);
  q.bind(9, b.outcome);
  q.bind(10, b.reason);
  q.bind(11, b.ticket_id);
  q.bind(12, b.confirmed_at);
  q.bind(13, b.confirm_ms);
  q.bind(14, b.last_seq);
  q.bind(15, b.failure);
  q.bind(16, b.compensation_reason);
  q.step();
}

ApplyCounts ReadModel::apply(const std::vector<nlohmann::json>& events, const std::string& source,
                             const std::optional<std::string>& position) {
  ApplyCounts counts;
  exec("BEGIN IMMEDIATE");
  try {
    for (const nlohmann::json& j : events) {
      std::string why;
      std::optional<FeedEvent> e = parse_feed_event(j, why);
      if (!e) {
        ++counts.malformed;
        std::string shown = j.is_discarded() ? "" : ": " + j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        if (shown.size() > 200) shown = shown.substr(0, 200) + "…";
        std::fprintf(stderr, "usher-booking-history: warning: skipped an event: %s%s\n", why.c_str(), shown.c_str());
        continue;
      }
      if (e->workflow != kWorkflow) {
        ++counts.other_workflows;
        continue;
      }
      std::optional<Booking> b = load(e->saga_id);
      if (b && e->seq <= b->last_seq) {
        ++counts.repeats;
        continue;
      }
      if (!b) {
        b.emplace();
        b->saga_id = e->saga_id;
      }
      // The feed gives a saga's events in seq order without gaps; a gap
      // means events were lost upstream (a topic trimmed by retention). The
      // event is applied anyway: the booking is as right as it can be.
      if (e->seq != b->last_seq + 1)
        std::fprintf(stderr, "usher-booking-history: warning: saga %s: seq %lld after %lld: events are missing\n",
                     e->saga_id.c_str(), static_cast<long long>(e->seq), static_cast<long long>(b->last_seq));
      std::vector<std::string> warnings;
      fold(*b, *e, warnings);
      for (const std::string& w : warnings)
        std::fprintf(stderr, "usher-booking-history: warning: saga %s seq %lld: %s\n", e->saga_id.c_str(),
                     static_cast<long long>(e->seq), w.c_str());
      save(*b);
      ++counts.applied;
    }
    if (position) {
      Statement q(db_, "INSERT OR REPLACE INTO feed_position (source, position) VALUES (?, ?)");
      q.bind(1, source);
      q.bind(2, *position);
      q.step();
    }
    exec("COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
  return counts;
}

}  // namespace booking_history
