// Small librdkafka helpers shared by the step adapter and the step-service
// helper: owning handles, building a configuration from a property map
// (errors as Status, not as a failed rd_kafka_new later), reading a header,
// and routing librdkafka's own log lines to spdlog.
#pragma once

#include <librdkafka/rdkafka.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "usher/status.h"

namespace usher::kafka {

// librdkafka properties by name ("security.protocol" -> "SASL_SSL"), passed
// through unchanged. std::map so they are applied in a stable order.
using Properties = std::map<std::string, std::string>;

struct HandleDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
struct ConfDeleter {
  void operator()(rd_kafka_conf_t* c) const { rd_kafka_conf_destroy(c); }
};
struct QueueDeleter {
  void operator()(rd_kafka_queue_t* q) const { rd_kafka_queue_destroy(q); }
};
struct MessageDeleter {
  void operator()(rd_kafka_message_t* m) const { rd_kafka_message_destroy(m); }
};
struct PartitionListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* l) const { rd_kafka_topic_partition_list_destroy(l); }
};
using HandlePtr = std::unique_ptr<rd_kafka_t, HandleDeleter>;
using ConfPtr = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;
using QueuePtr = std::unique_ptr<rd_kafka_queue_t, QueueDeleter>;
using MessagePtr = std::unique_ptr<rd_kafka_message_t, MessageDeleter>;
using PartitionListPtr = std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDeleter>;

// A configuration built in three layers, each overriding the one before:
// the caller's `defaults`, the user's pass-through `user` properties, and the
// `forced` settings a contract requires. Every problem (unknown property, bad
// value) is kInvalidArgument naming the property. librdkafka's log lines go
// to spdlog (its debug lines at trace level).
Result<ConfPtr> make_conf(const Properties& defaults, const Properties& user = {},
                          const Properties& forced = {});

// rd_kafka_new for `type`; on success the handle owns `conf`, on failure
// `conf` is destroyed too. kInvalidArgument with librdkafka's reason.
Result<HandlePtr> make_handle(rd_kafka_type_t type, ConfPtr conf);

// The last value of header `name`, or nullopt when the message has none.
std::optional<std::string_view> header(const rd_kafka_message_t* msg, const char* name);

// The message value / key as text (empty for null).
std::string_view value_of(const rd_kafka_message_t* msg);
std::string_view key_of(const rd_kafka_message_t* msg);

// "usher-<hostname>-<pid>-<random>": a name no other process uses, for the
// adapter's consumer group and client ids.
std::string unique_instance_name(std::string_view prefix);

}  // namespace usher::kafka
