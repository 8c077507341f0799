// NodeRegistry on its own PostgreSQL connection (node_registry.h). Each call
// is one statement, so one implicit transaction; a lost connection is
// reconnected once per call, since each can simply be asked again — a renew
// or a claim whose answer was lost is judged again on the next call.
#include "store/node_registry.h"

#include <array>
#include <memory>
#include <string_view>

#include "store/open_store.h"
#include "store/postgres/pg.h"
#include "store/postgres/pg_schema.h"

namespace usher {
namespace {

// A lease holds while its end is ahead of the database's clock (clock_timestamp():
// now, not the transaction's start) and the node has not left.
constexpr const char* kHolds = "lease_until > clock_timestamp() AND stopped_at IS NULL";

struct Statement {
  const char* name;
  std::string sql;
};

const std::array<Statement, 6>& statements() {
  static const std::array<Statement, 6> all = {{
      {"join", "INSERT INTO usher_nodes (name, lease_until) VALUES ($1, clock_timestamp() + $2 * interval '1 ms')"
               " RETURNING id"},
      {"renew", std::string("UPDATE usher_nodes SET lease_until = clock_timestamp() + $2 * interval '1 ms'"
                            " WHERE id = $1 AND ") + kHolds + " RETURNING id"},
      {"advertise", "UPDATE usher_nodes SET address = $2 WHERE id = $1"},
      {"leave", "UPDATE usher_nodes SET lease_until = least(lease_until, clock_timestamp()),"
                " stopped_at = clock_timestamp() WHERE id = $1"},
      // SKIP LOCKED: claimers running at once take disjoint sagas, and a saga
      // whose append is committing right now is left for the next sweep.
      {"claim_orphans",
       std::string("UPDATE sagas AS s SET owner = $1, fence = s.fence + 1"
                   " FROM (SELECT id FROM sagas"
                   "        WHERE status IN ('running', 'compensating')"
                   "          AND (owner IS NULL OR owner IN (SELECT id FROM usher_nodes WHERE NOT (") + kHolds + ")))"
                   "        LIMIT $2 FOR UPDATE SKIP LOCKED) AS orphan"
                   " WHERE s.id = orphan.id AND EXISTS (SELECT 1 FROM usher_nodes WHERE id = $1 AND " + kHolds + ")"
                   " RETURNING s.id::text, s.fence"},
      // Waits for an append of the saga being committed by its owner: the
      // claim comes after it, and the owner's next append is refused.
      {"claim", std::string("UPDATE sagas AS s SET owner = $1, fence = s.fence + 1"
                            " WHERE s.id = $2::uuid AND s.status IN ('running', 'compensating', 'stuck')"
                            "   AND EXISTS (SELECT 1 FROM usher_nodes WHERE id = $1 AND ") + kHolds + ")"
                            " RETURNING s.id::text, s.fence"},
  }};
  return all;
}

using Params = std::vector<std::optional<std::string>>;

class PgNodeRegistry final : public NodeRegistry {
 public:
  PgNodeRegistry(std::string uri, pg::Connection conn)
      : uri_(std::move(uri)), where_(pg::describe(uri_)), conn_(std::move(conn)) {}

  Status prepare_statements() {
    for (const Statement& s : statements()) {
      if (Status st = conn_.prepare(s.name, s.sql, "prepare the node registry's statements on " + where_); !st) {
        return st;
      }
    }
    return Status::ok();
  }

  Result<int64_t> join(const std::string& name, std::chrono::milliseconds lease) override {
    auto r = run("join", {pg::storable(name), std::to_string(lease.count())}, "join as a node");
    if (!r) return r.status();
    return std::stoll(PQgetvalue(r->get(), 0, 0));
  }

  Result<bool> renew(int64_t node, std::chrono::milliseconds lease) override {
    auto r = run("renew", {std::to_string(node), std::to_string(lease.count())}, "renew the lease of node " +
                                                                                    std::to_string(node));
    if (!r) return r.status();
    return PQntuples(r->get()) == 1;
  }

  Status advertise(int64_t node, const std::string& address) override {
    auto r = run("advertise", {std::to_string(node), pg::storable(address)}, "record the address of node " +
                                                                                 std::to_string(node));
    return r ? Status::ok() : r.status();
  }

  Status leave(int64_t node) override {
    auto r = run("leave", {std::to_string(node)}, "end the lease of node " + std::to_string(node));
    return r ? Status::ok() : r.status();
  }

  Result<std::vector<ClaimedSaga>> claim_orphans(int64_t node, size_t max) override {
    auto r = run("claim_orphans", {std::to_string(node), std::to_string(max)}, "take over sagas");
    if (!r) return r.status();
    std::vector<ClaimedSaga> out;
    for (int i = 0; i < PQntuples(r->get()); ++i) {
      out.push_back({PQgetvalue(r->get(), i, 0), std::stoll(PQgetvalue(r->get(), i, 1))});
    }
    return out;
  }

  Result<std::optional<ClaimedSaga>> claim(int64_t node, const std::string& saga_id) override {
    if (!pg::is_saga_id(saga_id)) return std::optional<ClaimedSaga>();
    auto r = run("claim", {std::to_string(node), saga_id}, "take over saga " + saga_id);
    if (!r) return r.status();
    if (PQntuples(r->get()) == 0) return std::optional<ClaimedSaga>();
    return std::optional(ClaimedSaga{PQgetvalue(r->get(), 0, 0), std::stoll(PQgetvalue(r->get(), 0, 1))});
  }

  Status forget_nodes_older_than(std::chrono::seconds age) override {
    auto r = conn_.exec("DELETE FROM usher_nodes AS n WHERE n.lease_until < clock_timestamp() - interval '" +
                            std::to_string(age.count()) +
                            " seconds' AND NOT EXISTS (SELECT 1 FROM sagas AS s WHERE s.owner = n.id"
                            " AND s.status IN ('running', 'compensating'))",
                        "forget old nodes in " + where_);
    return r ? Status::ok() : r.status();
  }

 private:
  Result<pg::ResultPtr> run(const char* name, const Params& params, const std::string& what) {
    if (conn_.broken()) {
      if (Status s = reconnect(); !s) return s;
    }
    auto r = conn_.exec_prepared(name, params, what + " in " + where_);
    if (r || !conn_.broken()) return r;
    if (Status s = reconnect(); !s) return s;
    return conn_.exec_prepared(name, params, what + " in " + where_);
  }

  Status reconnect() {
    auto opened = pg::Connection::open(uri_, "usher node");
    if (!opened) return opened.status();
    conn_ = std::move(*opened);
    return prepare_statements();
  }

  const std::string uri_;
  const std::string where_;
  pg::Connection conn_;
};

}  // namespace

Result<std::unique_ptr<NodeRegistry>> open_postgres_registry(const std::string& uri) {
  auto conn = pg::Connection::open(uri, "usher node");
  if (!conn) return conn.status();
  if (Status s = pg::check_version(*conn, pg::describe(uri)); !s) return s;
  auto registry = std::make_unique<PgNodeRegistry>(uri, std::move(*conn));
  if (Status s = registry->prepare_statements(); !s) return s;
  return std::unique_ptr<NodeRegistry>(std::move(registry));
}

}  // namespace usher
