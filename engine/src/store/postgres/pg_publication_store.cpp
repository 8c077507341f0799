// PublicationStore on its own PostgreSQL connection (usher_publications,
// schemas/saga-log-postgresql-4.sql). The claim is a session advisory lock,
// so it lives exactly as long as this connection: the server drops it when
// the connection closes, or when its keepalives find the client gone.
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "store/postgres/pg.h"
#include "store/postgres/pg_schema.h"
#include "store/publication_store.h"

namespace usher {
namespace {

constexpr const char* kApplicationName = "usher publisher";

// The server probes an idle connection after 5 s, every 2 s, and gives up
// after 3 unanswered probes: a node that died (or was cut off) without
// closing its connection frees the publication within ~11 s, instead of the
// two hours of the kernel's defaults. On a Unix socket they are ignored.
constexpr const char* kServerKeepalives =
    "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; SET tcp_keepalives_count = 3";

// The same from this side, so a publisher cut off from the server finds out
// about as soon as the server gives its lock away. The URI's own win.
constexpr std::pair<const char*, const char*> kClientKeepalives[] = {
    {"keepalives_idle", "5"}, {"keepalives_interval", "2"}, {"keepalives_count", "3"}};

struct Statement {
  const char* name;
  const char* sql;
};

constexpr Statement kStatements[] = {
    // A 64-bit key from the name; the prefix keeps it apart from any other
    // advisory lock usher (kLockMigrations) or the database's users take.
    {"claim", "SELECT pg_try_advisory_lock(hashtextextended('usher-publication:' || $1, 0))"},
    {"position", "SELECT position FROM usher_publications WHERE name = $1"},
    // Only forward: the WHERE leaves a stored position that is not lower
    // alone, so a late or repeated save never moves a publication back.
    {"save", "INSERT INTO usher_publications (name, position, updated_at) VALUES ($1, $2, clock_timestamp())"
             " ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at"
             " WHERE excluded.position > usher_publications.position"},
};

// `uri` with the client keepalives it does not set itself.
std::string with_keepalives(const std::string& uri) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(uri.c_str(), &error);
  if (options == nullptr) {
    PQfreemem(error);
    return uri;  // connecting reports what is wrong with it
  }
  std::string out = uri;
  bool has_query = uri.find('?') != std::string::npos;
  for (const auto& [key, value] : kClientKeepalives) {
    bool set = false;
    for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
      if (o->val != nullptr && std::string_view(o->keyword) == key) set = true;
    }
    if (set) continue;
    if (!has_query) {
      out += '?';
      has_query = true;
    } else if (out.back() != '?' && out.back() != '&') {
      out += '&';
    }
    out += std::string(key) + "=" + value;
  }
  PQconninfoFree(options);
  return out;
}

using Params = std::vector<std::optional<std::string>>;

class PgPublicationStore final : public PublicationStore {
 public:
  explicit PgPublicationStore(std::string uri) : uri_(std::move(uri)), where_(pg::describe(uri_)) {}

  // A new session: keepalives set, the schema checked (before preparing, so
  // an old log is told to migrate rather than missing a table), statements
  // prepared, nothing claimed.
  Status connect() {
    claimed_.clear();
    auto opened = pg::Connection::open(with_keepalives(uri_), kApplicationName);
    if (!opened) return opened.status();
    conn_ = std::move(*opened);
    if (auto set = conn_.exec(kServerKeepalives, "set keepalives on " + where_); !set) return set.status();
    if (Status s = pg::check_version(conn_, where_); !s) return s;
    for (const Statement& s : kStatements) {
      if (Status st = conn_.prepare(s.name, s.sql, "prepare the publication statements on " + where_); !st) return st;
    }
    return Status::ok();
  }

  Result<bool> claim(const std::string& name) override {
    const std::string what = "claim publication " + name;
    if (claimed_.contains(name)) {
      // Held while the session lives: one round trip says whether it does.
      if (conn_.exec("SELECT 1", what + " in " + where_)) return true;
      if (!conn_.broken()) return true;  // an error, but the session (and the lock) stands
    }
    // A broken connection took its locks with it: the claim is asked anew,
    // and another node may have it by now.
    if (conn_.broken()) {
      if (Status s = connect(); !s) return s;
    }
    auto r = conn_.exec_prepared("claim", {pg::storable(name)}, what + " in " + where_);
    if (!r && conn_.broken()) {
      if (Status s = connect(); !s) return s;
      r = conn_.exec_prepared("claim", {pg::storable(name)}, what + " in " + where_);
    }
    if (!r) return r.status();
    const bool held = std::string_view(PQgetvalue(r->get(), 0, 0)) == "t";
    if (held) claimed_.insert(name);
    return held;
  }

  Result<int64_t> position(const std::string& name) override {
    const std::string what = "read the position of publication " + name + " in " + where_;
    // A read can be asked again on a new connection (which holds no claim:
    // the next claim() finds that out).
    if (conn_.broken()) {
      if (Status s = connect(); !s) return s;
    }
    auto r = conn_.exec_prepared("position", {pg::storable(name)}, what);
    if (!r && conn_.broken()) {
      if (Status s = connect(); !s) return s;
      r = conn_.exec_prepared("position", {pg::storable(name)}, what);
    }
    if (!r) return r.status();
    if (PQntuples(r->get()) == 0) return int64_t{0};
    return std::stoll(PQgetvalue(r->get(), 0, 0));
  }

  Status save(const std::string& name, int64_t position) override {
    // A lost connection took the claim with it, and another node may publish
    // by now: no new connection here. The caller claims again first.
    if (conn_.broken())
      return Status::unavailable("the connection to " + where_ + " was lost with the claim of publication " + name);
    // Not asked again: a connection lost here is kUnavailable (pg::check),
    // and the caller, whose claim went with it, claims again first. Durable
    // as the log's own commits are (the server's synchronous_commit); the
    // WAL is replayed in order, so a position never outlives its events.
    auto r = conn_.exec_prepared("save", {pg::storable(name), std::to_string(position)},
                                 "save the position of publication " + name + " in " + where_);
    return r ? Status::ok() : r.status();
  }

 private:
  const std::string uri_;
  const std::string where_;
  pg::Connection conn_;
  // The names this session holds the lock of, so a claim again does not
  // stack it (pg_try_advisory_lock counts, and would need as many unlocks).
  std::set<std::string> claimed_;
};

}  // namespace

Result<std::unique_ptr<PublicationStore>> open_postgres_publication_store(const std::string& uri) {
  auto store = std::make_unique<PgPublicationStore>(uri);
  if (Status s = store->connect(); !s) return s;
  return std::unique_ptr<PublicationStore>(std::move(store));
}

}  // namespace usher
