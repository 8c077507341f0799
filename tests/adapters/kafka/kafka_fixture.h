// Helpers for the Kafka tests: an in-process librdkafka mock cluster (the real
// Kafka protocol over TCP on 127.0.0.1), a step service built on
// KafkaStepService whose behaviour each test scripts, and a way to wait for a
// step callback with a bound.
#pragma once

#include <doctest/doctest.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "kafka/kafka_step_adapter.h"
#include "services/kafka_step_service.h"
#include "support/step_results.h"

namespace usher::test {

class MockCluster {
 public:
  explicit MockCluster(int brokers = 3,
                       std::vector<std::string> topics = {"payments.requests", "usher.replies"},
                       int partitions = 3) {
    char err[256];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
    host_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    REQUIRE_MESSAGE(host_ != nullptr, err);
    cluster_ = rd_kafka_mock_cluster_new(host_, brokers);
    REQUIRE(cluster_ != nullptr);
    for (const auto& t : topics)
      REQUIRE(rd_kafka_mock_topic_create(cluster_, t.c_str(), partitions, brokers < 3 ? brokers : 3) ==
              RD_KAFKA_RESP_ERR_NO_ERROR);
    bootstraps_ = rd_kafka_mock_cluster_bootstraps(cluster_);
  }
  ~MockCluster() {
    rd_kafka_mock_cluster_destroy(cluster_);
    rd_kafka_destroy(host_);
  }
  MockCluster(const MockCluster&) = delete;
  MockCluster& operator=(const MockCluster&) = delete;

  const std::string& bootstraps() const { return bootstraps_; }
  rd_kafka_mock_cluster_t* get() const { return cluster_; }
  void set_down(int32_t broker) { REQUIRE(rd_kafka_mock_broker_set_down(cluster_, broker) == 0); }
  void set_up(int32_t broker) { REQUIRE(rd_kafka_mock_broker_set_up(cluster_, broker) == 0); }

 private:
  rd_kafka_t* host_ = nullptr;
  rd_kafka_mock_cluster_t* cluster_ = nullptr;
  std::string bootstraps_;
};

// Polls `pred` every 10 ms for up to `wait`.
template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds wait = std::chrono::seconds(10)) {
  const auto end = std::chrono::steady_clock::now() + wait;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

// The mock cluster holds a fetch that finds no data for fetch.wait.max.ms
// instead of answering when data comes, as a real broker does; a short wait
// keeps the tests' round trips short.
inline const kafka::Properties kFastFetch = {{"fetch.wait.max.ms", "10"}};

inline std::shared_ptr<KafkaStepAdapter> make_adapter(KafkaStepAdapterOptions options = {}) {
  options.properties.insert(kFastFetch.begin(), kFastFetch.end());
  auto adapter = KafkaStepAdapter::create(std::move(options));
  REQUIRE_MESSAGE(adapter.is_ok(), adapter.status().to_string());
  return std::move(adapter.value());
}

inline std::unique_ptr<KafkaStepService> start_service(const MockCluster& mock, KafkaStepHandler handler,
                                                       std::string topic = "payments.requests") {
  KafkaStepServiceOptions options;
  options.brokers = mock.bootstraps();
  options.topics = {std::move(topic)};
  options.properties = kFastFetch;
  auto service = KafkaStepService::create(options, std::move(handler));
  REQUIRE_MESSAGE(service.is_ok(), service.status().to_string());
  REQUIRE((*service)->start().is_ok());
  // Requests wait in the topic until the group has formed, but the short
  // attempt timeouts of the tests would not.
  REQUIRE_MESSAGE(eventually([&] { return (*service)->assigned_partitions() > 0; }, std::chrono::seconds(15)),
                  "the step service was not assigned any partition");
  return std::move(service.value());
}

// One mock cluster and one payments service for the whole test binary: a
// consumer group's first join waits 3 s in the mock cluster (as on a broker
// with the default group.initial.rebalance.delay.ms), which every test would
// pay again with its own service. Tests set the handler they need; requests
// of earlier tests that are still in flight meet the new handler, so tests
// count only what concerns their own saga ids.
class SharedKafka {
 public:
  static SharedKafka& get() {
    static SharedKafka shared;
    return shared;
  }
  const MockCluster& mock() const { return mock_; }
  KafkaStepService& service() { return *service_; }
  void set_handler(KafkaStepHandler handler) {
    std::lock_guard lock(mu_);
    handler_ = std::move(handler);
  }

 private:
  SharedKafka() {
    service_ = start_service(mock_, [this](const KafkaStepRequest& req) -> std::optional<KafkaStepReply> {
      KafkaStepHandler h;
      {
        std::lock_guard lock(mu_);
        h = handler_;
      }
      if (!h) return std::nullopt;
      return h(req);
    });
  }
  MockCluster mock_;
  std::mutex mu_;
  KafkaStepHandler handler_;
  std::unique_ptr<KafkaStepService> service_;  // declared last: stopped first
};

// One attempt of step "pay" (payments.charge) of saga `saga_id`.
inline StepCall pay_call(const MockCluster& mock, const std::string& saga_id, Json body = {{"amount", 10}},
                         Millis timeout = Millis{10'000}) {
  StepCall call;
  call.saga_id = saga_id;
  call.workflow = "booking";
  call.step = "pay";
  call.kind = CallKind::kAction;
  call.attempt = 1;
  call.service.name = "payments";
  call.service.transport = Transport::kKafka;
  call.service.brokers = mock.bootstraps();
  call.service.topic = "payments.requests";
  call.service.reply_topic = "usher.replies";
  call.operation = "charge";
  call.body = std::move(body);
  call.idempotency_key = saga_id + ":pay:action";
  call.timeout = timeout;
  return call;
}

}  // namespace usher::test
