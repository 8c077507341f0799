// `usher serve` as the serve tests run it: the real binary on 127.0.0.1
// port 0 over a temp log and the shipped workflows, in front of the example
// step services (port 0) and payments over Kafka (a mock cluster,
// usher-kafka-sandbox, and usher-kafka-payments).
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "serve/test_http.h"
#include "support/temp_dir.h"
#include "support/test_store.h"

namespace usher::test {

// A Kafka mock cluster (usher-kafka-sandbox) and the payments service over
// Kafka: concert-booking charges and refunds through them.
struct KafkaPayments {
  KafkaPayments() : sandbox({USHER_BINARY_DIR "/examples/kafka-sandbox/usher-kafka-sandbox", "--brokers", "1"}) {
    for (;;) {
      auto line = sandbox.read_line();
      REQUIRE_MESSAGE(line.has_value(), "the Kafka sandbox printed no bootstrap servers");
      const std::string prefix = "bootstrap.servers=";
      if (line->rfind(prefix, 0) == 0) {
        brokers = line->substr(prefix.size());
        break;
      }
    }
    ::setenv("KAFKA_BROKERS", brokers.c_str(), 1);
    payments = std::make_unique<Child>(std::vector<std::string>{
        USHER_BINARY_DIR "/examples/kafka-payments/usher-kafka-payments", "--brokers", brokers});
    // Its consumer group join takes ~3 s on the mock cluster; a payment sent
    // before would spend that much of its timeout waiting.
    auto ready = payments->read_line(std::chrono::seconds(30));
    REQUIRE_MESSAGE((ready && ready->rfind("ready:", 0) == 0), "usher-kafka-payments did not say it was ready");
  }
  Child sandbox;
  std::string brokers;
  std::unique_ptr<Child> payments;
};

// The example services on free ports, and payments over Kafka; the workflows
// find them through the environment variables they read (SEATS_URL, ...,
// KAFKA_BROKERS), set for the server child.
struct Services {
  Services()
      : child({USHER_BINARY_DIR "/examples/services/usher-example-services", "--seats-port", "0", "--payments-port", "0",
               "--tickets-port", "0", "--notifier-port", "0"}) {
    auto line = child.read_line();
    REQUIRE_MESSAGE(line.has_value(), "the example services printed no ports");
    nlohmann::json ports = nlohmann::json::parse(*line);
    auto url = [&](const char* name) { return "http://127.0.0.1:" + std::to_string(ports[name].get<int>()); };
    ::setenv("SEATS_URL", url("seats").c_str(), 1);
    ::setenv("PAYMENTS_URL", url("payments").c_str(), 1);
    ::setenv("TICKETS_URL", url("tickets").c_str(), 1);
    ::setenv("NOTIFY_URL", url("notifier").c_str(), 1);
  }
  Child child;
  KafkaPayments kafka;
};

// `usher serve` on the log in `dir` (SQLite, or PostgreSQL under
// USHER_TEST_STORE=postgres) and `workflows` (the shipped ones unless
// given), listening on a free port; `extra` flags are added. SIGKILLed when
// destroyed.
struct Server {
  explicit Server(const TempDir& dir, std::vector<std::string> extra = {},
                  const std::string& workflows = USHER_SOURCE_DIR "/workflows")
      : child(argv(dir, std::move(extra), workflows)), port(listening_port(child)) {}
  static std::vector<std::string> argv(const TempDir& dir, std::vector<std::string> extra,
                                       const std::string& workflows = USHER_SOURCE_DIR "/workflows") {
    std::vector<std::string> a = {USHER_BINARY_DIR "/cli/usher", "serve", "--db", saga_log_at(dir.file("usher.db")),
                                  "--workflows", workflows, "--listen", "127.0.0.1:0", "--log-level", "warn"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  Child child;
  uint16_t port = 0;
};

// Waits (up to 30 s) until no saga runs or compensates, every node's counted.
inline void settle(uint16_t port) {
  for (int i = 0; i < 600; ++i) {
    nlohmann::json stats = request(port, http::verb::get, "/v1/stats").json();
    if (stats["sagas"].value("running", 1) == 0 && stats["sagas"].value("compensating", 1) == 0) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  FAIL("sagas still running after 30 s");
}

// Waits (up to 30 s) until /healthz says the feed's publication has every
// event of the log (`publish:` configured); returns that /healthz answer.
inline nlohmann::json wait_published(uint16_t port) {
  nlohmann::json health;
  for (int i = 0; i < 600; ++i) {
    health = request(port, http::verb::get, "/healthz").json();
    const nlohmann::json& p = health["publication"];
    if (p.is_object() && p["state"] == "publishing" && p["lag_events"] == 0) {
      // And nothing after its position (lag is read before a batch is published).
      auto rest = request(port, http::verb::get, "/v1/events?after=" + std::to_string(p["position"].get<int64_t>()));
      if (rest.json()["events"].empty()) return health;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  FAIL("the publication did not catch up within 30 s: " << health.dump());
  return health;
}

}  // namespace usher::test
