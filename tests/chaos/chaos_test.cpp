// Chaos: a ticketing workflow under load over HTTP while `usher serve` is
// SIGKILLed at random moments and restarted on the same saga log; then every
// guarantee of docs/reliability.md is checked from two independent records:
// the step services' own request logs and the saga log. A reader follows the
// event feed all along; it must have seen every event of the log once, each
// saga's in seq order.
//
// Size (environment; the defaults are the short CI run):
//   USHER_CHAOS_KILLS    SIGKILLs of the server              [20]
//   USHER_CHAOS_SECONDS  length of the load-and-kill phase    [40]
//   USHER_CHAOS_SAGAS    sagas the clients try to start       [800]
//   USHER_CHAOS_SEED     random seed (printed, to replay a run) [time]
//
// How the two records are lined up. The services keep one request log each,
// in arrival order, without timestamps. After every kill (the server is dead,
// so nothing can be sent), the driver waits for bytes still in flight to be
// read, then fetches and resets each log: the log is thus cut into one segment
// per server incarnation. A saga log event's occurred_at (wall clock, µs,
// recorded by the engine before its commit) falls strictly between the
// incarnation's start and its kill, so every event is placed in an
// incarnation too. "No action sent again after its success was logged" then
// means: no request for that action in a later incarnation, and none with a
// higher attempt number in the same one.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "chaos/usher_process.h"
#include "serve/test_http.h"
#include "usher/inspect.h"
#include "support/temp_dir.h"
#include "support/test_store.h"

using nlohmann::json;
namespace http = boost::beast::http;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

int env_count(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  long n = std::strtol(v, &end, 10);
  return *end == '\0' && n > 0 ? static_cast<int>(n) : fallback;
}

int64_t wall_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The workflow under test: concert-booking's shape, HTTP only, with a second
// step on each of seats, payments and tickets so that most step-to-step
// transitions happen on one service (whose log orders them), and short
// timeouts and backoffs so a run settles in seconds. Compensations retry
// without limit, so the only `stuck` sagas are the designed ones (a pivot
// whose attempts all timed out).
const char* const kWorkflow = R"(saga: chaos-booking
version: 1
description: Hold a seat and parking, charge, add a fee, issue, confirm, notify; HTTP only, short timeouts.
services:
  seats:    { http: { url: "${env.SEATS_URL}" } }
  payments: { http: { url: "${env.PAYMENTS_URL}" } }
  tickets:  { http: { url: "${env.TICKETS_URL}" } }
  notifier: { http: { url: "${env.NOTIFY_URL}" } }
input:
  type: object
  required: [userId, concertId, seat, amount, fee]
  properties:
    amount: { type: integer, minimum: 1 }
    fee: { type: integer, minimum: 1 }
timeout: 10m
defaults:
  timeout: 1s
  retry: { attempts: 4, backoff: 50ms, multiplier: 2, max_backoff: 400ms }
  compensation_retry: { attempts: unlimited, backoff: 50ms, multiplier: 2, max_backoff: 500ms }
steps:
  - name: hold
    call: seats.hold
    with: { concertId: "${input.concertId}", seat: "${input.seat}" }
    compensate:
      call: seats.release
      with: { holdId: "${steps.hold.output.holdId:-unknown}" }
  - name: park
    call: seats.hold-parking
    with: { concertId: "${input.concertId}", spaces: 1 }
    compensate:
      call: seats.release
      with: { holdId: "${steps.park.output.holdId:-unknown}" }
  - name: pay
    call: payments.charge
    with: { userId: "${input.userId}", amount: "${input.amount}", reference: "${saga.id}" }
    compensate:
      call: payments.refund
      with: { paymentId: "${steps.pay.output.paymentId:-unknown}" }
  - name: fee
    call: payments.adjust
    with: { userId: "${input.userId}", amount: "${input.fee}", reference: "${saga.id}" }
    compensate:
      call: payments.reverse
      with: { adjustmentId: "${steps.fee.output.adjustmentId:-unknown}" }
  - name: issue
    type: pivot
    call: tickets.issue
    with: { holdId: "${steps.hold.output.holdId}", paymentId: "${steps.pay.output.paymentId}" }
    retry: { attempts: 6, backoff: 50ms, multiplier: 2, max_backoff: 400ms }
  - name: confirm
    type: retriable
    call: tickets.reinstate
    with: { ticketId: "${steps.issue.output.ticketId}" }
    retry: { attempts: unlimited, backoff: 50ms, max_backoff: 500ms }
  - name: notify
    type: retriable
    call: notifier.send
    with: { userId: "${input.userId}", ticketId: "${steps.issue.output.ticketId}" }
    retry: { attempts: unlimited, backoff: 50ms, max_backoff: 500ms }
)";

struct StepInfo {
  const char* name;
  int service;  // index into kServices
  const char* action;
  const char* compensation;  // nullptr: none
};
constexpr const char* kServices[] = {"seats", "payments", "tickets", "notifier"};
constexpr std::array<StepInfo, 7> kSteps = {{{"hold", 0, "hold", "release"},
                                              {"park", 0, "hold-parking", "release"},
                                              {"pay", 1, "charge", "refund"},
                                              {"fee", 1, "adjust", "reverse"},
                                              {"issue", 2, "issue", nullptr},
                                              {"confirm", 2, "reinstate", nullptr},
                                              {"notify", 3, "send", nullptr}}};
constexpr int kPivot = 4;

int step_index(const std::string& name) {
  for (size_t i = 0; i < kSteps.size(); ++i)
    if (name == kSteps[i].name) return static_cast<int>(i);
  return -1;
}

bool is_2xx(const json& status) { return status.is_number_integer() && status.get<int>() / 100 == 2; }

using usher::test::TempDir;

// One request as a service logged it, placed in the server incarnation that sent it.
struct ServiceCall {
  int service = 0;
  size_t position = 0;  // in that service's log, across incarnations
  int incarnation = 0;
  std::string saga_id;
  int step = -1;
  bool compensation = false;
  int64_t attempt = 0;
  json status;  // null: hung (no answer)
  bool replayed = false;
};

// An event of the saga log, placed in the incarnation that wrote it.
struct LoggedEvent {
  std::string type;
  int step = -1;
  bool compensation = false;
  int64_t attempt = 0;
  int incarnation = 0;
  json data;
};

struct Totals {
  int kills = 0;
  int attempted = 0;
  int acknowledged = 0;
  int refused = 0;    // requests without an answer (server down or dying) or 503: each is sent again
  int abandoned = 0;  // starts still unanswered when the load phase ended
  std::map<unsigned, int> other_statuses;
  size_t in_log = 0, completed = 0, compensated = 0, stuck = 0, unsettled = 0;
  size_t service_calls = 0, replays = 0, hung = 0;
  size_t max_in_flight = 0;
  std::map<std::string, int> stuck_reasons;
  size_t fed = 0;  // events the feed's reader received
};

class ChaosRun {
 public:
  ChaosRun()
      : kills_(env_count("USHER_CHAOS_KILLS", 20)),
        seconds_(env_count("USHER_CHAOS_SECONDS", 40)),
        sagas_(env_count("USHER_CHAOS_SAGAS", 800)),
        seed_(static_cast<unsigned>(env_count("USHER_CHAOS_SEED", static_cast<int>(std::random_device{}() >> 1)))),
        services_({USHER_BINARY_DIR "/examples/services/usher-example-services", "--seats-port", "0",
                   "--payments-port", "0", "--tickets-port", "0", "--notifier-port", "0", "--latency",
                   "30-200"}) {
    auto line = services_.read_line();
    REQUIRE_MESSAGE(line.has_value(), "the example services printed no ports");
    json ports = json::parse(*line);
    const char* vars[] = {"SEATS_URL", "PAYMENTS_URL", "TICKETS_URL", "NOTIFY_URL"};
    for (int i = 0; i < 4; ++i) {
      ports_[i] = static_cast<uint16_t>(ports[kServices[i]].get<int>());
      ::setenv(vars[i], ("http://127.0.0.1:" + std::to_string(ports_[i])).c_str(), 1);
    }
    std::filesystem::create_directories(dir_.file("wf"));
    std::ofstream(dir_.file("wf/chaos-booking.yaml")) << kWorkflow;
    for (int i = 0; i < 4; ++i) CHECK(usher::test::request(ports_[i], http::verb::post, "/_requests/reset").status == 200);
    calls_by_service_.resize(4);
  }

  void run() {
    MESSAGE("chaos: " << kills_ << " kills over " << seconds_ << " s, " << sagas_ << " sagas, seed " << seed_);
    REQUIRE(start_server());
    std::atomic<bool> loading{true};
    const auto t0 = Clock::now();
    const auto load_end = t0 + std::chrono::seconds(seconds_);

    // Starts come in bursts at random moments, so many sagas are in flight
    // together (and recovered together) rather than a trickle.
    std::vector<Clock::time_point> release(static_cast<size_t>(sagas_));
    {
      std::mt19937 rng(seed_ ^ 0x5eed);
      const int burst = std::max(1, std::min(200, sagas_ / 4));
      std::uniform_int_distribution<int> when(0, std::max(1, seconds_ * 850));
      for (int i = 0; i < sagas_; i += burst) {
        auto at = t0 + milliseconds(when(rng));
        for (int j = i; j < std::min(sagas_, i + burst); ++j) release[static_cast<size_t>(j)] = at;
        bursts_.push_back(at);
      }
      std::sort(release.begin(), release.end());
    }
    std::atomic<int> next{0};
    std::vector<std::thread> clients;
    for (int c = 0; c < 12; ++c) clients.emplace_back([&, c] { client(c, release, next, load_end); });
    std::thread faults([&] { inject_faults(loading); });
    std::thread killer([&] { kill_loop(t0); });
    std::thread follower([this, port = port_] { follow_feed(port); });

    killer.join();
    for (auto& t : clients) t.join();
    loading = false;
    faults.join();
    REQUIRE_MESSAGE(restart_error_.empty(), restart_error_);
    for (const auto& s : kSteps)  // no fault is left armed for the settling phase
      for (const char* op : {s.action, s.compensation})
        if (op) control(s.service, op, "ok", -1);

    settle();
    feed_catch_up_ = true;  // the follower reads to the end of the feed, then stops
    follower.join();
    collect_segment();  // the final incarnation's requests
    auto stopped = server_.stop(SIGTERM, std::chrono::seconds(10));
    CHECK_MESSAGE(stopped.has_value(), "usher serve did not stop within 10 s of SIGTERM");
    check();
  }

 private:
  bool start_server() {
    std::string listen = "127.0.0.1:" + std::to_string(port_);
    if (!server_.start({USHER_BINARY_DIR "/cli/usher", "serve", "--db", usher::test::saga_log_at(dir_.file("usher.db")), "--workflows",
                        dir_.file("wf"), "--listen", listen, "--log-level", "error"},
                       dir_.file("server.log")))
      return false;
    auto rest = server_.wait_for_line("usher: listening on 127.0.0.1:", std::chrono::seconds(60));
    if (!rest) return false;
    port_ = static_cast<uint16_t>(std::stoi(*rest));
    return true;
  }

  void client(int id, const std::vector<Clock::time_point>& release, std::atomic<int>& next, Clock::time_point end) {
    std::mt19937 rng(seed_ + static_cast<unsigned>(id));
    std::uniform_int_distribution<int> percent(0, 99);
    for (;;) {
      int i = next++;
      if (i >= sagas_) return;
      std::this_thread::sleep_until(std::min(release[static_cast<size_t>(i)], end));
      if (Clock::now() >= end) return;
      // Some sagas are declined by the data: a charge above 1000 (compensates
      // hold and park), a fee above 1000 (compensates pay too).
      int roll = percent(rng);
      json input = {{"userId", "fan-" + std::to_string(i)},
                    {"concertId", "chaos"},
                    {"seat", "S" + std::to_string(i)},
                    {"amount", roll < 15 ? 5000 : 120},
                    {"fee", roll >= 15 && roll < 25 ? 2000 : 5}};
      // Like a real client, a start the server could not answer (it was down
      // or died mid-request) is sent again with the same Idempotency-Key
      // until it is acknowledged: the log must then hold it exactly once.
      const std::string key = "chaos-" + std::to_string(seed_) + "-" + std::to_string(i);
      for (bool first = true;; first = false) {
        auto reply = usher::test::request(port_, http::verb::post, "/v1/workflows/chaos-booking/sagas", input.dump(),
                                          {{"Idempotency-Key", key}}, std::chrono::seconds(10));
        if (!record_start(key, reply, first, Clock::now() >= end)) break;
        std::this_thread::sleep_for(milliseconds(50));
      }
    }
  }

  // Books one answer to a start; true when the client should send it again.
  bool record_start(const std::string& key, const usher::test::HttpReply& reply, bool first, bool load_over) {
    std::lock_guard lock(mu_);
    if (first) totals_.attempted++;
    if (reply.status == 201 || reply.status == 200) {
      json body = reply.json();
      if (!body.is_object() || !body["id"].is_string()) {
        violations_.push_back("a " + std::to_string(reply.status) + " without a saga id: " + reply.body);
        return false;
      }
      std::string saga_id = body["id"].get<std::string>();
      auto [it, inserted] = acknowledged_by_key_.emplace(key, saga_id);
      if (!inserted && it->second != saga_id)
        violations_.push_back("start " + key + " acknowledged as two sagas: " + it->second + " and " + saga_id);
      acknowledged_.insert(saga_id);
      totals_.acknowledged++;
      return false;
    }
    if (reply.status != 0 && reply.status != 503) {
      totals_.other_statuses[reply.status]++;
      return false;
    }
    totals_.refused++;  // the server is down, dying or not ready: nothing was acknowledged
    if (load_over) {
      totals_.abandoned++;
      return false;
    }
    return true;
  }

  // Re-arms random switches about every 700 ms while the load runs: 503s and
  // hangs anywhere (compensations included, they retry without limit), and
  // declines on forward steps only (a refused compensation is stuck by design;
  // the test keeps that path out so `stuck` stays rare and meaningful).
  void inject_faults(const std::atomic<bool>& loading) {
    std::mt19937 rng(seed_ ^ 0xfa17);
    std::uniform_int_distribution<size_t> pick_step(0, kSteps.size() - 1);
    std::uniform_int_distribution<int> percent(0, 99);
    while (loading) {
      const StepInfo& s = kSteps[pick_step(rng)];
      bool on_compensation = s.compensation && percent(rng) < 30;
      const char* op = on_compensation ? s.compensation : s.action;
      int roll = percent(rng);
      if (roll < 50)
        control(s.service, op, "transient", 1 + percent(rng) % 4);
      else if (roll < 80)
        control(s.service, op, "hang", 1 + percent(rng) % 2);
      else if (!on_compensation)
        control(s.service, op, "decline", 1);
      std::this_thread::sleep_for(milliseconds(400 + percent(rng) * 6));
    }
  }

  void control(int service, const char* op, const char* mode, int count) {
    json body = {{"operation", op}, {"mode", mode}};
    if (count > 0) body["count"] = count;
    usher::test::request(ports_[service], http::verb::post, "/_control", body.dump());
  }

  void kill_loop(Clock::time_point t0) {
    // Half the kills fall anywhere, one per slot of the phase; the other half
    // aim just after a burst of starts, when the most sagas are mid-flight:
    // from 50-500 ms after the burst they wait (at most 2 s) for 150 sagas in
    // flight, so a slow build (ASan) still kills with hundreds in flight.
    std::mt19937 rng(seed_ ^ 0xdead);
    std::uniform_real_distribution<double> jitter(0.1, 0.9);
    std::uniform_int_distribution<int> after_burst(50, 500);
    const double slot_ms = seconds_ * 1000.0 / kills_;
    std::vector<std::pair<Clock::time_point, bool>> kill_at;  // when, and whether it aims at a burst
    for (int k = 0; k < kills_; ++k) {
      if (k % 2 && !bursts_.empty())
        kill_at.emplace_back(bursts_[rng() % bursts_.size()] + milliseconds(after_burst(rng)), true);
      else
        kill_at.emplace_back(t0 + milliseconds(static_cast<int64_t>((k + jitter(rng)) * slot_ms)), false);
    }
    std::sort(kill_at.begin(), kill_at.end());
    for (int k = 0; k < kills_; ++k) {
      auto [at, aimed] = kill_at[static_cast<size_t>(k)];
      // At least a moment of life, so recovery itself gets to make progress.
      std::this_thread::sleep_until(std::max(at, Clock::now() + milliseconds(100)));
      size_t in_flight = sagas_in_flight();
      for (const auto give_up = Clock::now() + std::chrono::seconds(2); aimed && in_flight < 150 && Clock::now() < give_up;) {
        std::this_thread::sleep_for(milliseconds(20));
        in_flight = sagas_in_flight();
      }
      totals_.max_in_flight = std::max(totals_.max_in_flight, in_flight);
      if (!server_.stop(SIGKILL, std::chrono::seconds(10))) {
        restart_error_ = "usher serve survived SIGKILL for 10 s";
        return;
      }
      kill_us_.push_back(wall_us());
      totals_.kills++;
      // Requests the dead server wrote are in the services' socket buffers:
      // let the services read them before the log is cut.
      std::this_thread::sleep_for(milliseconds(250));
      collect_segment();
      if (!start_server()) {
        restart_error_ = "usher serve did not restart after kill " + std::to_string(k + 1) + ":\n" + server_.output();
        return;
      }
    }
  }

  // A reader of the event feed (GET /v1/events, docs/api.md) from the start,
  // as one outside usher would: a long poll, continued from `next`, through
  // every kill (a poll cut off, or refused while the server is down, is
  // asked again). Once feed_catch_up_ is set it reads to the end and stops.
  void follow_feed(uint16_t port) {
    std::string after;
    int failures_at_end = 0;
    for (;;) {
      const bool last = feed_catch_up_.load();
      std::string target = "/v1/events?limit=1000";
      if (!after.empty()) target += "&after=" + after;
      if (!last) target += "&wait=1s";
      auto reply = usher::test::request(port, http::verb::get, target, "", {}, std::chrono::seconds(10));
      json page = reply.json();
      if (reply.status != 200 || !page.is_object()) {
        if (last && ++failures_at_end > 100) {
          std::lock_guard lock(mu_);
          violations_.push_back("feed: the server did not answer GET /v1/events at the end: " + reply.error);
          return;
        }
        std::this_thread::sleep_for(milliseconds(20));
        continue;
      }
      for (json& e : page["events"]) fed_.push_back(std::move(e));
      after = page["next"].get<std::string>();
      if (last && page["events"].empty()) return;
    }
  }

  // What the feed gave for saga `id` against the log's own events: the same
  // events, each once, in seq order.
  void check_fed(const std::string& id, const json& logged) {
    const auto& seen = fed_by_saga_[id];
    if (seen.size() != logged.size())
      violation(id, "the feed gave " + std::to_string(seen.size()) + " events, the log holds " +
                        std::to_string(logged.size()));
    for (size_t i = 0; i < std::min(seen.size(), logged.size()); ++i) {
      json e = *seen[i];
      for (const char* field : {"cursor", "saga_id", "workflow"}) e.erase(field);
      if (e != logged[i]) {
        violation(id, "feed event " + std::to_string(i + 1) + " is " + e.dump() + ", the log's is " + logged[i].dump());
        break;
      }
    }
  }

  // Running or compensating sagas, read from the log (0 if it cannot be read).
  size_t sagas_in_flight() {
    auto inspector = usher::LogInspector::open(usher::test::saga_log_at(dir_.file("usher.db")));
    if (!inspector.is_ok()) return 0;
    auto stats = inspector.value()->stats();
    if (!stats.is_ok()) return 0;
    return in_flight_of(stats.value());
  }

  // Running or compensating sagas in a LogInspector::stats() answer.
  static size_t in_flight_of(const json& stats) {
    const json& by = stats["sagas"];
    return by.value("running", size_t{0}) + by.value("compensating", size_t{0});
  }

  // Appends each service's log since the last cut to the current incarnation, and clears it.
  void collect_segment() {
    const int incarnation = static_cast<int>(segments_++);
    for (int s = 0; s < 4; ++s) {
      auto reply = usher::test::request(ports_[s], http::verb::get, "/_requests", "", {}, std::chrono::seconds(30));
      json log = reply.json();
      if (reply.status != 200 || !log.is_array()) {
        std::lock_guard lock(mu_);
        violations_.push_back(std::string("cannot read the request log of ") + kServices[s] + ": " + reply.error);
        continue;
      }
      usher::test::request(ports_[s], http::verb::post, "/_requests/reset");
      for (const json& e : log) {
        ServiceCall c;
        c.service = s;
        c.position = calls_by_service_[s].size();
        c.incarnation = incarnation;
        c.saga_id = e.value("saga_id", json()).is_string() ? e["saga_id"].get<std::string>() : "";
        c.step = e["step"].is_string() ? step_index(e["step"].get<std::string>()) : -1;
        std::string key = e["idempotency_key"].is_string() ? e["idempotency_key"].get<std::string>() : "";
        c.compensation = key.size() > 11 && key.compare(key.size() - 11, 11, ":compensate") == 0;
        c.attempt = e["attempt"].is_number_integer() ? e["attempt"].get<int64_t>() : 0;
        c.status = e["status"];
        c.replayed = e.value("replayed", false);
        std::string op = e.value("operation", "");
        if (c.saga_id.empty() || c.step < 0 ||
            key != c.saga_id + ":" + kSteps[static_cast<size_t>(c.step)].name +
                       (c.compensation ? ":compensate" : ":action") ||
            op != (c.compensation ? kSteps[static_cast<size_t>(c.step)].compensation
                                  : kSteps[static_cast<size_t>(c.step)].action)) {
          std::lock_guard lock(mu_);
          violations_.push_back(std::string("a request at ") + kServices[s] + " does not match its saga/step/key: " +
                                e.dump());
          continue;
        }
        calls_by_service_[s].push_back(c);
      }
    }
  }

  // Waits (bounded) until no saga is running or compensating.
  void settle() {
    auto inspector = usher::LogInspector::open(usher::test::saga_log_at(dir_.file("usher.db")));
    REQUIRE(inspector.is_ok());
    const auto until = Clock::now() + std::chrono::seconds(std::max(60, seconds_));
    for (;;) {
      auto stats = inspector.value()->stats();
      REQUIRE(stats.is_ok());
      if (in_flight_of(stats.value()) == 0) return;
      if (Clock::now() >= until) {
        MESSAGE("still unsettled after the settle deadline: " << stats.value().dump());
        return;
      }
      std::this_thread::sleep_for(milliseconds(200));
    }
  }

  int incarnation_of(int64_t occurred_us) const {
    return static_cast<int>(std::count_if(kill_us_.begin(), kill_us_.end(), [&](int64_t k) { return k <= occurred_us; }));
  }

  void violation(const std::string& saga, const std::string& what) { violations_.push_back(saga + ": " + what); }

  void check() {
    auto opened = usher::LogInspector::open(usher::test::saga_log_at(dir_.file("usher.db")));
    REQUIRE(opened.is_ok());
    auto& inspector = *opened.value();

    // Every saga the log holds, page by page.
    std::map<std::string, json> sagas;
    usher::SagaFilter filter;
    filter.limit = 1000;
    for (;;) {
      auto page = inspector.list(filter);
      REQUIRE(page.is_ok());
      for (const json& s : page.value()["sagas"]) sagas[s["id"].get<std::string>()] = s;
      if (page.value()["next"].is_null()) break;
      filter.after = page.value()["next"].get<std::string>();
    }
    totals_.in_log = sagas.size();

    std::map<std::string, std::vector<const ServiceCall*>> calls;
    for (const auto& log : calls_by_service_)
      for (const auto& c : log) {
        calls[c.saga_id].push_back(&c);
        totals_.service_calls++;
        totals_.replays += c.replayed;
        totals_.hung += c.status.is_null();
      }

    // The feed: cursors only ever grow, and every event is of a saga in the log.
    int64_t last_cursor = 0;
    for (const json& e : fed_) {
      const int64_t cursor = std::stoll(e["cursor"].get<std::string>());
      if (cursor <= last_cursor)
        violation("feed", "cursor " + std::to_string(cursor) + " came after " + std::to_string(last_cursor));
      last_cursor = cursor;
      fed_by_saga_[e["saga_id"].get<std::string>()].push_back(&e);
    }
    for (const auto& [id, list] : fed_by_saga_)
      if (!sagas.count(id)) violation(id, "in the feed (" + std::to_string(list.size()) + " events) but not in the log");
    totals_.fed = fed_.size();

    // 1. No 201/200 for a saga the log does not hold.
    for (const auto& id : acknowledged_)
      if (!sagas.count(id)) violation(id, "acknowledged, but the saga log does not hold it");
    // 2. Starts sent again with the same Idempotency-Key made one saga each.
    std::map<std::string, std::string> saga_by_key;
    for (const auto& [id, saga] : sagas) {
      if (!saga["idempotency_key"].is_string()) {
        violation(id, "in the log without the Idempotency-Key it was started with");
        continue;
      }
      auto [it, inserted] = saga_by_key.emplace(saga["idempotency_key"].get<std::string>(), id);
      if (!inserted) violation(id, "a second saga for Idempotency-Key " + it->first + " (the first is " + it->second + ")");
    }
    // Requests for a saga the log does not hold: the engine acted on something it never made durable.
    for (const auto& [id, list] : calls)
      if (!sagas.count(id)) violation(id, std::to_string(list.size()) + " step requests for a saga not in the log");

    for (const auto& [id, saga] : sagas) {
      std::string status = saga["status"].get<std::string>();
      if (status == "completed")
        totals_.completed++;
      else if (status == "compensated")
        totals_.compensated++;
      else if (status == "stuck") {
        totals_.stuck++;
        // Shown with the totals, so a reader can tell designed stuck sagas (the pivot timed out) from others.
        std::string where = saga["current_step"].is_string() ? saga["current_step"].get<std::string>() : "?";
        std::string error = saga["error"].is_string() ? saga["error"].get<std::string>() : "";
        totals_.stuck_reasons[where + ": " + error]++;
      }
      else {
        totals_.unsettled++;
        violation(id, std::string(acknowledged_.count(id) ? "acknowledged and " : "") + "still " + status);
      }
      auto events = inspector.events(id);
      if (!events.is_ok()) {
        violation(id, "events cannot be read: " + events.status().message());
        continue;
      }
      check_fed(id, events.value()["events"]);
      std::vector<LoggedEvent> log;
      for (const json& e : events.value()["events"]) {
        LoggedEvent le;
        le.type = e["type"].get<std::string>();
        le.step = e["step"].is_string() ? step_index(e["step"].get<std::string>()) : -1;
        le.data = e["data"];
        le.compensation = le.data.is_object() && le.data.value("kind", "") == "compensate";
        le.attempt = le.data.is_object() ? le.data.value("attempt", int64_t{0}) : 0;
        auto at = usher::parse_time(e["occurred_at"].get<std::string>());
        le.incarnation = at ? incarnation_of(*at) : 0;
        log.push_back(std::move(le));
      }
      check_saga(id, status, log, calls[id]);
    }
  }

  // The invariants of one saga, from its events and its requests at the services.
  void check_saga(const std::string& id, const std::string& status, const std::vector<LoggedEvent>& log,
                  const std::vector<const ServiceCall*>& calls) {
    const size_t n = kSteps.size();
    // From the saga log: which actions and compensations succeeded, when, at which attempt.
    std::vector<const LoggedEvent*> action_ok(n, nullptr), compensation_ok(n, nullptr);
    std::vector<std::string> plan;
    bool pivot_succeeded = false;
    int last_forward = -1;
    for (const auto& e : log) {
      if (e.type == "StepScheduled" && !e.compensation) {
        if (e.step < last_forward) violation(id, "log: action of step " + std::to_string(e.step) + " scheduled after a later step");
        if (e.step > 0 && !action_ok[static_cast<size_t>(e.step - 1)])
          violation(id, std::string("log: ") + kSteps[static_cast<size_t>(e.step)].name +
                            " scheduled before the previous step succeeded");
        if (pivot_succeeded && e.step <= kPivot) violation(id, "log: a step up to the pivot scheduled after the pivot succeeded");
        last_forward = std::max(last_forward, e.step);
      }
      if (e.type == "StepSucceeded" && e.step >= 0) {
        auto& slot = e.compensation ? compensation_ok : action_ok;
        if (slot[static_cast<size_t>(e.step)])
          violation(id, std::string("log: ") + kSteps[static_cast<size_t>(e.step)].name + " succeeded twice");
        slot[static_cast<size_t>(e.step)] = &e;
        if (!e.compensation && e.step == kPivot) pivot_succeeded = true;
      }
      if (e.type == "CompensationStarted") {
        if (pivot_succeeded) violation(id, "log: compensation started after the pivot succeeded");
        for (const json& s : e.data["steps"]) plan.push_back(s.get<std::string>());
      }
    }
    // The plan runs backwards: strictly decreasing step indexes, compensations succeed in that order.
    for (size_t i = 1; i < plan.size(); ++i)
      if (step_index(plan[i]) >= step_index(plan[i - 1])) violation(id, "log: compensation plan not in reverse order");
    {
      std::vector<int> order;
      for (const auto& e : log)
        if (e.type == "StepSucceeded" && e.compensation) order.push_back(e.step);
      for (size_t i = 0; i < order.size(); ++i)
        if (i >= plan.size() || order[i] != step_index(plan[i]))
          violation(id, "log: compensations did not succeed in the plan's order");
    }
    if (status == "completed")
      for (size_t s = 0; s < n; ++s)
        if (!action_ok[s]) violation(id, std::string("completed without ") + kSteps[s].name + " succeeding");
    if (status == "compensated")
      for (const auto& p : plan)
        if (!compensation_ok[static_cast<size_t>(step_index(p))]) violation(id, "compensated without compensating " + p);

    // From the services' logs.
    std::vector<bool> action_2xx(n, false), compensation_2xx(n, false), compensation_sent(n, false);
    std::array<int, 4> last_action_at{-1, -1, -1, -1};  // per service: highest step whose action was seen
    std::array<bool, 4> compensating_at{false, false, false, false};
    std::array<int, 4> last_compensation_at{99, 99, 99, 99};
    std::vector<const ServiceCall*> ordered(calls);
    // Per service, in arrival order (calls are already grouped by service in position order).
    std::stable_sort(ordered.begin(), ordered.end(), [](const ServiceCall* a, const ServiceCall* b) {
      return a->service != b->service ? a->service < b->service : a->position < b->position;
    });
    for (const ServiceCall* c : ordered) {
      const auto step = static_cast<size_t>(c->step);
      const std::string what = std::string(kSteps[step].name) + (c->compensation ? " compensation" : " action") +
                               " (attempt " + std::to_string(c->attempt) + ", incarnation " +
                               std::to_string(c->incarnation) + ")";
      if (!c->compensation) {
        if (c->step < last_action_at[static_cast<size_t>(c->service)])
          violation(id, what + " sent after a later step's action at the same service");
        if (compensating_at[static_cast<size_t>(c->service)]) violation(id, what + " sent after a compensation");
        last_action_at[static_cast<size_t>(c->service)] = std::max(last_action_at[static_cast<size_t>(c->service)], c->step);
        if (c->step > 0 && !action_2xx[step - 1] && kSteps[step - 1].service == kSteps[step].service)
          violation(id, what + " sent before the previous step succeeded at the service");
        if (const LoggedEvent* ok = action_ok[step]) {
          if (c->incarnation > ok->incarnation) violation(id, what + " sent again after its success was logged");
          if (c->incarnation == ok->incarnation && c->attempt > ok->attempt)
            violation(id, what + " retried after its success was logged");
        }
        if (is_2xx(c->status)) action_2xx[step] = true;
      } else {
        compensating_at[static_cast<size_t>(c->service)] = true;
        if (c->step > last_compensation_at[static_cast<size_t>(c->service)])
          violation(id, what + " sent after the compensation of an earlier step (not reverse order)");
        last_compensation_at[static_cast<size_t>(c->service)] = std::min(last_compensation_at[static_cast<size_t>(c->service)], c->step);
        if (std::find(plan.begin(), plan.end(), kSteps[step].name) == plan.end())
          violation(id, what + " sent for a step not in the compensation plan");
        if (const LoggedEvent* ok = compensation_ok[step]; ok && c->incarnation > ok->incarnation)
          violation(id, what + " sent again after its success was logged");
        compensation_sent[step] = true;
        if (is_2xx(c->status)) compensation_2xx[step] = true;
      }
    }
    // Cross-service facts, by presence rather than order.
    for (size_t s = 1; s < n; ++s) {
      bool sent = std::any_of(calls.begin(), calls.end(), [&](const ServiceCall* c) { return !c->compensation && c->step == static_cast<int>(s); });
      if (sent && !action_2xx[s - 1]) violation(id, std::string(kSteps[s].name) + " sent though " + kSteps[s - 1].name + " never succeeded at its service");
      if (sent && !action_ok[s - 1]) violation(id, std::string(kSteps[s].name) + " sent though " + kSteps[s - 1].name + "'s success is not in the log");
    }
    if (action_2xx[kPivot]) {
      for (size_t s = 0; s < n; ++s)
        if (compensation_sent[s]) violation(id, std::string(kSteps[s].name) + " compensated after the pivot succeeded at tickets");
      if (status == "compensated") violation(id, "compensated though the ticket was issued");
    }
    // No step result lost: a compensated saga undid every step that happened at a service.
    if (status == "compensated")
      for (size_t s = 0; s < n; ++s)
        if (action_2xx[s] && kSteps[s].compensation && !compensation_2xx[s])
          violation(id, std::string(kSteps[s].name) + " happened at its service but was never compensated");
    // Compensations in exact reverse, across services: one is sent only once every later step's compensation in the plan succeeded.
    for (size_t i = 0; i < plan.size(); ++i) {
      size_t s = static_cast<size_t>(step_index(plan[i]));
      if (!compensation_sent[s]) continue;
      for (size_t j = 0; j < i; ++j)
        if (!compensation_2xx[static_cast<size_t>(step_index(plan[j]))])
          violation(id, plan[i] + " compensated though " + plan[j] + " (later step) was never compensated");
    }
  }

 public:
  void report() {
    std::ostringstream other;
    for (const auto& [code, count] : totals_.other_statuses) other << " " << code << "x" << count;
    MESSAGE("chaos totals: kills survived " << totals_.kills << "; sagas attempted " << totals_.attempted
            << ", acknowledged " << totals_.acknowledged << ", unanswered requests retried " << totals_.refused
            << ", abandoned " << totals_.abandoned
            << ", other answers" << (other.str().empty() ? " none" : other.str()) << "; in log " << totals_.in_log
            << ": completed " << totals_.completed << ", compensated " << totals_.compensated << ", stuck "
            << totals_.stuck << ", unsettled " << totals_.unsettled << "; max in flight at a kill "
            << totals_.max_in_flight << "; service requests " << totals_.service_calls << " (idempotent replays "
            << totals_.replays << ", hung " << totals_.hung << "); events read from the feed " << totals_.fed
            << "; violations " << violations_.size());
    for (const auto& [reason, count] : totals_.stuck_reasons) MESSAGE("stuck x" << count << " at " << reason);
    for (size_t i = 0; i < std::min<size_t>(violations_.size(), 30); ++i) MESSAGE("violation: " << violations_[i]);
    CHECK(totals_.kills == kills_);
    CHECK(totals_.acknowledged > 0);
    CHECK(violations_.empty());
    // Bursts of 200 starts against services that take 30-200 ms a step keep
    // hundreds of sagas in flight; half the kills land just after a burst.
    if (sagas_ >= 800) CHECK_MESSAGE(totals_.max_in_flight >= 100, "the kills did not catch many sagas in flight");
  }

 private:
  const int kills_, seconds_, sagas_;
  const unsigned seed_;
  TempDir dir_;
  usher::test::Child services_;
  std::array<uint16_t, 4> ports_{};
  usher::test::LoggedProcess server_;
  uint16_t port_ = 0;  // 0 until the first start picks one; restarts reuse it
  std::string restart_error_;

  std::mutex mu_;  // guards acknowledged_, totals_ counters of the clients, violations_
  std::set<std::string> acknowledged_;
  std::map<std::string, std::string> acknowledged_by_key_;  // Idempotency-Key -> saga id
  Totals totals_;
  std::vector<std::string> violations_;

  std::vector<Clock::time_point> bursts_;  // when each burst of starts is released
  std::vector<int64_t> kill_us_;
  size_t segments_ = 0;
  std::vector<std::vector<ServiceCall>> calls_by_service_;

  std::atomic<bool> feed_catch_up_{false};
  std::vector<json> fed_;  // the follower thread's until it is joined
  std::map<std::string, std::vector<const json*>> fed_by_saga_;
};

}  // namespace

TEST_CASE("chaos: SIGKILLed at random under load, usher loses no acknowledged saga, keeps every trace valid, and the event feed gives every event once") {
  ChaosRun run;
  run.run();
  run.report();
}
