#include "kafka/kafka_client.h"

#include <unistd.h>

#include <cstdio>
#include <random>

#include <spdlog/spdlog.h>

namespace usher::kafka {
namespace {

// librdkafka's syslog levels to spdlog's, one step down: its errors are
// mostly a broker connection that failed and will be retried (the calls it
// affects end with their own errors), and its debug chatter (7) stays at
// trace so that a debug log of usher is not drowned.
void log_to_spdlog(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
  const char* name = rk ? rd_kafka_name(rk) : "rdkafka";
  spdlog::level::level_enum lvl = spdlog::level::trace;
  if (level <= 4) lvl = spdlog::level::warn;
  else if (level <= 6) lvl = spdlog::level::debug;
  spdlog::log(lvl, "kafka {} {}: {}", name, fac, buf);
}

Status apply(rd_kafka_conf_t* conf, const Properties& props) {
  char err[512];
  for (const auto& [name, value] : props) {
    if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK)
      return Status::invalid_argument("kafka property \"" + name + "\": " + err);
  }
  return Status::ok();
}

}  // namespace

Result<ConfPtr> make_conf(const Properties& defaults, const Properties& user, const Properties& forced) {
  ConfPtr conf(rd_kafka_conf_new());
  rd_kafka_conf_set_log_cb(conf.get(), &log_to_spdlog);
  for (const Properties* layer : {&defaults, &user, &forced})
    if (Status s = apply(conf.get(), *layer); !s) return s;
  return conf;
}

Result<HandlePtr> make_handle(rd_kafka_type_t type, ConfPtr conf) {
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf.get(), err, sizeof err);
  if (!rk) return Status::invalid_argument(std::string("kafka client: ") + err);
  (void)conf.release();  // rd_kafka_new took ownership
  return HandlePtr(rk);
}

std::optional<std::string_view> header(const rd_kafka_message_t* msg, const char* name) {
  rd_kafka_headers_t* hdrs = nullptr;
  // rd_kafka_message_headers takes a non-const message but only reads it.
  if (rd_kafka_message_headers(const_cast<rd_kafka_message_t*>(msg), &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
    return std::nullopt;
  const void* value = nullptr;
  size_t size = 0;
  if (rd_kafka_header_get_last(hdrs, name, &value, &size) != RD_KAFKA_RESP_ERR_NO_ERROR) return std::nullopt;
  if (!value) return std::string_view{};
  return std::string_view(static_cast<const char*>(value), size);
}

std::string_view value_of(const rd_kafka_message_t* msg) {
  if (!msg->payload) return {};
  return {static_cast<const char*>(msg->payload), msg->len};
}

std::string_view key_of(const rd_kafka_message_t* msg) {
  if (!msg->key) return {};
  return {static_cast<const char*>(msg->key), msg->key_len};
}

std::string unique_instance_name(std::string_view prefix) {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "unknown");
  std::random_device rd;
  char suffix[16];
  std::snprintf(suffix, sizeof suffix, "%06x", rd() & 0xffffffu);
  return std::string(prefix) + "-" + host + "-" + std::to_string(getpid()) + "-" + suffix;
}

}  // namespace usher::kafka
