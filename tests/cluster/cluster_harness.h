// Several `usher serve` nodes on one PostgreSQL database, under load, for the
// cluster fault tests (docs/cluster.md): the real binary, the real
// database (the test process's throwaway cluster, support/pg_cluster.h, a
// database per test), the booking's step services in process
// (support/recording_service.h), everything on 127.0.0.1 port 0.
//
// What the nodes do is read back from two places only: the log's tables
// (which node wrote each event, under which fence, committed when) and the
// step service's record of each request (which node sent it, when). The
// checks on them are in cluster_checks.h.
//
// Every process is a usher::test::Child, SIGKILLed and reaped by its
// destructor, so a failing REQUIRE never leaves a node behind.
#pragma once

#include <doctest/doctest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "e2e/e2e_harness.h"
#include "support/recording_service.h"

namespace usher::cluster {

using namespace usher::e2e;  // TempDir, eventually, booking, json, Child, HttpReply
using usher::test::PgCluster;
using usher::test::RecordingService;
using WallClock = std::chrono::system_clock;

// Milliseconds since the epoch: the unit every time of the checks is in, the
// service's arrivals and PostgreSQL's commit timestamps alike.
inline double wall_ms(WallClock::time_point t) {
  return std::chrono::duration<double, std::milli>(t.time_since_epoch()).count();
}
inline double wall_now_ms() { return wall_ms(WallClock::now()); }

// The test's database on the process's PostgreSQL, with commit timestamps
// recorded (track_commit_timestamp: a server setting, so the server restarts
// once per process, before any node connects), so each event says when it
// became durable.
inline std::string cluster_database(const TempDir& dir) {
  static std::once_flag once;
  PgCluster& pg = PgCluster::shared();
  std::call_once(once, [&] {
    pg.query("postgres", "ALTER SYSTEM SET track_commit_timestamp = on");
    pg.stop();
    pg.start();
  });
  const std::string name = usher::test::pg_database_at(dir.file("usher.db"));
  pg.create_database(name);
  REQUIRE(pg.query(name, "SHOW track_commit_timestamp") == "on");
  return name;
}

// A query's answer as JSON: `sql` must return one row of one json column.
inline json query_json(const std::string& database, const std::string& sql) {
  const std::string text = PgCluster::shared().query(database, sql);
  if (text.empty()) return json();
  json doc = json::parse(text, nullptr, false);
  REQUIRE_MESSAGE(!doc.is_discarded(), "not JSON from " << sql << ": " << text.substr(0, 200));
  return doc;
}

inline int64_t query_int(const std::string& database, const std::string& sql) {
  const std::string text = PgCluster::shared().query(database, sql);
  return text.empty() ? 0 : std::stoll(text);
}

// The booking every test runs, all five services on the one RecordingService:
//   reserve  hold          (compensate: release)
//   parking  hold-parking  (compensate: release)
//   pay      charge        (compensate: refund)   declined when amount > 1000
//   confirm  issue         pivot
//   notify   send          retriable
// Retries are unlimited, so each saga's outcome depends on its input alone:
// amount > 1000 compensates, anything else completes.
inline void write_cluster_workflow(const TempDir& dir, const RecordingService& service) {
  const std::string retry = "{ attempts: unlimited, backoff: 50ms, multiplier: 2, max_backoff: 400ms }";
  std::string y;
  y += "saga: cluster-booking\nversion: 1\ndescription: cluster fault test booking\n";
  y += "services:\n";
  for (const char* s : {"seats", "payments", "tickets", "notifier"}) y += std::string("  ") + s + ": { http: { url: \"URL\" } }\n";
  y += "input:\n  type: object\n  required: [userId, concertId, seat, spaces, amount]\n";
  y += "  properties:\n    spaces: { type: integer, minimum: 0 }\n    amount: { type: integer, minimum: 1 }\n";
  y += "timeout: 10m\n";
  y += "defaults:\n  timeout: 3s\n  retry: " + retry + "\n  compensation_retry: " + retry + "\n";
  y += "steps:\n";
  y += "  - name: reserve\n    call: seats.hold\n    with: { concertId: \"${input.concertId}\", seat: \"${input.seat}\" }\n";
  y += "    compensate: { call: seats.release, with: { holdId: \"${steps.reserve.output.holdId}\" } }\n";
  y += "  - name: parking\n    call: seats.hold-parking\n    with: { concertId: \"${input.concertId}\", spaces: \"${input.spaces}\" }\n";
  y += "    compensate: { call: seats.release, with: { holdId: \"${steps.parking.output.holdId:-unknown-hold}\" } }\n";
  y += "  - name: pay\n    call: payments.charge\n";
  y += "    with: { userId: \"${input.userId}\", amount: \"${input.amount}\", reference: \"${saga.id}\" }\n";
  y += "    compensate: { call: payments.refund, with: { paymentId: \"${steps.pay.output.paymentId:-unknown-payment}\" } }\n";
  y += "  - name: confirm\n    type: pivot\n    call: tickets.issue\n";
  y += "    with: { holdId: \"${steps.reserve.output.holdId}\", paymentId: \"${steps.pay.output.paymentId}\" }\n";
  y += "  - name: notify\n    type: retriable\n    call: notifier.send\n";
  y += "    with: { userId: \"${input.userId}\", ticketId: \"${steps.confirm.output.ticketId}\" }\n";
  write_yaml(dir, "cluster-booking", y, service.url());
}

// One `usher serve` on the test's workflows and `db_uri`, on a free port, its
// log (stderr, info level: the `cluster:` lines) in `log_path`, appended.
class Node {
 public:
  Node(const TempDir& dir, const std::string& database, const std::string& db_uri, std::string log_path)
      : log_path_(std::move(log_path)),
        database_(database),
        child_({"/bin/sh", "-c", "log=$1; shift; exec \"$@\" 2>>\"$log\"", "sh", log_path_,
                USHER_BINARY_DIR "/cli/usher", "serve", "--workflows", dir.workflows(), "--db", db_uri, "--listen",
                "127.0.0.1:0", "--log-level", "info"}) {
    pid_ = child_.pid();
    for (;;) {
      auto line = child_.read_line(30s);
      REQUIRE_MESSAGE(line.has_value(), "usher serve (pid " << pid_ << ") did not say where it listens; its log:\n"
                                                            << cluster_lines());
      const std::string prefix = "usher: listening on 127.0.0.1:";
      if (line->rfind(prefix, 0) == 0) {
        port_ = static_cast<uint16_t>(std::stoi(line->substr(prefix.size())));
        break;
      }
    }
    first_id_ = current_id();
    REQUIRE_MESSAGE(first_id_ > 0, "usher serve (pid " << pid_ << ") listens but is no node in usher_nodes");
  }

  uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  // The node id it joined with first; current_id() is the latest, after a lapse.
  int64_t first_id() const { return first_id_; }
  int64_t current_id() const {
    return query_int(database_, "SELECT max(id) FROM usher_nodes WHERE name LIKE '%:" + std::to_string(pid_) + "'");
  }
  // Every id this process joined under, oldest first.
  std::vector<int64_t> ids() const {
    std::vector<int64_t> out;
    json a = query_json(database_, "SELECT json_agg(id ORDER BY id) FROM usher_nodes WHERE name LIKE '%:" +
                                       std::to_string(pid_) + "'");
    if (a.is_array())
      for (const json& v : a) out.push_back(v.get<int64_t>());
    return out;
  }

  void kill() {
    auto status = child_.signal_and_wait(SIGKILL, 10s);
    REQUIRE_MESSAGE(status.has_value(), "pid " << pid_ << " survived SIGKILL");
  }
  // SIGTERM: a clean stop, which hands the node's sagas over at once.
  void terminate() {
    auto status = child_.signal_and_wait(SIGTERM, 10s);
    REQUIRE_MESSAGE(status.has_value(), "pid " << pid_ << " did not stop within 10 s of SIGTERM");
    CHECK_MESSAGE(*status == 0, "pid " << pid_ << " exited " << *status << " on SIGTERM");
  }
  void pause() { REQUIRE(::kill(pid_, SIGSTOP) == 0); }
  void resume() { REQUIRE(::kill(pid_, SIGCONT) == 0); }

  // The `cluster:` lines (and errors) it logged so far: for diagnostics.
  std::string cluster_lines() const {
    std::ifstream in(log_path_);
    std::string line, out;
    const std::string tag = "pid " + std::to_string(pid_) + ": ";
    while (std::getline(in, line))
      if (line.find("cluster:") != std::string::npos || line.find("error") != std::string::npos)
        out += tag + line + "\n";
    return out;
  }

 private:
  std::string log_path_;
  std::string database_;
  Child child_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  int64_t first_id_ = 0;
};

// A few nodes in numbered slots; a slot's node can be killed and replaced.
// The load reaches the nodes that are `live` (not paused, cut off or dead).
class Cluster {
 public:
  // `uris[i]`, when given and not empty, is how slot i's node reaches the
  // database (a proxy); the others connect directly.
  Cluster(const TempDir& dir, std::string database, size_t nodes, const std::vector<std::string>& uris = {})
      : dir_(dir), database_(std::move(database)) {
    for (size_t i = 0; i < nodes; ++i) {
      const std::string via = i < uris.size() && !uris[i].empty() ? uris[i] : uri();
      slots_.push_back(std::make_unique<Node>(dir_, database_, via, log_of(i)));
      live_.push_back(true);
    }
  }

  std::string uri() const { return PgCluster::shared().uri(database_); }
  // The same database through a proxy listening on `port`.
  std::string uri_via(uint16_t port) const {
    return "postgresql://usher@127.0.0.1:" + std::to_string(port) + "/" + database_;
  }
  const std::string& database() const { return database_; }
  size_t size() const { return slots_.size(); }
  Node& node(size_t i) { return *slots_.at(i); }

  // A node in slot i on another way to the database (a proxy).
  void replace(size_t i, const std::string& db_uri) {
    set_live(i, false);
    slots_.at(i).reset();
    slots_.at(i) = std::make_unique<Node>(dir_, database_, db_uri, log_of(i));
    set_live(i, true);
  }
  void restart(size_t i) { replace(i, uri()); }

  void set_live(size_t i, bool live) {
    std::lock_guard lock(mu_);
    live_.at(i) = live;
  }

  // The API ports of the live nodes: where the load sends starts.
  std::vector<uint16_t> live_ports() {
    std::lock_guard lock(mu_);
    std::vector<uint16_t> out;
    for (size_t i = 0; i < slots_.size(); ++i)
      if (live_[i] && slots_[i]) out.push_back(slots_[i]->port());
    return out;
  }

  std::string cluster_lines() const {
    std::string out;
    for (size_t i = 0; i < slots_.size(); ++i) {
      std::ifstream in(log_of(i));
      std::string line;
      while (std::getline(in, line))
        if (line.find("cluster:") != std::string::npos) out += "slot " + std::to_string(i) + ": " + line + "\n";
    }
    return out;
  }

  // How many sagas are still running or compensating.
  int64_t unsettled() const {
    return query_int(database_, "SELECT count(*) FROM sagas WHERE status IN ('running', 'compensating')");
  }

  // The running sagas node `id` owns now.
  std::set<std::string> owned_by(int64_t id) const {
    std::set<std::string> out;
    json a = query_json(database_, "SELECT json_agg(id) FROM sagas WHERE status IN ('running', 'compensating') "
                                   "AND owner = " + std::to_string(id));
    if (a.is_array())
      for (const json& v : a) out.insert(v.get<std::string>());
    return out;
  }

 private:
  std::string log_of(size_t i) const { return dir_.file("node-" + std::to_string(i) + ".log"); }

  const TempDir& dir_;
  const std::string database_;
  std::vector<std::unique_ptr<Node>> slots_;
  // Guards live_. A slot is replaced only while not live, so live_ports()
  // never reads a slot being replaced.
  std::mutex mu_;
  std::vector<bool> live_;
};

// Starts sagas at a steady rate on the live nodes, each with its own
// Idempotency-Key; every fifth is declined at the charge (so it compensates),
// and every seventh is sent to two nodes at once with the same key. A start
// that gets no answer (its node died, or is cut off) is sent again with the
// same key to another node, until acknowledged (201 or 200).
class Load {
 public:
  struct Started {
    std::string key;
    std::string id;
    bool declined = false;
  };

  Load(Cluster& cluster, std::chrono::milliseconds every, size_t workers = 6)
      : cluster_(cluster), every_(every), begin_(std::chrono::steady_clock::now()) {
    for (size_t i = 0; i < workers; ++i) threads_.emplace_back([this] { work(); });
  }
  ~Load() { stop(); }
  Load(const Load&) = delete;
  Load& operator=(const Load&) = delete;

  void stop() {
    stop_ = true;
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }

  std::vector<Started> acknowledged() const {
    std::lock_guard lock(mu_);
    return acked_;
  }
  // Keys answered with two different saga ids (by two nodes, or one twice).
  std::vector<std::string> conflicts() const {
    std::lock_guard lock(mu_);
    return conflicts_;
  }
  int sent_twice() const { return sent_twice_.load(); }
  int given_up() const { return given_up_.load(); }
  int resent() const { return resent_.load(); }

 private:
  void work() {
    for (;;) {
      const int n = next_++;
      const auto at = begin_ + n * every_;
      while (std::chrono::steady_clock::now() < at) {
        if (stop_) return;
        std::this_thread::sleep_for(5ms);
      }
      if (stop_) return;
      start(n);
    }
  }

  void start(int n) {
    const std::string key = "key-" + std::to_string(n);
    const bool declined = n % 5 == 2;
    const json input = booking(declined ? 5000 : 100 + n % 500, n % 3, "fan-" + std::to_string(n));
    std::string id;
    if (n % 7 == 3) {  // the same key to two nodes at once
      ++sent_twice_;
      std::string other;
      std::thread second([&] { other = acknowledged_start(key, input, n + 1); });
      id = acknowledged_start(key, input, n);
      second.join();
      if (!id.empty() && !other.empty() && id != other) conflict(key + " → " + id + " and " + other);
      if (id.empty()) id = other;
    } else {
      id = acknowledged_start(key, input, n);
    }
    if (id.empty()) {
      ++given_up_;
      return;
    }
    std::lock_guard lock(mu_);
    acked_.push_back({key, id, declined});
  }

  // The saga id once a node acknowledged the start; "" if none did in 30 s.
  std::string acknowledged_start(const std::string& key, const json& input, int pick) {
    const auto until = std::chrono::steady_clock::now() + 30s;
    std::string id;
    for (int attempt = 0; std::chrono::steady_clock::now() < until; ++attempt) {
      const auto ports = cluster_.live_ports();
      if (!ports.empty()) {
        const uint16_t port = ports[static_cast<size_t>(pick + attempt) % ports.size()];
        if (attempt > 0) ++resent_;
        auto r = usher::test::request(port, http::verb::post, "/v1/workflows/cluster-booking/sagas", input.dump(),
                                      {{"Idempotency-Key", key}}, 3s);
        if (r.status == 201 || r.status == 200) {
          id = r.json().value("id", "");
          if (!id.empty()) return id;
        }
      }
      std::this_thread::sleep_for(100ms);
    }
    return id;
  }

  void conflict(std::string what) {
    std::lock_guard lock(mu_);
    conflicts_.push_back(std::move(what));
  }

  Cluster& cluster_;
  const std::chrono::milliseconds every_;
  const std::chrono::steady_clock::time_point begin_;
  std::atomic<int> next_{0};
  std::atomic<bool> stop_{false};
  std::atomic<int> sent_twice_{0}, given_up_{0}, resent_{0};
  mutable std::mutex mu_;  // guards acked_, conflicts_
  std::vector<Started> acked_;
  std::vector<std::string> conflicts_;
  std::vector<std::thread> threads_;  // last: they use everything above
};

}  // namespace usher::cluster
