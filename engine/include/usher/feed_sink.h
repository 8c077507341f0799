// Publication of the event feed (docs/event-feed.md): the engine reads its
// own log in commit order and hands each batch of events to a FeedSink, a
// destination such as a Kafka topic (adapters/kafka/kafka_feed_sink.h). The
// position published so far is kept in the log and advanced only once the
// sink said every event of the batch was acknowledged, so a crash repeats
// events and never loses one: at least once, each saga's in seq order.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "usher/definition.h"
#include "usher/status.h"

namespace usher {

class FeedSink {
 public:
  virtual ~FeedSink() = default;
  // Names the publication and so its stored position, e.g.
  // "kafka:usher.saga-events": the same name goes on where it stopped.
  virtual std::string name() const = 0;
  // Sends `events` (the feed's event JSON, docs/api.md, in feed order) and
  // returns once the destination acknowledged every one of them; an error
  // when it did not (some may have been delivered: the batch is sent again).
  // Called from the publisher's own thread, one batch at a time.
  virtual Status publish(const std::vector<Json>& events) = 0;
  // Makes a publish() in progress return soon (the engine is stopping).
  virtual void cancel() {}
};

// How a publication stands (Engine::publication(); /metrics, /healthz).
struct PublicationStats {
  std::string name;
  // "publishing": this node holds the publication and is current or catching
  // up; "stalled": the last batch failed and is being tried again; "standby":
  // another node publishes (a cluster); "starting": not yet claimed.
  std::string state = "starting";
  int64_t position = 0;        // every event up to this position is published
  int64_t lag_events = 0;      // committed events not yet published
  double lag_seconds = 0;      // age of the oldest of them (0 when none)
  uint64_t published = 0;      // events published by this process
  uint64_t failures = 0;       // batches that failed
  std::string last_error;      // of the last failure, while stalled
};

}  // namespace usher
