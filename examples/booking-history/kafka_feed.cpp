#include "kafka_feed.h"

#include <librdkafka/rdkafka.h>

#include <cstdio>
#include <stdexcept>
#include <string_view>
#include <thread>

namespace booking_history {

namespace {

void set(rd_kafka_conf_t* conf, const std::string& name, const std::string& value) {
  char err[512];
  if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error("kafka: " + name + "=" + value + ": " + err);
  }
}

}  // namespace

KafkaFeed::KafkaFeed(const KafkaFeedOptions& options) : options_(options) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  set(conf, "bootstrap.servers", options.brokers);
  set(conf, "group.id", options.group_id);
  set(conf, "client.id", "usher-booking-history");
  // Offsets are committed by hand, after the database commit (commit()).
  set(conf, "enable.auto.commit", "false");
  set(conf, "enable.auto.offset.store", "false");
  // A new group reads the topic from its first event: the read model needs all of them.
  set(conf, "auto.offset.reset", "earliest");
  // How --once knows it has read everything.
  set(conf, "enable.partition.eof", "true");
  for (const std::string& p : options.properties) {
    const size_t eq = p.find('=');
    if (eq == std::string::npos || eq == 0) {
      rd_kafka_conf_destroy(conf);
      throw std::runtime_error("--property " + p + ": expected name=value");
    }
    set(conf, p.substr(0, eq), p.substr(eq + 1));
  }
  char err[512];
  rk_ = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (!rk_) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error(std::string("kafka: ") + err);
  }
}

KafkaFeed::~KafkaFeed() {
  if (!rk_) return;
  rd_kafka_consumer_close(rk_);
  rd_kafka_destroy(rk_);
}

void KafkaFeed::assign(const std::atomic<bool>& stop, std::chrono::milliseconds give_up) {
  const auto until = std::chrono::steady_clock::now() + give_up;
  rd_kafka_topic_t* topic = rd_kafka_topic_new(rk_, options_.topic.c_str(), nullptr);
  if (!topic) throw std::runtime_error("kafka: topic " + options_.topic + ": cannot make a handle");
  int partitions = 0;
  std::string why = "not found";
  while (!stop.load()) {
    const rd_kafka_metadata_t* md = nullptr;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk_, 0, topic, &md, 5000);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR) partitions = md->topics[0].partition_cnt;
      else if (md->topic_cnt == 1) why = rd_kafka_err2str(md->topics[0].err);
      rd_kafka_metadata_destroy(md);
    } else {
      why = rd_kafka_err2str(err);
    }
    // The topic appears with usher's first published event: wait for it.
    if (partitions > 0 || std::chrono::steady_clock::now() >= until) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  rd_kafka_topic_destroy(topic);
  if (partitions <= 0) throw std::runtime_error("kafka: topic " + options_.topic + ": " + why);

  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
  for (int32_t p = 0; p < partitions; ++p) {
    rd_kafka_topic_partition_list_add(list, options_.topic.c_str(), p)->offset =
        options_.from_beginning ? RD_KAFKA_OFFSET_BEGINNING : RD_KAFKA_OFFSET_STORED;
    at_end_[p] = false;
  }
  rd_kafka_resp_err_t err = rd_kafka_assign(rk_, list);
  rd_kafka_topic_partition_list_destroy(list);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    throw std::runtime_error(std::string("kafka: assign: ") + rd_kafka_err2str(err));
}

std::vector<nlohmann::json> KafkaFeed::poll(size_t max, std::chrono::milliseconds timeout) {
  std::vector<nlohmann::json> out;
  int wait_ms = static_cast<int>(timeout.count());
  while (out.size() < max) {
    rd_kafka_message_t* msg = rd_kafka_consumer_poll(rk_, wait_ms);
    if (!msg) break;
    wait_ms = 0;  // the first one waited; the rest of the batch is what is already here
    if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      at_end_[msg->partition] = true;
    } else if (msg->err) {
      std::fprintf(stderr, "usher-booking-history: warning: kafka: %s\n", rd_kafka_message_errstr(msg));
    } else {
      at_end_[msg->partition] = false;
      to_commit_[msg->partition] = msg->offset + 1;
      const char* p = static_cast<const char*>(msg->payload);
      const std::string_view value(p ? p : "", p ? msg->len : 0);
      out.push_back(nlohmann::json::parse(value, nullptr, false));
    }
    rd_kafka_message_destroy(msg);
  }
  return out;
}

bool KafkaFeed::drained() const {
  for (const auto& [partition, end] : at_end_)
    if (!end) return false;
  return !at_end_.empty();
}

void KafkaFeed::commit() {
  if (to_commit_.empty()) return;
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(static_cast<int>(to_commit_.size()));
  for (const auto& [partition, offset] : to_commit_)
    rd_kafka_topic_partition_list_add(list, options_.topic.c_str(), partition)->offset = offset;
  rd_kafka_resp_err_t err = rd_kafka_commit(rk_, list, 0);
  rd_kafka_topic_partition_list_destroy(list);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    std::fprintf(stderr, "usher-booking-history: warning: kafka: committing offsets: %s\n", rd_kafka_err2str(err));
  else
    to_commit_.clear();
}

}  // namespace booking_history
