#include "kafka/kafka_feed_sink.h"

#include <atomic>

namespace usher {

namespace {

// The delivery reports of one batch, counted by the callback (on the thread
// that polls, which is publish()'s own).
struct Batch {
  size_t delivered = 0;
  size_t failed = 0;
  std::string first_error;
};

void on_delivery(rd_kafka_t*, const rd_kafka_message_t* msg, void*) {
  auto* batch = static_cast<Batch*>(msg->_private);
  if (!batch) return;
  if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    ++batch->delivered;
  } else {
    if (batch->failed++ == 0) batch->first_error = rd_kafka_err2str(msg->err);
  }
}

}  // namespace

struct KafkaFeedSink::Impl {
  kafka::HandlePtr producer;
  std::atomic<bool> cancelled{false};
};

KafkaFeedSink::KafkaFeedSink(KafkaFeedSinkOptions options)
    : options_(std::move(options)), impl_(std::make_unique<Impl>()) {}

KafkaFeedSink::~KafkaFeedSink() = default;

Result<std::shared_ptr<KafkaFeedSink>> KafkaFeedSink::create(KafkaFeedSinkOptions options) {
  if (options.brokers.empty()) return Status::invalid_argument("publish.kafka: brokers are required");
  if (options.topic.empty()) return Status::invalid_argument("publish.kafka: the topic must not be empty");
  std::shared_ptr<KafkaFeedSink> sink(new KafkaFeedSink(std::move(options)));
  const auto& o = sink->options_;
  // message.timeout.ms is a default, not forced: kafka.properties may set
  // how long a batch waits for the broker before it is tried again.
  auto conf = kafka::make_conf({{"linger.ms", "5"},
                                {"client.id", kafka::unique_instance_name("usher-feed")},
                                {"message.timeout.ms", std::to_string(o.ack_timeout.count())}},
                               o.properties,
                               {{"bootstrap.servers", o.brokers}, {"enable.idempotence", "true"}, {"acks", "all"}});
  if (!conf) return conf.status();
  rd_kafka_conf_set_dr_msg_cb(conf->get(), &on_delivery);
  auto producer = kafka::make_handle(RD_KAFKA_PRODUCER, std::move(*conf));
  if (!producer) return producer.status();
  sink->impl_->producer = std::move(*producer);
  return sink;
}

void KafkaFeedSink::cancel() { impl_->cancelled = true; }

Status KafkaFeedSink::publish(const std::vector<Json>& events) {
  rd_kafka_t* rk = impl_->producer.get();
  if (rd_kafka_resp_err_t fatal = rd_kafka_fatal_error(rk, nullptr, 0); fatal != RD_KAFKA_RESP_ERR_NO_ERROR) {
    // An idempotent producer that lost its guarantees refuses every later
    // message: start a new one (a new producer id), and send the batch again.
    auto again = create(options_);
    if (!again.is_ok()) return again.status();
    impl_->producer = std::move(again.value()->impl_->producer);
    rk = impl_->producer.get();
  }
  Batch batch;
  size_t produced = 0;
  // Every message produced reports once, delivered or failed
  // (message.timeout.ms bounds it; a purged one reports at once), and
  // publish() returns only once all have: no report outlives `batch`.
  auto await_reports = [&](bool purge) {
    while (batch.delivered + batch.failed < produced) {
      if (purge || impl_->cancelled) rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
      rd_kafka_poll(rk, 100);
    }
  };
  for (const Json& e : events) {
    const std::string value = e.dump(-1, ' ', false, Json::error_handler_t::replace);
    const std::string saga = e.value("saga_id", "");
    const std::string seq = std::to_string(e.value("seq", int64_t{0}));
    const std::string type = e.value("type", "");
    for (;;) {
      if (impl_->cancelled) break;
      rd_kafka_resp_err_t err = rd_kafka_producev(
          rk, RD_KAFKA_V_TOPIC(options_.topic.c_str()), RD_KAFKA_V_KEY(saga.data(), saga.size()),
          RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
          RD_KAFKA_V_HEADER("usher-saga-id", saga.data(), static_cast<ssize_t>(saga.size())),
          RD_KAFKA_V_HEADER("usher-seq", seq.data(), static_cast<ssize_t>(seq.size())),
          RD_KAFKA_V_HEADER("usher-type", type.data(), static_cast<ssize_t>(type.size())),
          RD_KAFKA_V_OPAQUE(&batch), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        ++produced;
        break;
      }
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        await_reports(/*purge=*/true);
        return Status::unavailable("cannot produce to \"" + options_.topic + "\": " + rd_kafka_err2str(err));
      }
      rd_kafka_poll(rk, 50);  // make room: delivery reports free the queue
    }
    if (impl_->cancelled) break;
  }
  await_reports(/*purge=*/false);  // cancel() purges what is left
  if (impl_->cancelled) return Status::unavailable("publication to \"" + options_.topic + "\" cancelled");
  if (batch.failed > 0)
    return Status::unavailable(std::to_string(batch.failed) + " of " + std::to_string(events.size()) +
                               " events not acknowledged by the broker of \"" + options_.topic +
                               "\": " + batch.first_error);
  return Status::ok();
}

}  // namespace usher
