// End-to-end harness: the real `usher serve` binary and the real example step
// services (usher-example-services), both on 127.0.0.1 port 0, a workflow
// written by each test into its own temp dir, and the services' request logs
// read back as the source of truth for what usher actually sent.
//
// Every process is a usher::test::Child, SIGKILLed and reaped by its
// destructor, so a failing REQUIRE never leaves a process behind.
#pragma once

#include <doctest/doctest.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "serve/test_http.h"
#include "support/test_store.h"

namespace usher::e2e {

using nlohmann::json;
using usher::test::Child;
using usher::test::HttpReply;
namespace http = boost::beast::http;
using namespace std::chrono_literals;

class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("usher-e2e-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
    std::filesystem::create_directories(path_ / "workflows");
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::string workflows() const { return file("workflows"); }
  // The saga log: a SQLite file here, or a PostgreSQL database when the
  // suite runs as e2e_postgres (support/test_store.h).
  std::string db() const { return test::saga_log_at(file("usher.db")); }

 private:
  std::filesystem::path path_;
};

// Polls `done` until it returns true or `limit` passes. Polling (rather than
// sleeping a guessed time) keeps the tests fast on a quiet machine and correct
// on a loaded one.
template <class F>
bool eventually(F&& done, std::chrono::milliseconds limit = 20s) {
  const auto until = std::chrono::steady_clock::now() + limit;
  for (;;) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(5ms);
  }
}

// The four example services in one child process, each on a free port.
class Services {
 public:
  Services()
      : child_({USHER_BINARY_DIR "/examples/services/usher-example-services", "--seats-port", "0", "--payments-port",
                "0", "--tickets-port", "0", "--notifier-port", "0"}) {
    auto line = child_.read_line();
    REQUIRE_MESSAGE(line.has_value(), "usher-example-services printed no ports");
    json ports = json::parse(*line);
    for (const char* name : {"seats", "payments", "tickets", "notifier"})
      ports_[name] = static_cast<uint16_t>(ports.at(name).get<int>());
  }

  uint16_t port(const std::string& service) const { return ports_.at(service); }
  std::string url(const std::string& service) const { return "http://127.0.0.1:" + std::to_string(port(service)); }

  // Switches `operation` of `service` to `mode` (decline, transient, hang, ok)
  // for the next `count` calls, or until switched back when count is absent.
  void control(const std::string& service, const std::string& operation, const std::string& mode,
               std::optional<int> count = std::nullopt) const {
    json body = {{"operation", operation}, {"mode", mode}};
    if (count) body["count"] = *count;
    auto r = usher::test::request(port(service), http::verb::post, "/_control", body.dump());
    REQUIRE_MESSAGE(r.status == 200, "control " << service << "." << operation << " " << mode << ": " << r.status
                                                << " " << r.error << r.body);
  }

  // The service's request log, in arrival order.
  json log(const std::string& service) const {
    auto r = usher::test::request(port(service), http::verb::get, "/_requests");
    REQUIRE_MESSAGE(r.status == 200, "GET /_requests of " << service << ": " << r.status << " " << r.error);
    json entries = r.json();
    REQUIRE(entries.is_array());
    return entries;
  }

 private:
  Child child_;
  std::map<std::string, uint16_t> ports_;
};

// Knobs of the test workflow; each test changes what it needs. Durations and
// policies are YAML flow text put into the file as is.
struct WorkflowOptions {
  std::string name = "e2e-booking";
  std::string attempt_timeout = "300ms";
  std::string parking_timeout = "300ms";
  std::string retry = "{ attempts: 3, backoff: 10ms, multiplier: 2, max_backoff: 40ms }";
  std::string pay_retry = "{ attempts: 3, backoff: 10ms, multiplier: 2, max_backoff: 40ms }";
  std::string notify_retry = "{ attempts: unlimited, backoff: 10ms, multiplier: 2, max_backoff: 40ms }";
  std::string compensation_retry = "{ attempts: 5, backoff: 10ms, multiplier: 2, max_backoff: 40ms }";
};

// Unlimited retries of the charge, the notification and every compensation,
// for tests that make those calls fail for a while (with a service switch, a
// crash): each saga's outcome then depends on its input alone.
inline WorkflowOptions patient_workflow() {
  WorkflowOptions o;
  o.pay_retry = "{ attempts: unlimited, backoff: 20ms, multiplier: 2, max_backoff: 100ms }";
  o.notify_retry = "{ attempts: unlimited, backoff: 20ms, multiplier: 2, max_backoff: 100ms }";
  o.compensation_retry = "{ attempts: unlimited, backoff: 20ms, multiplier: 2, max_backoff: 100ms }";
  return o;
}

// A five-step booking on the example services, all over HTTP:
//   reserve  seats.hold          (compensate: seats.release)
//   parking  seats.hold-parking  (compensate: seats.release)
//   pay      payments.charge     (compensate: payments.refund)
//   confirm  tickets.issue       pivot
//   notify   notifier.send       retriable
// Both seat holds go to the seats service, so the order of their two
// compensations is the arrival order in one request log.
inline std::string booking_yaml(const Services& s, const WorkflowOptions& o) {
  std::string y;
  y += "saga: " + o.name + "\n";
  y += "version: 1\n";
  y += "description: end-to-end test booking\n";
  y += "services:\n";
  y += "  seats:    { http: { url: \"" + s.url("seats") + "\" } }\n";
  y += "  payments: { http: { url: \"" + s.url("payments") + "\" } }\n";
  y += "  tickets:  { http: { url: \"" + s.url("tickets") + "\" } }\n";
  y += "  notifier: { http: { url: \"" + s.url("notifier") + "\" } }\n";
  y += "input:\n";
  y += "  type: object\n";
  y += "  required: [userId, concertId, seat, spaces, amount]\n";
  y += "  properties:\n";
  y += "    spaces: { type: integer, minimum: 0 }\n";
  y += "    amount: { type: integer, minimum: 1 }\n";
  y += "timeout: 5m\n";
  y += "defaults:\n";
  y += "  timeout: " + o.attempt_timeout + "\n";
  y += "  retry: " + o.retry + "\n";
  y += "  compensation_retry: " + o.compensation_retry + "\n";
  y += "steps:\n";
  y += "  - name: reserve\n";
  y += "    call: seats.hold\n";
  y += "    with: { concertId: \"${input.concertId}\", seat: \"${input.seat}\" }\n";
  y += "    compensate:\n";
  y += "      call: seats.release\n";
  y += "      with: { holdId: \"${steps.reserve.output.holdId}\" }\n";
  y += "  - name: parking\n";
  y += "    call: seats.hold-parking\n";
  y += "    timeout: " + o.parking_timeout + "\n";
  y += "    with: { concertId: \"${input.concertId}\", spaces: \"${input.spaces}\" }\n";
  y += "    compensate:\n";
  y += "      call: seats.release\n";
  // A step that timed out has no known output (docs/semantics.md): its
  // compensation gets the default and the service finds the hold by key.
  y += "      with: { holdId: \"${steps.parking.output.holdId:-unknown-hold}\" }\n";
  y += "  - name: pay\n";
  y += "    call: payments.charge\n";
  y += "    with: { userId: \"${input.userId}\", amount: \"${input.amount}\", reference: \"${saga.id}\" }\n";
  y += "    retry: " + o.pay_retry + "\n";
  y += "    compensate:\n";
  y += "      call: payments.refund\n";
  y += "      with: { paymentId: \"${steps.pay.output.paymentId:-unknown-payment}\", reference: \"${saga.id}\" }\n";
  y += "  - name: confirm\n";
  y += "    type: pivot\n";
  y += "    call: tickets.issue\n";
  y += "    with:\n";
  y += "      holdId: \"${steps.reserve.output.holdId}\"\n";
  y += "      paymentId: \"${steps.pay.output.paymentId}\"\n";
  y += "      parkingHoldId: \"${steps.parking.output.holdId}\"\n";
  y += "  - name: notify\n";
  y += "    type: retriable\n";
  y += "    call: notifier.send\n";
  y += "    with:\n";
  y += "      userId: \"${input.userId}\"\n";
  y += "      ticketId: \"${steps.confirm.output.ticketId}\"\n";
  y += "      template: \"ticket ${steps.confirm.output.ticketId} for ${input.userId}\"\n";
  y += "    retry: " + o.notify_retry + "\n";
  return y;
}

// A workflow file `name`.yaml in the test's workflow directory; each `URL` in
// the text becomes `url` (a test service's address).
inline void write_yaml(const TempDir& dir, const std::string& name, std::string yaml, const std::string& url) {
  for (size_t at = yaml.find("URL"); at != std::string::npos; at = yaml.find("URL", at + url.size()))
    yaml.replace(at, 3, url);
  std::ofstream out(dir.workflows() + "/" + name + ".yaml");
  out << yaml;
  REQUIRE(out.good());
}

inline void write_workflow(const TempDir& dir, const Services& s, const WorkflowOptions& o = {}) {
  std::ofstream out(dir.workflows() + "/" + o.name + ".yaml");
  out << booking_yaml(s, o);
  REQUIRE(out.good());
}

// `usher serve` on the test's workflows and log, on a free port.
class Server {
 public:
  explicit Server(const TempDir& dir)
      : child_({USHER_BINARY_DIR "/cli/usher", "serve", "--workflows", dir.workflows(), "--db", dir.db(), "--listen",
                "127.0.0.1:0", "--log-level", "error"}) {
    for (;;) {
      auto line = child_.read_line();
      REQUIRE_MESSAGE(line.has_value(), "usher serve did not say where it listens");
      const std::string prefix = "usher: listening on 127.0.0.1:";
      if (line->rfind(prefix, 0) == 0) {
        port_ = static_cast<uint16_t>(std::stoi(line->substr(prefix.size())));
        break;
      }
    }
  }

  uint16_t port() const { return port_; }
  Child& child() { return child_; }

  HttpReply start(const json& input, const std::string& key = "", const std::string& wait = "",
                  const std::string& workflow = "e2e-booking") const {
    std::string target = "/v1/workflows/" + workflow + "/sagas";
    if (!wait.empty()) target += "?wait=" + wait;
    std::map<std::string, std::string> headers;
    if (!key.empty()) headers["Idempotency-Key"] = key;
    return usher::test::request(port_, http::verb::post, target, input.dump(), headers, 30s);
  }

  json saga(const std::string& id) const {
    auto r = usher::test::request(port_, http::verb::get, "/v1/sagas/" + id);
    REQUIRE_MESSAGE(r.status == 200, "GET saga " << id << ": " << r.status << " " << r.error << r.body);
    return r.json();
  }

  json events(const std::string& id) const {
    auto r = usher::test::request(port_, http::verb::get, "/v1/sagas/" + id + "/events");
    REQUIRE_MESSAGE(r.status == 200, "GET events " << id << ": " << r.status << " " << r.error << r.body);
    return r.json().at("events");
  }

  HttpReply cancel(const std::string& id) const {
    return usher::test::request(port_, http::verb::post, "/v1/sagas/" + id + "/cancel");
  }

  // The saga once it is completed, compensated or stuck; fails the test if it
  // is still moving after `limit`.
  json settled(const std::string& id, std::chrono::milliseconds limit = 20s) const {
    json s;
    bool done = eventually(
        [&] {
          s = saga(id);
          const std::string status = s.at("status");
          return status == "completed" || status == "compensated" || status == "stuck";
        },
        limit);
    REQUIRE_MESSAGE(done, "saga " << id << " did not settle; it is " << s.dump());
    return s;
  }

 private:
  Child child_;
  uint16_t port_ = 0;
};

// The booking input the workflow takes.
inline json booking(int amount, int spaces = 1, const std::string& user = "fan-1") {
  return {{"userId", user}, {"concertId", "arena-2026"}, {"seat", "B12"}, {"spaces", spaces}, {"amount", amount}};
}

// All four request logs, concatenated (each keeps its arrival order).
inline json all_calls(const Services& services) {
  json all = json::array();
  for (const char* s : {"seats", "payments", "tickets", "notifier"})
    for (json& e : services.log(s)) all.push_back(std::move(e));
  return all;
}

// How many sagas the notifier has been called for: how many are past the pivot.
inline size_t sagas_notified(const Services& services) {
  std::set<std::string> notified;
  for (const json& e : services.log("notifier")) notified.insert(e["saga_id"].get<std::string>());
  return notified.size();
}

// Each action and each compensation of saga `id` was done once by its
// service: a call sent again is answered as a replay.
inline void check_done_once(const json& calls, const std::string& id) {
  std::map<std::string, int> done;
  for (const json& e : calls)
    if (e["saga_id"] == id && !e["replayed"].get<bool>() && e["status"].is_number() && e["status"] == 200)
      ++done[e["idempotency_key"].get<std::string>()];
  for (const auto& [key, n] : done) CHECK_MESSAGE(n == 1, key << " was done " << n << " times");
}

// One entry of a service's request log as "operation step:kind#attempt status",
// e.g. "hold reserve:action#1 200"; a call that never got an answer shows
// "hung", an idempotent replay adds " replayed". The step and kind come from
// the Idempotency-Key ({sagaId}:{step}:{kind}), which is checked against the
// X-Usher-Saga-Id and X-Usher-Step headers the service also logged.
inline std::string describe(const json& e) {
  const std::string key = e.value("idempotency_key", std::string());
  const std::string saga = e.value("saga_id", std::string());
  std::string rest = key.rfind(saga + ":", 0) == 0 ? key.substr(saga.size() + 1) : "BAD-KEY(" + key + ")";
  const std::string step = rest.substr(0, rest.find(':'));
  CHECK_MESSAGE(e["step"] == step, "X-Usher-Step " << e["step"] << " disagrees with Idempotency-Key " << key);
  std::string out = e.value("operation", std::string()) + " " + rest + "#" + e["attempt"].dump() + " " +
                    (e["status"].is_null() ? std::string("hung") : e["status"].dump());
  if (e.value("replayed", false)) out += " replayed";
  return out;
}

// The calls one saga made to one service, in arrival order, joined by "; ".
inline std::string trace(const json& log, const std::string& saga_id) {
  std::string out;
  for (const json& e : log) {
    if (e["saga_id"] != saga_id) continue;
    if (!out.empty()) out += "; ";
    out += describe(e);
  }
  return out;
}

// Event types in seq order, with the step and kind where there is one:
// "StepSucceeded pay:compensate".
inline std::vector<std::string> event_names(const json& events) {
  std::vector<std::string> out;
  for (const json& e : events) {
    std::string s = e.at("type");
    if (e["step"].is_string()) s += " " + e["step"].get<std::string>();
    if (e["data"].is_object() && e["data"].contains("kind")) s += ":" + e["data"]["kind"].get<std::string>();
    out.push_back(s);
  }
  return out;
}

// Position of the first event named `name` (as event_names spells it), or -1.
inline long index_of(const std::vector<std::string>& names, const std::string& name) {
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) return static_cast<long>(i);
  return -1;
}

// The output recorded by the first event named `name` ("StepSucceeded
// pay:compensate"): the example services echo what they were sent, so this
// shows the body a call carried.
inline json output_of(const json& events, const std::string& name) {
  auto names = event_names(events);
  const long i = index_of(names, name);
  REQUIRE_MESSAGE(i >= 0, "no event " << name);
  return events[static_cast<size_t>(i)]["data"].value("output", json());
}

// The steps whose compensation succeeded, in the order the log records it.
inline std::string compensated_order(const json& events) {
  std::string out;
  for (const json& e : events) {
    if (e["type"] != "StepSucceeded" || e["data"].value("kind", "") != "compensate") continue;
    if (!out.empty()) out += ",";
    out += e["step"].get<std::string>();
  }
  return out;
}

// The plan written in CompensationStarted, "" when the saga never compensated.
inline std::string compensation_plan(const json& events) {
  for (const json& e : events) {
    if (e["type"] != "CompensationStarted") continue;
    std::string out;
    for (const json& s : e["data"]["steps"]) out += (out.empty() ? "" : ",") + s.get<std::string>();
    return out.empty() ? "(empty)" : out;
  }
  return "";
}

// Milliseconds since the epoch of an API time ("2026-11-21T05:25:00.123Z").
inline int64_t millis_of(const std::string& t) {
  std::tm tm{};
  int ms = 0;
  REQUIRE_MESSAGE(std::sscanf(t.c_str(), "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                              &tm.tm_min, &tm.tm_sec, &ms) == 7,
                  "not an API time: " << t);
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<int64_t>(::timegm(&tm)) * 1000 + ms;
}

}  // namespace usher::e2e
