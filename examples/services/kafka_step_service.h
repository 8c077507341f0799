// The other end of the Kafka wire contract, for step services written in C++:
// consume a request topic, hand each request to a function, and produce its
// reply to the request's usher-reply-to topic with the same
// usher-correlation-id (and key = saga id), as docs/kafka.md describes.
//
// Delivery is at least once: the consumer joins `group_id` (services scale
// out by running more members of one group), starts a new group at the
// earliest offset so no request sent before the service came up is missed,
// and stores a request's offset only after its reply was handed to the
// producer; offsets are committed in the background. A crash between the two
// re-delivers the request, and the same idempotency-key header lets the
// handler answer it again without doing the work twice.
//
// Threading: start() runs one thread that polls the consumer and the
// producer and calls the handler, one request at a time in partition order.
// reply() may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "kafka/kafka_client.h"
#include "usher/definition.h"
#include "usher/status.h"

namespace usher {

struct KafkaStepRequest {
  std::string topic;  // the request topic it came from
  int32_t partition = 0;
  int64_t offset = 0;
  std::string key;              // the message key (usher sends the saga id)
  std::string saga_id;          // usher-saga-id (also the message key)
  std::string step;             // usher-step
  std::string operation;        // usher-operation, e.g. "charge"
  std::string kind;             // usher-kind: "action" | "compensate"
  uint32_t attempt = 0;         // usher-attempt (0 when absent or not a number)
  std::string correlation_id;   // usher-correlation-id, echoed in the reply
  std::string reply_to;         // usher-reply-to
  std::string idempotency_key;  // idempotency-key: the same on every attempt
  Json body;                    // the value, parsed
  std::map<std::string, std::string> headers;  // every header, last value wins
};

struct KafkaStepReply {
  enum class Status { kOk, kFailed, kRetry };
  Status status = Status::kOk;
  Json output = Json::object();  // kOk
  std::string error;             // kFailed (required) and kRetry (optional)

  static KafkaStepReply ok(Json out = Json::object()) { return {Status::kOk, std::move(out), {}}; }
  static KafkaStepReply failed(std::string e) { return {Status::kFailed, Json::object(), std::move(e)}; }
  static KafkaStepReply retry(std::string e = {}) { return {Status::kRetry, Json::object(), std::move(e)}; }
  // The JSON value on the wire (kafka_reply.h).
  std::string encode() const;
};

// Returns the reply, or nullopt to send none now (the request's attempt then
// times out at usher unless the service answers later with reply()). A
// handler that throws is answered {"status":"retry"} with the exception's
// message. Requests whose value is not JSON are answered "failed" without
// calling the handler, since sending them again cannot help.
using KafkaStepHandler = std::function<std::optional<KafkaStepReply>(const KafkaStepRequest&)>;

struct KafkaStepServiceOptions {
  std::string brokers;              // bootstrap servers
  std::vector<std::string> topics;  // request topics, e.g. {"payments.requests"}
  std::string group_id;             // consumer group; empty: "usher-service-" + first topic
  // Reply topics made known to the producer at start: the first reply to a
  // topic it has not seen may otherwise wait about 1 s for metadata.
  std::vector<std::string> reply_topics = {"usher.replies"};
  // Pass-through librdkafka properties (security.protocol, sasl.*, ssl.*),
  // for the consumer and the producer alike.
  kafka::Properties properties;
  Millis poll_interval{50};         // the longest the thread sleeps before checking stop()
  Millis shutdown_flush{2'000};     // how long stop() lets replies be delivered
};

class KafkaStepService {
 public:
  // Checks the options and creates the clients; does not consume yet.
  static Result<std::unique_ptr<KafkaStepService>> create(KafkaStepServiceOptions options,
                                                          KafkaStepHandler handler);
  ~KafkaStepService();  // stops if not done yet
  KafkaStepService(const KafkaStepService&) = delete;
  KafkaStepService& operator=(const KafkaStepService&) = delete;

  // Subscribes and starts the thread.
  Status start();
  // Stops consuming, delivers the replies already produced (up to
  // shutdown_flush), leaves the group and joins. Idempotent.
  void stop();

  // Sends `reply` for `request` (same correlation id, to its reply topic).
  Status reply(const KafkaStepRequest& request, const KafkaStepReply& reply);
  // Sends any value, well-formed or not, as the reply to `request`: for
  // services that build their own JSON, and for tests of malformed replies.
  Status reply_raw(const KafkaStepRequest& request, std::string_view value);

  uint64_t requests_handled() const { return handled_.load(); }
  // Partitions of the request topics this member holds now (0 until the
  // group's first rebalance has assigned it some). For tests and readiness
  // probes: a new group takes seconds to form.
  size_t assigned_partitions() const;

 private:
  KafkaStepService(KafkaStepServiceOptions options, KafkaStepHandler handler);
  void run();
  void handle(const rd_kafka_message_t* msg);

  KafkaStepServiceOptions options_;
  KafkaStepHandler handler_;
  kafka::HandlePtr producer_;
  std::vector<rd_kafka_topic_t*> reply_topics_;  // held so librdkafka keeps their metadata
  kafka::HandlePtr consumer_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  bool started_ = false;
  bool stopped_ = false;
  std::atomic<uint64_t> handled_{0};
};

}  // namespace usher
