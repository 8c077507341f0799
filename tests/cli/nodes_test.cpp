// `usher nodes` and GET /v1/cluster: the nodes sharing a saga log. A SQLite
// log has none (suite `cli`); on PostgreSQL (suite `cli_postgres`) two real
// `usher serve` processes on one database list each other, through the API
// of either and straight from the log.
#include <doctest/doctest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli_test_util.h"
#include "serve/test_http.h"
#include "support/test_store.h"
#include "usher/engine.h"

namespace usher::test {

namespace {

using namespace std::chrono_literals;

// `usher serve` over `db` on 127.0.0.1 port 0, with the workflows of `dir`
// (none is enough to be a node); SIGKILLed when the test ends.
struct Serve {
  Serve(const std::string& db, const std::string& workflows)
      : child({USHER_BINARY_DIR "/cli/usher", "serve", "--db", db, "--workflows", workflows, "--listen",
               "127.0.0.1:0", "--log-level", "warn"}) {
    const std::string prefix = "usher: listening on 127.0.0.1:";
    for (;;) {
      auto line = child.read_line();
      REQUIRE_MESSAGE(line.has_value(), "usher serve did not say where it listens");
      if (line->rfind(prefix, 0) == 0) {
        port = static_cast<uint16_t>(std::stoi(line->substr(prefix.size())));
        break;
      }
    }
    url = "http://127.0.0.1:" + std::to_string(port);
  }

  // GET /v1/cluster; null when it did not answer 200 with JSON.
  Json cluster() const {
    HttpReply r = request(port, http::verb::get, "/v1/cluster");
    if (r.status != 200) {
      MESSAGE("GET /v1/cluster on " << url << ": " << r.status << " " << r.error << r.body);
      return nullptr;
    }
    Json j = Json::parse(r.body, nullptr, false);
    return j.is_discarded() ? Json(nullptr) : j;
  }

  Child child;
  uint16_t port = 0;
  std::string url;
};

bool eventually(const std::function<bool()>& holds, std::chrono::milliseconds within = 20s) {
  const auto until = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < until) {
    if (holds()) return true;
    std::this_thread::sleep_for(100ms);
  }
  return holds();
}

Json parse_ok(const CommandResult& r) {
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  Json j = Json::parse(r.out, nullptr, false);
  REQUIRE_FALSE(j.is_discarded());
  return j;
}

// The node of `cluster` whose address is `address`, or null.
Json node_at(const Json& cluster, const std::string& address) {
  if (!cluster.is_object() || !cluster["nodes"].is_array()) return nullptr;
  for (const Json& n : cluster["nodes"])
    if (n["address"] == address) return n;
  return nullptr;
}

// Every node of `cluster` is live, and the ones at `addresses` are all there.
bool all_live_at(const Json& cluster, const std::vector<std::string>& addresses) {
  if (!cluster.is_object() || !cluster["nodes"].is_array()) return false;
  for (const Json& n : cluster["nodes"])
    if (n["status"] != "live") return false;
  for (const std::string& a : addresses)
    if (node_at(cluster, a).is_null()) return false;
  return cluster["nodes"].size() == addresses.size();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The table row that names `address`, or "".
std::string row_with(const std::string& table, const std::string& address) {
  for (const std::string& line : lines_of(table))
    if (line.find(address + " ") != std::string::npos) return line;
  return {};
}

}  // namespace

TEST_CASE("a SQLite log has no nodes: usher nodes says so, from the log and through the API") {
  if (testing_postgres()) return;  // the cluster on PostgreSQL is the next test
  TempDir dir;
  const std::string db = dir.file("usher.db");
  std::filesystem::create_directories(dir.file("workflows"));
  {
    EngineOptions options;
    options.db_path = db;
    auto engine = Engine::open(options);
    REQUIRE_MESSAGE(engine.is_ok(), engine.status().to_string());
    engine.value()->shutdown();
  }
  const Json none = {{"node", nullptr}, {"nodes", Json::array()}};

  CHECK(parse_ok(run_usher("nodes --json --db " + shell_quote(db))) == none);
  CommandResult table = run_usher("nodes --db " + shell_quote(db));
  CHECK(table.exit_code == 0);
  CHECK(table.out.rfind("no nodes", 0) == 0);

  Serve server(db, dir.file("workflows"));
  CHECK(server.cluster() == none);
  CHECK(parse_ok(run_usher("nodes --json --server " + server.url)) == none);
  CHECK(run_usher("nodes --server " + server.url).out.rfind("no nodes", 0) == 0);
}

TEST_CASE("usher nodes exits 3 for a log it cannot open and 2 for --db with --server") {
  if (testing_postgres()) return;
  TempDir dir;
  CommandResult missing = run_usher("nodes --db " + shell_quote(dir.file("missing.db")));
  CHECK(missing.exit_code == 3);
  CHECK(missing.err.find("no such file") != std::string::npos);
  CHECK(run_usher("nodes --db " + shell_quote(dir.file("x.db")) + " --server http://127.0.0.1:1").exit_code == 2);
  CHECK(run_usher("nodes --server http://127.0.0.1:1").exit_code == 3);  // nothing listens there
}

TEST_CASE("two usher serve on one PostgreSQL database list each other as live nodes, with their addresses") {
  if (!testing_postgres()) return;  // cli_postgres only
  TempDir dir;
  std::filesystem::create_directories(dir.file("workflows"));
  const std::string db = saga_log_at(dir.file("usher.db"));
  // One after the other: the first creates the schema.
  Serve a(db, dir.file("workflows"));
  Serve b(db, dir.file("workflows"));
  const std::vector<std::string> both = {a.url, b.url};

  // The address is recorded once each server listens, shortly after it says so.
  Json seen_a, seen_b;
  const bool listed = eventually([&] {
    seen_a = a.cluster();
    seen_b = b.cluster();
    return all_live_at(seen_a, both) && all_live_at(seen_b, both);
  });
  INFO("GET /v1/cluster on a: " << seen_a.dump());
  INFO("GET /v1/cluster on b: " << seen_b.dump());
  REQUIRE(listed);

  const Json node_a = node_at(seen_a, a.url), node_b = node_at(seen_a, b.url);
  const int64_t id_a = node_a["id"].get<int64_t>(), id_b = node_b["id"].get<int64_t>();
  CHECK(id_a != id_b);
  CHECK(seen_a["node"] == id_a);  // each answers as itself
  CHECK(seen_b["node"] == id_b);
  for (const Json& n : {node_a, node_b}) {
    CAPTURE(n.dump());
    CHECK_FALSE(n["name"].get<std::string>().empty());
    CHECK(n["started_at"].is_string());
    CHECK(n["lease_until"].is_string());
    CHECK(n["sagas_owned"] == 0);  // no workflows, no sagas
  }
  CHECK(node_at(seen_b, a.url)["id"] == id_a);  // the same ids seen from either
  CHECK(node_at(seen_b, b.url)["id"] == id_b);

  SUBCASE("metrics show each server's node id") {
    HttpReply metrics = request(a.port, http::verb::get, "/metrics");
    REQUIRE(metrics.status == 200);
    CHECK(metrics.body.find("\nusher_node_id " + std::to_string(id_a) + "\n") != std::string::npos);
  }

  SUBCASE("usher nodes --db reads both from the log, as no node") {
    Json from_log = parse_ok(run_usher("nodes --json --db " + shell_quote(db)));
    CHECK(from_log["node"].is_null());
    CHECK(all_live_at(from_log, both));
    CHECK(node_at(from_log, a.url)["id"] == id_a);
    CommandResult table = run_usher("nodes --db " + shell_quote(db));
    INFO(table.out << table.err);
    REQUIRE(table.exit_code == 0);
    CHECK(lines_of(table.out).at(0).rfind("NODE", 0) == 0);
    CHECK(row_with(table.out, a.url).rfind(std::to_string(id_a) + " ", 0) == 0);
    CHECK(row_with(table.out, b.url).find(" live ") != std::string::npos);
    CHECK(table.out.find('*') == std::string::npos);  // no node answered
  }

  SUBCASE("usher nodes --server shows both and marks the one that answered") {
    Json through_b = parse_ok(run_usher("nodes --json --server " + b.url));
    CHECK(through_b["node"] == id_b);
    CHECK(all_live_at(through_b, both));
    CommandResult table = run_usher("nodes --server " + a.url);
    INFO(table.out << table.err);
    REQUIRE(table.exit_code == 0);
    const std::string row_a = row_with(table.out, a.url), row_b = row_with(table.out, b.url);
    CHECK(row_a.rfind(std::to_string(id_a) + " *", 0) == 0);
    CHECK(row_b.rfind(std::to_string(id_b) + " ", 0) == 0);
    CHECK(row_b.find('*') == std::string::npos);
    CHECK(row_a.find(" live ") != std::string::npos);
    CHECK(row_b.find(" live ") != std::string::npos);
    CHECK(table.out.find("* the node that answered") != std::string::npos);
  }

  SUBCASE("a node that stops cleanly is listed as stopped by the other") {
    REQUIRE(b.child.signal_and_wait(SIGTERM, 10s) == 0);
    Json after;
    const bool stopped = eventually([&] {
      after = a.cluster();
      return node_at(after, b.url)["status"] == "stopped";
    });
    INFO("GET /v1/cluster on a: " << after.dump());
    CHECK(stopped);
    CHECK(node_at(after, a.url)["status"] == "live");
  }
}

}  // namespace usher::test
