#include "services/kafka_step_service.h"

#include <charconv>
#include <exception>

#include <spdlog/spdlog.h>

#include "kafka/kafka_reply.h"

namespace usher {

namespace wire = kafka_wire;

std::string KafkaStepReply::encode() const {
  switch (status) {
    case Status::kOk: return wire::ok_reply(output);
    case Status::kFailed: return wire::failed_reply(error);
    case Status::kRetry: return wire::retry_reply(error);
  }
  return wire::retry_reply("unknown reply status");
}

namespace {

void error_cb(rd_kafka_t* rk, int err, const char* reason, void*) {
  // The log callback has already reported it as a warning.
  spdlog::debug("kafka {}: {}: {}", rd_kafka_name(rk), rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)),
                reason);
}

void delivery_cb(rd_kafka_t*, const rd_kafka_message_t* msg, void*) {
  // usher times the attempt out and sends it again; the handler will see
  // the same idempotency key then.
  if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR)
    spdlog::warn("kafka step service: reply not delivered: {}", rd_kafka_err2str(msg->err));
}

}  // namespace

KafkaStepService::KafkaStepService(KafkaStepServiceOptions options, KafkaStepHandler handler)
    : options_(std::move(options)), handler_(std::move(handler)) {}

Result<std::unique_ptr<KafkaStepService>> KafkaStepService::create(KafkaStepServiceOptions options,
                                                                   KafkaStepHandler handler) {
  if (options.brokers.empty()) return Status::invalid_argument("kafka step service: no brokers");
  if (options.topics.empty()) return Status::invalid_argument("kafka step service: no request topic");
  if (!handler) return Status::invalid_argument("kafka step service: no handler");
  if (options.group_id.empty()) options.group_id = "usher-service-" + options.topics.front();

  auto pconf = kafka::make_conf({{"linger.ms", "1"}}, options.properties,
                                {{"bootstrap.servers", options.brokers},
                                 {"enable.idempotence", "true"},
                                 {"acks", "all"}});
  if (!pconf) return pconf.status();
  rd_kafka_conf_set_dr_msg_cb(pconf->get(), &delivery_cb);
  rd_kafka_conf_set_error_cb(pconf->get(), &error_cb);
  auto producer = kafka::make_handle(RD_KAFKA_PRODUCER, std::move(*pconf));
  if (!producer) return producer.status();

  auto cconf = kafka::make_conf({{"auto.offset.reset", "earliest"}, {"fetch.wait.max.ms", "100"}},
                                options.properties,
                                {{"bootstrap.servers", options.brokers},
                                 {"group.id", options.group_id},
                                 {"enable.auto.commit", "true"},
                                 {"enable.auto.offset.store", "false"}});
  if (!cconf) return cconf.status();
  rd_kafka_conf_set_error_cb(cconf->get(), &error_cb);
  auto consumer = kafka::make_handle(RD_KAFKA_CONSUMER, std::move(*cconf));
  if (!consumer) return consumer.status();
  rd_kafka_poll_set_consumer(consumer->get());

  std::unique_ptr<KafkaStepService> service(new KafkaStepService(std::move(options), std::move(handler)));
  service->producer_ = std::move(*producer);
  for (const auto& t : service->options_.reply_topics)
    if (rd_kafka_topic_t* rkt = rd_kafka_topic_new(service->producer_.get(), t.c_str(), nullptr))
      service->reply_topics_.push_back(rkt);
  service->consumer_ = std::move(*consumer);
  return service;
}

KafkaStepService::~KafkaStepService() { stop(); }

Status KafkaStepService::start() {
  if (started_) return Status::failed_precondition("kafka step service: already started");
  kafka::PartitionListPtr topics(rd_kafka_topic_partition_list_new(static_cast<int>(options_.topics.size())));
  for (const auto& t : options_.topics)
    rd_kafka_topic_partition_list_add(topics.get(), t.c_str(), RD_KAFKA_PARTITION_UA);
  if (rd_kafka_resp_err_t err = rd_kafka_subscribe(consumer_.get(), topics.get()); err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return Status::unavailable(std::string("kafka step service: subscribe: ") + rd_kafka_err2str(err));
  started_ = true;
  thread_ = std::thread([this] { run(); });
  return Status::ok();
}

void KafkaStepService::stop() {
  if (stopped_) return;
  stopped_ = true;
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (rd_kafka_flush(producer_.get(), static_cast<int>(options_.shutdown_flush.count())) != RD_KAFKA_RESP_ERR_NO_ERROR)
    spdlog::warn("kafka step service: replies still undelivered at stop, dropped");
  for (rd_kafka_topic_t* rkt : reply_topics_) rd_kafka_topic_destroy(rkt);
  reply_topics_.clear();
  if (started_) {
    // Commits the stored offsets and leaves the group, so another member
    // takes the partitions over at once instead of after a session timeout.
    rd_kafka_consumer_close(consumer_.get());
  }
}

void KafkaStepService::run() {
  while (!stop_) {
    rd_kafka_poll(producer_.get(), 0);  // delivery reports
    kafka::MessagePtr msg(rd_kafka_consumer_poll(consumer_.get(), static_cast<int>(options_.poll_interval.count())));
    if (!msg) continue;
    if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      spdlog::debug("kafka step service: {}", rd_kafka_message_errstr(msg.get()));
      continue;
    }
    handle(msg.get());
    // The reply (if any) is with the producer now: the request counts as
    // done, and its offset may be committed.
    rd_kafka_offset_store(msg->rkt, msg->partition, msg->offset);
    handled_.fetch_add(1);
  }
}

void KafkaStepService::handle(const rd_kafka_message_t* msg) {
  KafkaStepRequest req;
  req.topic = rd_kafka_topic_name(msg->rkt);
  req.partition = msg->partition;
  req.offset = msg->offset;
  req.key = std::string(kafka::key_of(msg));
  rd_kafka_headers_t* hdrs = nullptr;
  if (rd_kafka_message_headers(const_cast<rd_kafka_message_t*>(msg), &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    const char* name = nullptr;
    const void* value = nullptr;
    size_t size = 0;
    for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i)
      req.headers[name] = value ? std::string(static_cast<const char*>(value), size) : std::string();
  }
  auto get = [&](const char* name) {
    auto it = req.headers.find(name);
    return it == req.headers.end() ? std::string() : it->second;
  };
  req.saga_id = get(wire::kSagaId);
  req.step = get(wire::kStep);
  req.operation = get(wire::kOperation);
  req.kind = get(wire::kKind);
  req.correlation_id = get(wire::kCorrelationId);
  req.reply_to = get(wire::kReplyTo);
  req.idempotency_key = get(wire::kIdempotencyKey);
  const std::string attempt = get(wire::kAttempt);
  std::from_chars(attempt.data(), attempt.data() + attempt.size(), req.attempt);

  if (req.correlation_id.empty() || req.reply_to.empty()) {
    spdlog::warn("kafka step service: request at {} [{}] @{} has no {} or {}: skipped", req.topic,
                 req.partition, req.offset, wire::kCorrelationId, wire::kReplyTo);
    return;
  }
  const std::string_view value = kafka::value_of(msg);
  req.body = value.empty() ? Json::object()
                           : Json::parse(value.begin(), value.end(), nullptr, /*allow_exceptions=*/false);
  std::optional<KafkaStepReply> reply;
  if (req.body.is_discarded()) {
    reply = KafkaStepReply::failed("request value is not JSON: " + wire::excerpt(value));
  } else {
    try {
      reply = handler_(req);
    } catch (const std::exception& e) {
      reply = KafkaStepReply::retry(std::string("handler threw: ") + e.what());
    } catch (...) {
      reply = KafkaStepReply::retry("handler threw");
    }
  }
  if (!reply) return;
  if (Status s = this->reply(req, *reply); !s) spdlog::warn("kafka step service: {}", s.message());
}

size_t KafkaStepService::assigned_partitions() const {
  rd_kafka_topic_partition_list_t* list = nullptr;
  if (rd_kafka_assignment(consumer_.get(), &list) != RD_KAFKA_RESP_ERR_NO_ERROR || !list) return 0;
  kafka::PartitionListPtr owner(list);
  return static_cast<size_t>(list->cnt);
}

Status KafkaStepService::reply(const KafkaStepRequest& request, const KafkaStepReply& reply) {
  return reply_raw(request, reply.encode());
}

Status KafkaStepService::reply_raw(const KafkaStepRequest& request, std::string_view value) {
  rd_kafka_headers_t* hdrs = rd_kafka_headers_new(5);
  auto add = [&](const char* name, const std::string& v) { rd_kafka_header_add(hdrs, name, -1, v.data(), v.size()); };
  add(wire::kCorrelationId, request.correlation_id);
  add(wire::kSagaId, request.saga_id);
  add(wire::kStep, request.step);
  add(wire::kKind, request.kind);
  add(wire::kAttempt, std::to_string(request.attempt));
  rd_kafka_resp_err_t err = rd_kafka_producev(
      producer_.get(), RD_KAFKA_V_TOPIC(request.reply_to.c_str()),
      RD_KAFKA_V_KEY(request.saga_id.data(), request.saga_id.size()),
      RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_headers_destroy(hdrs);
    return Status::unavailable("reply to " + request.reply_to + ": " + rd_kafka_err2str(err));
  }
  return Status::ok();
}

}  // namespace usher
