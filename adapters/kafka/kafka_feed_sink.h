// The event feed published to a Kafka topic (`publish: { kafka: … }` in
// usher.yaml, docs/event-feed.md): one message per event, key = the saga id
// (so each saga's events stay on one partition, in order), value = the
// event's feed JSON, headers usher-saga-id, usher-seq and usher-type.
//
// The producer is idempotent (acks=all): librdkafka's own retries neither
// duplicate nor reorder a partition's messages. publish() returns once the
// broker acknowledged every message of the batch; a message that is not
// acknowledged within `ack_timeout` fails the batch, which the publisher
// sends again (consumers drop repeats by saga_id and seq).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "kafka/kafka_client.h"
#include "usher/feed_sink.h"

namespace usher {

struct KafkaFeedSinkOptions {
  std::string brokers;                        // bootstrap servers, "host:9092,…"
  std::string topic = "usher.saga-events";
  kafka::Properties properties;               // librdkafka properties (security, …), as for steps
  std::chrono::milliseconds ack_timeout{30'000};
};

class KafkaFeedSink final : public FeedSink {
 public:
  // kInvalidArgument for a configuration librdkafka refuses. Connecting
  // happens in the background: an unreachable broker shows in publish().
  static Result<std::shared_ptr<KafkaFeedSink>> create(KafkaFeedSinkOptions options);
  ~KafkaFeedSink() override;

  std::string name() const override { return "kafka:" + options_.topic; }
  Status publish(const std::vector<Json>& events) override;
  void cancel() override;

 private:
  struct Impl;
  explicit KafkaFeedSink(KafkaFeedSinkOptions options);
  KafkaFeedSinkOptions options_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace usher
