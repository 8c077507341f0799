// The Kafka step adapter: sends each step attempt as one message to its
// service's request topic and waits for the reply on a reply topic, as
// docs/semantics.md says (wire details and reply classification in
// kafka_reply.h, the whole contract in docs/kafka.md).
//
// Per cluster (distinct `brokers` value of the services it is given) the
// adapter holds one idempotent producer (enable.idempotence=true, acks=all)
// and one reply consumer. The consumer does not join a group: it assigns
// itself every partition of each reply topic in use, starting at the end
// offsets read *before* the first request to that reply topic is produced.
// So no reply can be missed (auto.offset.reset=latest after a group join
// resolves "latest" asynchronously, after the request may already have been
// answered), and the first request does not wait out a group join (3 s on a
// broker's default group.initial.rebalance.delay.ms). Its group.id (unique
// per adapter, "usher-<host>-<pid>-<random>" unless set) names it to the
// cluster and its ACLs; no offsets are committed: after a restart the engine
// re-sends its pending attempts under new correlation ids, so earlier replies
// are useless and are not read. Partitions added to a reply topic while the
// adapter runs are not seen until it is restarted.
//
// Threading:
//  - dispatch() runs on the caller's (engine) thread and never waits on the
//    network: when the call's reply topic is ready it registers the attempt
//    and hands the message to librdkafka (rd_kafka_producev copies it);
//    otherwise it queues the call for the poll thread.
//  - One poll thread per adapter: it creates the reply assignments (the only
//    blocking librdkafka calls, each bounded by `setup_timeout`), produces the
//    calls queued behind them, serves producer delivery reports, reads
//    replies and expires attempts at their deadline. It wakes at least every
//    `poll_interval`.
//  - `done` runs on the poll thread, except when dispatch() can answer at once
//    (adapter shut down, bad configuration, producer queue full): then it runs
//    inline on the caller's thread before dispatch() returns. Exactly once per
//    dispatch, until shutdown.
//  - librdkafka's own threads run no usher code: all callbacks are served by
//    polling from the poll thread.
//
// How an attempt ends (docs/semantics.md):
//  - a reply with its usher-correlation-id: kOk / kFailed / kTransient as
//    kafka_reply.h classifies it; a malformed reply (not UTF-8 JSON, too
//    deep, no known status) is kTimeout, the outcome unknown, naming the step
//    (kafka_reply.h says why);
//  - the request never left: the producer refused it at once (local queue
//    full, ...), its reply topic could not be set up, or its delivery report
//    says librdkafka never got it to a broker (RD_KAFKA_MSG_STATUS_NOT_PERSISTED):
//    StepResult::not_sent, "cannot produce to ..." / "delivery failed: ...";
//  - the delivery failed after the request may have reached a broker (timed
//    out in flight, ...): kTimeout "delivery failed, the request may have
//    reached the broker: ...";
//  - nothing by call.timeout: kTimeout "no reply within 5s"; the attempt is
//    forgotten, so memory stays bounded by the attempts in flight.
// Every error and note handed to `done` is valid UTF-8 of at most
// kMaxServiceTextBytes (model/utf8_text.h).
// A reply that matches no waiting attempt (late, duplicate, for another
// engine on the same reply topic, or without the header) is logged at debug
// and dropped.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "kafka/kafka_client.h"
#include "usher/adapter.h"
#include "usher/status.h"

namespace usher {

struct KafkaStepAdapterOptions {
  // librdkafka properties for both the producer and the consumer, e.g.
  // security.protocol, sasl.mechanism, sasl.username, sasl.password,
  // ssl.ca.location (usher.yaml `kafka.properties`). They are applied after
  // the adapter's defaults (linger.ms=1, fetch.wait.max.ms=100, ...) and before
  // the settings the contract requires, which always win: bootstrap.servers
  // (from the service), enable.idempotence=true, acks=all, group.id,
  // enable.auto.commit=false.
  kafka::Properties properties;
  // Used when a service has no `brokers`. Empty: such a call fails (kFailed).
  std::string default_brokers;
  // The reply consumer's group.id; empty: "usher-<host>-<pid>-<random>".
  std::string group_id;
  // Reply topics to assign at the first use of each cluster, before any call
  // needs them; others are assigned when the first call needing one comes.
  std::vector<std::string> reply_topics;
  // Bound on each blocking setup call (metadata, end offsets) of the poll
  // thread. A setup that fails ends the calls waiting for it with
  // StepResult::not_sent (nothing was produced) and is tried again by the
  // next call.
  Millis setup_timeout{5'000};
  // The poll thread's longest sleep: the resolution of attempt deadlines and
  // the delay of delivery reports.
  Millis poll_interval{20};
  // How long shutdown() lets the producer deliver what it holds.
  Millis shutdown_flush{2'000};
};

class KafkaStepAdapter final : public StepAdapter {
 public:
  // Checks `options.properties` (unknown names or bad values are
  // kInvalidArgument) and starts the poll thread. No connection is made until
  // the first dispatch() to a cluster.
  static Result<std::shared_ptr<KafkaStepAdapter>> create(KafkaStepAdapterOptions options = {});
  ~KafkaStepAdapter() override;  // shuts down if not done yet
  KafkaStepAdapter(const KafkaStepAdapter&) = delete;
  KafkaStepAdapter& operator=(const KafkaStepAdapter&) = delete;

  // Sends the attempt (see the header comment). A service without brokers or
  // topic is kFailed with sent=false (configuration no retry can fix); a
  // producer that cannot take the message now (queue full) is
  // StepResult::not_sent.
  void dispatch(StepCall call, StepCallback done) override;

  // Stops the poll thread, lets the producer deliver for up to
  // `shutdown_flush`, closes every client and joins. Attempts still waiting
  // are dropped: their `done` is never called (the engine, which is shutting
  // down too, re-sends them after recovery with the same idempotency keys).
  // dispatch() after shutdown answers StepResult::not_sent "adapter shut
  // down" at once.
  // Idempotent; must not be called from inside `done`.
  void shutdown() override;

  struct Stats {
    uint64_t requests_produced = 0;  // messages handed to the producer
    uint64_t replies_matched = 0;    // replies that ended an attempt
    uint64_t replies_dropped = 0;    // late, duplicate, unknown or header-less replies
    uint64_t timeouts = 0;           // attempts ended by their deadline
    uint64_t delivery_failures = 0;  // requests the producer could not deliver
  };
  Stats stats() const;
  // Attempts waiting for a reply right now.
  size_t pending() const;

  struct Impl;

 private:
  explicit KafkaStepAdapter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace usher
