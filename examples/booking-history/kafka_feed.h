// usher's events as it publishes them to a Kafka topic (docs/event-feed.md,
// "Publication to Kafka"): value = the feed's event JSON, key = saga id, so
// each saga's events are on one partition in seq order.
//
// The reader takes every partition of the topic itself (assign, not
// subscribe): one process feeds one database, so there is nobody to balance
// partitions with, and it never waits for a group to form. The group id is
// only where its offsets are committed — after the batch is in SQLite, so a
// crash in between repeats events, which the read model drops by (saga_id,
// seq): at least once from Kafka, exactly once in the database.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

typedef struct rd_kafka_s rd_kafka_t;

namespace booking_history {

struct KafkaFeedOptions {
  std::string brokers;
  std::string topic = "usher.saga-events";
  std::string group_id = "usher-booking-history";
  std::vector<std::string> properties;  // librdkafka name=value
  bool from_beginning = false;  // ignore committed offsets (--rebuild)
};

class KafkaFeed {
 public:
  // Throws std::runtime_error when the consumer cannot be made.
  explicit KafkaFeed(const KafkaFeedOptions& options);
  ~KafkaFeed();
  KafkaFeed(const KafkaFeed&) = delete;
  KafkaFeed& operator=(const KafkaFeed&) = delete;

  // Takes every partition of the topic, waiting (until `stop`, or `give_up`)
  // for the topic to exist. Throws std::runtime_error when it does not.
  void assign(const std::atomic<bool>& stop, std::chrono::milliseconds give_up);

  // Up to `max` events, waiting up to `timeout` for the first one. Values
  // that are not JSON are returned as discarded values for the read model
  // to warn about and skip.
  std::vector<nlohmann::json> poll(size_t max, std::chrono::milliseconds timeout);

  // True when every partition is at its end: all that was in the topic when
  // we got there has been returned by poll.
  bool drained() const;

  // Commits the offsets of every event poll returned (synchronously: call it
  // once they are in the database). A failure is a warning: the next start
  // reads those events again and the read model drops them.
  void commit();

 private:
  KafkaFeedOptions options_;
  rd_kafka_t* rk_ = nullptr;
  std::map<int32_t, bool> at_end_;        // partition -> reached its end, nothing after
  std::map<int32_t, int64_t> to_commit_;  // partition -> offset of the next message
};

}  // namespace booking_history
