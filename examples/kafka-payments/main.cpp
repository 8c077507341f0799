// usher-kafka-payments --brokers HOST:PORT[,...] [--topic payments.requests]
//                      [--group usher-payments] [--property name=value]...
//
// Prints "ready: N partitions of TOPIC assigned" on stdout once its consumer
// has joined the group and may be sent requests.
//
// The payments step service over Kafka, for demos with usher-kafka-sandbox:
//   charge {userId, amount, reference} -> {"paymentId": "pay-N"};
//          declined ("failed") when amount > 1000
//   refund {paymentId}                 -> {} (refunding twice, or an unknown
//          payment, is fine: a compensation must be safe to repeat)
// Idempotent by the idempotency-key header: a request whose key was already
// answered gets the same answer again and charges nothing twice. Runs until
// SIGINT or SIGTERM.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "services/kafka_step_service.h"

namespace {

volatile std::sig_atomic_t g_stop = 0;
extern "C" void on_signal(int) { g_stop = 1; }

// Runs on the service's one consumer thread, so it needs no lock.
class Payments {
 public:
  std::optional<usher::KafkaStepReply> handle(const usher::KafkaStepRequest& req) {
    if (!req.idempotency_key.empty()) {
      if (auto it = answered_.find(req.idempotency_key); it != answered_.end()) return it->second;
    }
    usher::KafkaStepReply reply = answer(req);
    if (!req.idempotency_key.empty()) answered_.emplace(req.idempotency_key, reply);
    std::fprintf(stderr, "payments: %s %s %s -> %s\n", req.operation.c_str(), req.saga_id.c_str(),
                 req.body.dump().c_str(), reply.encode().c_str());
    return reply;
  }

 private:
  usher::KafkaStepReply answer(const usher::KafkaStepRequest& req) {
    if (req.operation == "charge") {
      const auto amount = req.body.find("amount");
      if (amount == req.body.end() || !amount->is_number())
        return usher::KafkaStepReply::failed("charge: \"amount\" must be a number");
      if (amount->get<double>() > 1000)
        return usher::KafkaStepReply::failed("card declined: amount " + amount->dump() + " is over the 1000 limit");
      return usher::KafkaStepReply::ok({{"paymentId", "pay-" + std::to_string(++next_payment_)}});
    }
    if (req.operation == "refund") return usher::KafkaStepReply::ok();
    return usher::KafkaStepReply::failed("payments has no operation \"" + req.operation + "\"");
  }

  std::map<std::string, usher::KafkaStepReply> answered_;  // grows with requests: fine for a demo
  uint64_t next_payment_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"The payments step service over Kafka (usher example)."};
  usher::KafkaStepServiceOptions options;
  const char* env = std::getenv("KAFKA_BROKERS");
  options.brokers = env ? env : "127.0.0.1:9092";
  std::string topic = "payments.requests";
  std::vector<std::string> properties;
  options.group_id = "usher-payments";
  app.add_option("--brokers", options.brokers, "bootstrap servers (default: $KAFKA_BROKERS or 127.0.0.1:9092)");
  app.add_option("--topic", topic, "request topic");
  app.add_option("--group", options.group_id, "consumer group");
  app.add_option("--property", properties, "librdkafka property name=value (e.g. security.protocol=SASL_SSL)");
  CLI11_PARSE(app, argc, argv);
  options.topics = {topic};
  for (const std::string& p : properties) {
    const size_t eq = p.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::fprintf(stderr, "usher-kafka-payments: --property %s: expected name=value\n", p.c_str());
      return 2;
    }
    options.properties[p.substr(0, eq)] = p.substr(eq + 1);
  }

  Payments payments;
  auto service = usher::KafkaStepService::create(
      options, [&](const usher::KafkaStepRequest& req) { return payments.handle(req); });
  if (!service) {
    std::fprintf(stderr, "usher-kafka-payments: %s\n", service.status().message().c_str());
    return 1;
  }
  if (usher::Status s = (*service)->start(); !s) {
    std::fprintf(stderr, "usher-kafka-payments: %s\n", s.message().c_str());
    return 1;
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::fprintf(stderr, "usher-kafka-payments: consuming %s on %s\n", topic.c_str(), options.brokers.c_str());
  // Joining the consumer group takes a few seconds (about 3 s on the mock
  // cluster): a request sent before is answered only after it. One line on
  // stdout says when the service has its partitions, so a script can wait
  // for it rather than spend the first step's timeout on the join.
  bool ready = false;
  while (!g_stop) {
    if (!ready && (*service)->assigned_partitions() > 0) {
      ready = true;
      std::printf("ready: %zu partitions of %s assigned\n", (*service)->assigned_partitions(), topic.c_str());
      std::fflush(stdout);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(ready ? 100 : 20));
  }
  (*service)->stop();
  return 0;
}
