#include "kafka/kafka_step_adapter.h"

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <unordered_map>
#include <utility>

#include <spdlog/spdlog.h>

#include "kafka/kafka_reply.h"
#include "usher/duration.h"
#include "usher/service_text.h"

namespace usher {

using Clock = std::chrono::steady_clock;
namespace wire = kafka_wire;

namespace {

// One request, rendered in dispatch() so that the poll thread, when it has to
// produce it later, does no JSON work and needs no StepCall.
struct Request {
  std::string topic;
  std::string key;    // saga id
  std::string value;  // the rendered `with`
  std::vector<std::pair<const char*, std::string>> headers;
  std::string correlation_id;
  std::function<bool()> may_send;  // StepCall::may_send, asked when produced later
};

// Hands `r` to `done` with its texts as they may be stored: valid UTF-8 of
// at most kMaxServiceTextBytes, whatever librdkafka, a topic name or a
// service put in them (replies are already so, see kafka_reply.h).
void answer(StepCallback& done, StepResult r) {
  r.error = valid_utf8(r.error);
  r.note = valid_utf8(r.note);
  done(std::move(r));
}

// A configuration error no retry can fix, found before anything was produced.
StepResult failed_unsent(std::string error) {
  StepResult r = StepResult::failed(std::move(error));
  r.sent = false;
  return r;
}

}  // namespace

struct KafkaStepAdapter::Impl {
  using Deadlines = std::multimap<Clock::time_point, std::string>;

  struct Pending {
    StepCallback done;
    std::string label;  // step_label(), for errors
    Millis timeout;
    Deadlines::iterator deadline;
  };

  // One cluster (distinct bootstrap servers): its producer, its reply
  // consumer and the state of its reply topics. Created by dispatch(),
  // destroyed only by shutdown() after the poll thread has stopped, so raw
  // pointers to it stay valid while the adapter runs.
  struct Cluster {
    std::string brokers;
    kafka::HandlePtr producer;
    kafka::HandlePtr consumer;
    kafka::QueuePtr replies;  // the consumer's queue, polled by the poll thread
    // Guarded by Impl::mu_:
    // Request topics by name, created when first seen: creating the handle
    // at once starts the topic's metadata lookup, whereas a topic that
    // rd_kafka_producev meets for the first time on an idle producer waits
    // for librdkafka's 1 s metadata timer.
    std::map<std::string, rd_kafka_topic_t*> topics;
    std::map<std::string, bool> ready;  // reply topic -> assigned
    std::map<std::string, std::vector<Request>> waiting;  // reply topic -> requests produced once it is ready
  };

  KafkaStepAdapterOptions options;
  std::string nonce_prefix;  // random per adapter: correlation ids of two engines never collide
  std::atomic<uint64_t> next_nonce{0};

  mutable std::mutex mu_;
  std::condition_variable wake_;  // the poll thread's sleep while no cluster exists
  bool stopped_ = false;
  std::map<std::string, std::unique_ptr<Cluster>> clusters_;  // by brokers
  std::unordered_map<std::string, Pending> pending_;           // by correlation id
  Deadlines deadlines_;
  std::thread poll_thread_;

  std::atomic<uint64_t> produced_{0}, matched_{0}, dropped_{0}, timeouts_{0}, delivery_failures_{0};

  // ---- dispatch side --------------------------------------------------------

  Result<Cluster*> cluster_locked(const std::string& brokers);
  // Hands `req` to the producer. Called with mu_ held, so shutdown cannot
  // destroy the producer meanwhile; rd_kafka_producev does not block (no
  // RD_KAFKA_MSG_F_BLOCK) and runs no callback.
  rd_kafka_resp_err_t produce_locked(Cluster& c, const Request& req);
  std::optional<Pending> take_locked(const std::string& correlation_id);
  // The producer's handle of a request topic, created at first use; null
  // when librdkafka refuses the name.
  rd_kafka_topic_t* topic_locked(Cluster& c, const std::string& topic);

  // ---- poll thread ----------------------------------------------------------

  void run();
  void setup_topics(Cluster& c);
  Status assign_reply_topic(Cluster& c, const std::string& topic);
  void on_reply(const rd_kafka_message_t* msg);
  void on_delivery(const rd_kafka_message_t* msg);
  void expire();

  static void delivery_cb(rd_kafka_t*, const rd_kafka_message_t* msg, void* opaque) {
    static_cast<Impl*>(opaque)->on_delivery(msg);
  }
  static void error_cb(rd_kafka_t* rk, int err, const char* reason, void*) {
    char fatal[512];
    if (err == RD_KAFKA_RESP_ERR__FATAL &&
        rd_kafka_fatal_error(rk, fatal, sizeof fatal) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      // An idempotent producer that lost its guarantees refuses every later
      // message; each then ends kTransient, so the engine retries and finally
      // compensates, and an operator restarts usher.
      spdlog::error("kafka {}: fatal error, restart usher: {}", rd_kafka_name(rk), fatal);
      return;
    }
    // The log callback has already reported it as a warning.
    spdlog::debug("kafka {}: {}: {}", rd_kafka_name(rk), rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)),
                  reason);
  }
};

// ---- construction ----------------------------------------------------------

Result<std::shared_ptr<KafkaStepAdapter>> KafkaStepAdapter::create(KafkaStepAdapterOptions options) {
  // Check the pass-through properties now, where the error reaches whoever
  // configured them, rather than at the first call of some saga.
  if (auto conf = kafka::make_conf(options.properties); !conf) return conf.status();
  auto impl = std::make_unique<Impl>();
  if (options.group_id.empty()) options.group_id = kafka::unique_instance_name("usher");
  impl->options = std::move(options);
  std::random_device rd;
  char prefix[24];
  std::snprintf(prefix, sizeof prefix, "%08x%08x", rd(), rd());
  impl->nonce_prefix = prefix;
  impl->poll_thread_ = std::thread([p = impl.get()] { p->run(); });
  return std::shared_ptr<KafkaStepAdapter>(new KafkaStepAdapter(std::move(impl)));
}

KafkaStepAdapter::KafkaStepAdapter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

KafkaStepAdapter::~KafkaStepAdapter() { shutdown(); }

Result<KafkaStepAdapter::Impl::Cluster*> KafkaStepAdapter::Impl::cluster_locked(const std::string& brokers) {
  if (auto it = clusters_.find(brokers); it != clusters_.end()) return it->second.get();

  auto c = std::make_unique<Cluster>();
  c->brokers = brokers;
  // rd_kafka_new starts librdkafka's threads and returns; connecting happens
  // in the background, so creating a cluster here does not block dispatch().
  auto pconf = kafka::make_conf({{"linger.ms", "1"}, {"client.id", options.group_id}}, options.properties,
                                {{"bootstrap.servers", brokers}, {"enable.idempotence", "true"}, {"acks", "all"}});
  if (!pconf) return pconf.status();
  rd_kafka_conf_set_opaque(pconf->get(), this);
  rd_kafka_conf_set_dr_msg_cb(pconf->get(), &Impl::delivery_cb);
  rd_kafka_conf_set_error_cb(pconf->get(), &Impl::error_cb);
  auto producer = kafka::make_handle(RD_KAFKA_PRODUCER, std::move(*pconf));
  if (!producer) return producer.status();

  auto cconf = kafka::make_conf({{"fetch.wait.max.ms", "100"}, {"client.id", options.group_id}},
                                options.properties,
                                {{"bootstrap.servers", brokers},
                                 {"group.id", options.group_id},
                                 {"enable.auto.commit", "false"},
                                 {"enable.auto.offset.store", "false"},
                                 {"enable.partition.eof", "false"}});
  if (!cconf) return cconf.status();
  rd_kafka_conf_set_error_cb(cconf->get(), &Impl::error_cb);
  auto consumer = kafka::make_handle(RD_KAFKA_CONSUMER, std::move(*cconf));
  if (!consumer) return consumer.status();
  // Every event of the consumer (messages, errors, logs) on one queue that
  // the poll thread reads and that rd_kafka_queue_yield() can wake.
  rd_kafka_poll_set_consumer(consumer->get());
  c->replies.reset(rd_kafka_queue_get_consumer(consumer->get()));
  c->producer = std::move(*producer);
  c->consumer = std::move(*consumer);
  for (const auto& topic : options.reply_topics) c->waiting[topic];

  Cluster* raw = c.get();
  clusters_.emplace(brokers, std::move(c));
  wake_.notify_all();
  return raw;
}

// ---- dispatch --------------------------------------------------------------

void KafkaStepAdapter::dispatch(StepCall call, StepCallback done) {
  Impl& d = *impl_;
  const std::string label = wire::step_label(call);
  const std::string& brokers = call.service.brokers.empty() ? d.options.default_brokers : call.service.brokers;
  if (brokers.empty()) {
    answer(done, failed_unsent(label + ": service \"" + call.service.name + "\" has no kafka brokers"));
    return;
  }
  if (call.service.topic.empty()) {
    answer(done, failed_unsent(label + ": service \"" + call.service.name + "\" has no kafka topic"));
    return;
  }
  const std::string reply_topic =
      call.service.reply_topic.empty() ? std::string(wire::kDefaultReplyTopic) : call.service.reply_topic;

  Request req;
  req.topic = call.service.topic;
  req.key = call.saga_id;
  req.value = call.body.dump(-1, ' ', false, Json::error_handler_t::replace);
  req.correlation_id =
      wire::correlation_id(call, d.nonce_prefix + "-" + std::to_string(d.next_nonce.fetch_add(1)));
  req.headers = {{wire::kSagaId, call.saga_id},
                 {wire::kStep, call.step},
                 {wire::kOperation, call.operation},
                 {wire::kKind, call_kind_name(call.kind)},
                 {wire::kAttempt, std::to_string(call.attempt)},
                 {wire::kCorrelationId, req.correlation_id},
                 {wire::kReplyTo, reply_topic},
                 {wire::kIdempotencyKey, call.idempotency_key}};
  if (call.node != 0) req.headers.emplace_back(wire::kNode, std::to_string(call.node));
  req.may_send = std::move(call.may_send);

  std::optional<StepResult> now;  // an answer known at once, given after unlocking
  {
    std::lock_guard lock(d.mu_);
    if (d.stopped_) {
      now = StepResult::not_sent(label + ": adapter shut down");
    } else if (auto cluster = d.cluster_locked(brokers); !cluster) {
      now = failed_unsent(label + ": " + cluster.status().message());
    } else if (!d.topic_locked(**cluster, req.topic)) {
      now = failed_unsent(label + ": topic \"" + req.topic + "\": " + rd_kafka_err2str(rd_kafka_last_error()));
    } else {
      Impl::Cluster& c = **cluster;
      auto deadline = d.deadlines_.emplace(Clock::now() + call.timeout, req.correlation_id);
      d.pending_.emplace(req.correlation_id, Impl::Pending{std::move(done), label, call.timeout, deadline});
      if (auto it = c.ready.find(reply_topic); it != c.ready.end() && it->second) {
        if (rd_kafka_resp_err_t err = d.produce_locked(c, req); err != RD_KAFKA_RESP_ERR_NO_ERROR) {
          // Refused at once (local queue full, ...): the message never left.
          auto p = d.take_locked(req.correlation_id);
          done = std::move(p->done);
          now = StepResult::not_sent(label + ": cannot produce to \"" + req.topic + "\": " + rd_kafka_err2str(err));
        }
      } else {
        c.waiting[reply_topic].push_back(std::move(req));
        rd_kafka_queue_yield(c.replies.get());
      }
    }
  }
  if (now) answer(done, std::move(*now));
}

rd_kafka_resp_err_t KafkaStepAdapter::Impl::produce_locked(Cluster& c, const Request& req) {
  rd_kafka_headers_t* hdrs = rd_kafka_headers_new(req.headers.size());
  for (const auto& [name, value] : req.headers) rd_kafka_header_add(hdrs, name, -1, value.data(), value.size());
  rd_kafka_resp_err_t err = rd_kafka_producev(
      c.producer.get(), RD_KAFKA_V_RKT(c.topics.at(req.topic)),
      RD_KAFKA_V_KEY(req.key.data(), req.key.size()),
      RD_KAFKA_V_VALUE(const_cast<char*>(req.value.data()), req.value.size()),
      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
  // On success the message owns the headers; on failure they are still ours.
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) rd_kafka_headers_destroy(hdrs);
  else produced_.fetch_add(1, std::memory_order_relaxed);
  return err;
}

rd_kafka_topic_t* KafkaStepAdapter::Impl::topic_locked(Cluster& c, const std::string& topic) {
  if (auto it = c.topics.find(topic); it != c.topics.end()) return it->second;
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(c.producer.get(), topic.c_str(), nullptr);
  if (rkt) c.topics.emplace(topic, rkt);
  return rkt;
}

std::optional<KafkaStepAdapter::Impl::Pending> KafkaStepAdapter::Impl::take_locked(const std::string& id) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return std::nullopt;
  Pending p = std::move(it->second);
  pending_.erase(it);
  deadlines_.erase(p.deadline);
  return p;
}

// ---- poll thread -----------------------------------------------------------

void KafkaStepAdapter::Impl::run() {
  std::vector<rd_kafka_message_t*> batch(64);
  for (;;) {
    std::vector<Cluster*> clusters;
    {
      std::unique_lock lock(mu_);
      if (clusters_.empty()) {
        wake_.wait_for(lock, options.poll_interval, [&] { return stopped_ || !clusters_.empty(); });
      }
      if (stopped_) return;
      for (auto& [_, c] : clusters_) clusters.push_back(c.get());
    }
    for (Cluster* c : clusters) {
      setup_topics(*c);
      rd_kafka_poll(c->producer.get(), 0);  // delivery reports, errors, logs
      const int wait_ms = static_cast<int>(options.poll_interval.count() / static_cast<long>(clusters.size()));
      ssize_t n = rd_kafka_consume_batch_queue(c->replies.get(), wait_ms, batch.data(), batch.size());
      for (ssize_t i = 0; i < n; ++i) {
        kafka::MessagePtr msg(batch[i]);
        if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
          on_reply(msg.get());
        } else {
          spdlog::debug("kafka reply consumer: {}", rd_kafka_message_errstr(msg.get()));
        }
      }
    }
    expire();
  }
}

void KafkaStepAdapter::Impl::setup_topics(Cluster& c) {
  std::vector<std::string> todo;
  {
    std::lock_guard lock(mu_);
    for (const auto& [topic, _] : c.waiting)
      if (!c.ready[topic]) todo.push_back(topic);
  }
  for (const std::string& topic : todo) {
    Status s = assign_reply_topic(c, topic);  // blocking, bounded, without the lock
    std::vector<std::pair<StepCallback, StepResult>> answers;
    {
      std::lock_guard lock(mu_);
      if (stopped_) return;
      std::vector<Request> reqs = std::move(c.waiting[topic]);
      c.waiting.erase(topic);
      if (s) c.ready[topic] = true;
      for (const Request& req : reqs) {
        if (!pending_.contains(req.correlation_id)) continue;  // expired meanwhile
        // Held while the reply topic was set up: the node may have lost its
        // lease meanwhile (adapter.h, StepCall::may_send).
        const bool allowed = !req.may_send || req.may_send();
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
        if (s && allowed && (err = produce_locked(c, req)) == RD_KAFKA_RESP_ERR_NO_ERROR) continue;
        auto p = take_locked(req.correlation_id);
        std::string why = !s        ? s.message()
                          : !allowed ? std::string("this node is not sure it still holds its lease")
                                     : "cannot produce to \"" + req.topic + "\": " + rd_kafka_err2str(err);
        // Either way the request was never handed to the producer.
        answers.emplace_back(std::move(p->done), StepResult::not_sent(p->label + ": " + why));
      }
    }
    if (!s) spdlog::warn("kafka {}: {}", c.brokers, s.message());
    for (auto& [done, result] : answers) answer(done, std::move(result));
  }
}

Status KafkaStepAdapter::Impl::assign_reply_topic(Cluster& c, const std::string& topic) {
  const int timeout_ms = static_cast<int>(options.setup_timeout.count());
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(c.consumer.get(), topic.c_str(), nullptr);
  if (!rkt) return Status::unavailable("reply topic \"" + topic + "\": " + rd_kafka_err2str(rd_kafka_last_error()));
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(c.consumer.get(), 0, rkt, &md, timeout_ms);
  rd_kafka_topic_destroy(rkt);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return Status::unavailable("reply topic \"" + topic + "\": metadata: " + rd_kafka_err2str(err));
  std::unique_ptr<const rd_kafka_metadata_t, decltype(&rd_kafka_metadata_destroy)> md_owner(md, &rd_kafka_metadata_destroy);
  if (md->topic_cnt != 1 || md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR || md->topics[0].partition_cnt == 0) {
    const char* why = md->topic_cnt == 1 ? rd_kafka_err2str(md->topics[0].err) : "not in metadata";
    return Status::unavailable("reply topic \"" + topic + "\" is not available: " + why);
  }

  // Start each partition at its end offset as of now, read before any request
  // that this topic will answer is produced: every reply is after it.
  kafka::PartitionListPtr list(rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt));
  for (int i = 0; i < md->topics[0].partition_cnt; ++i) {
    const int32_t partition = md->topics[0].partitions[i].id;
    int64_t low = 0, high = 0;
    err = rd_kafka_query_watermark_offsets(c.consumer.get(), topic.c_str(), partition, &low, &high, timeout_ms);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
      return Status::unavailable("reply topic \"" + topic + "\" partition " + std::to_string(partition) +
                                 ": end offset: " + rd_kafka_err2str(err));
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), partition)->offset = high;
  }
  if (rd_kafka_error_t* e = rd_kafka_incremental_assign(c.consumer.get(), list.get())) {
    std::string why = rd_kafka_error_string(e);
    rd_kafka_error_destroy(e);
    return Status::unavailable("reply topic \"" + topic + "\": assign: " + why);
  }
  spdlog::debug("kafka {}: reading replies on \"{}\" ({} partitions)", c.brokers, topic, list->cnt);
  return Status::ok();
}

void KafkaStepAdapter::Impl::on_reply(const rd_kafka_message_t* msg) {
  auto id = kafka::header(msg, wire::kCorrelationId);
  if (!id) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    spdlog::debug("kafka reply without {} on {} [{}] @{} dropped", wire::kCorrelationId,
                  rd_kafka_topic_name(msg->rkt), msg->partition, msg->offset);
    return;
  }
  std::optional<Pending> p;
  {
    std::lock_guard lock(mu_);
    p = take_locked(std::string(*id));
  }
  if (!p) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    spdlog::debug("kafka reply {} matches no waiting attempt (late, duplicate or not ours): dropped",
                  wire::excerpt(*id, 200));
    return;
  }
  matched_.fetch_add(1, std::memory_order_relaxed);
  answer(p->done, wire::parse_reply(kafka::value_of(msg), p->label));
}

void KafkaStepAdapter::Impl::on_delivery(const rd_kafka_message_t* msg) {
  if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) return;
  delivery_failures_.fetch_add(1, std::memory_order_relaxed);
  auto id = kafka::header(msg, wire::kCorrelationId);
  std::optional<Pending> p;
  if (id) {
    std::lock_guard lock(mu_);
    p = take_locked(std::string(*id));
  }
  // Whether the broker may have the request decides what the attempt was:
  // librdkafka knows when a message was never sent to a broker, or was
  // refused by it (NOT_PERSISTED); otherwise (timed out in flight, connection
  // lost before the acknowledgement) it may be in the topic, and the service
  // may act on it.
  const rd_kafka_msg_status_t status = rd_kafka_message_status(msg);
  spdlog::debug("kafka request {} not delivered ({}): {}", id ? *id : "?",
                status == RD_KAFKA_MSG_STATUS_NOT_PERSISTED ? "not persisted" : "possibly persisted",
                rd_kafka_err2str(msg->err));
  if (!p) return;
  if (status == RD_KAFKA_MSG_STATUS_NOT_PERSISTED) {
    answer(p->done, StepResult::not_sent(p->label + ": delivery failed: " + rd_kafka_err2str(msg->err)));
  } else {
    answer(p->done, StepResult::timeout(p->label + ": delivery failed, the request may have reached the broker: " +
                                        rd_kafka_err2str(msg->err)));
  }
}

void KafkaStepAdapter::Impl::expire() {
  std::vector<Pending> expired;
  {
    std::lock_guard lock(mu_);
    const auto now = Clock::now();
    while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
      std::string id = deadlines_.begin()->second;
      if (auto p = take_locked(id)) {
        expired.push_back(std::move(*p));
      } else {
        deadlines_.erase(deadlines_.begin());  // cannot happen: both are erased together
      }
    }
  }
  for (Pending& p : expired) {
    timeouts_.fetch_add(1, std::memory_order_relaxed);
    answer(p.done, StepResult::timeout(p.label + ": no reply within " + format_duration(p.timeout)));
  }
}

// ---- shutdown and stats ----------------------------------------------------

void KafkaStepAdapter::shutdown() {
  Impl& d = *impl_;
  std::map<std::string, std::unique_ptr<Impl::Cluster>> clusters;
  {
    std::lock_guard lock(d.mu_);
    if (d.stopped_) return;
    d.stopped_ = true;
    for (auto& [_, c] : d.clusters_) rd_kafka_queue_yield(c->replies.get());
    d.wake_.notify_all();
  }
  if (d.poll_thread_.joinable()) d.poll_thread_.join();
  {
    std::lock_guard lock(d.mu_);
    // Dropped, as documented: the engine is going away too.
    d.pending_.clear();
    d.deadlines_.clear();
    clusters = std::move(d.clusters_);
  }
  for (auto& [brokers, c] : clusters) {
    if (rd_kafka_flush(c->producer.get(), static_cast<int>(d.options.shutdown_flush.count())) != RD_KAFKA_RESP_ERR_NO_ERROR)
      spdlog::warn("kafka {}: requests still undelivered at shutdown, dropped", brokers);
    for (auto& [_, rkt] : c->topics) rd_kafka_topic_destroy(rkt);
    c->replies.reset();  // a queue must go before its handle
    rd_kafka_consumer_close(c->consumer.get());
    c->consumer.reset();
    c->producer.reset();
  }
}

KafkaStepAdapter::Stats KafkaStepAdapter::stats() const {
  const Impl& d = *impl_;
  return {d.produced_.load(), d.matched_.load(), d.dropped_.load(), d.timeouts_.load(), d.delivery_failures_.load()};
}

size_t KafkaStepAdapter::pending() const {
  std::lock_guard lock(impl_->mu_);
  return impl_->pending_.size();
}

}  // namespace usher
