// Configuration of `usher serve`: defaults, the YAML config file, and the
// checks on the token file. Flags are applied by serve.cpp on top of what
// load_serve_config() returns, so a flag always wins over the file.
//
// usher.yaml (every key optional):
//   db: usher.db
//   workflows: workflows
//   listen: 127.0.0.1:8080
//   token_file: /etc/usher/token
//   read_token_file: /etc/usher/read-token   # GET routes and /metrics only
//   durability: full            # full | normal
//   log_level: info             # trace | debug | info | warn | error | critical | off
//   log_format: text            # text | json (one JSON object per line, http/api/log_line.h)
//   io_threads: 1               # threads serving the trigger API
//   shutdown_grace: 5s          # on SIGTERM: how long calls in flight may take to answer
//   limits:
//     max_body_bytes: 1048576
//     max_header_bytes: 16384
//     max_connections: 1024
//     max_connections_per_address: 512
//     first_request_timeout: 10s  # a new connection's first request header must be in by then
//     idle_timeout: 60s
//     read_timeout: 30s         # to receive one request once its first byte came
//   http:
//     max_connections_per_service: 64
//   kafka:
//     group_id: …               # the reply consumer's group; default unique per process
//     properties: { … }         # librdkafka properties for steps and the publication
//   publish:                    # the event feed, published (docs/event-feed.md)
//     kafka:
//       brokers: host:9092
//       topic: usher.saga-events
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "usher/definition.h"
#include "usher/options.h"
#include "usher/status.h"

namespace usher::cli {

struct ServeConfig {
  std::string db = "usher.db";
  std::string workflows = "workflows";
  std::string listen = "127.0.0.1:8080";
  std::string token_file;  // empty: no authentication
  // A second token that opens the GET routes and /metrics but no action, for
  // scrapers and dashboards; needs token_file.
  std::string read_token_file;
  Durability durability = Durability::kFull;
  std::string log_level = "info";
  std::string log_format = "text";  // text | json
  unsigned io_threads = 1;
  // On SIGTERM no new attempt is sent; the calls already out have this long
  // to answer, so that their results are logged before the process exits.
  Millis shutdown_grace{5'000};
  size_t max_body_bytes = 1 << 20;
  size_t max_header_bytes = 16 << 10;
  size_t max_connections = 1024;
  size_t max_connections_per_address = 512;
  Millis first_request_timeout{10'000};
  Millis idle_timeout{60'000};
  Millis read_timeout{30'000};
  size_t max_connections_per_service = 64;
  // `kafka:` — librdkafka properties passed through to the Kafka step adapter
  // (security.protocol, sasl.*, ssl.*, ...) and its reply consumer's group.id.
  std::map<std::string, std::string> kafka_properties;
  std::string kafka_group_id;  // empty: unique per process
  // `publish: { kafka: { brokers, topic } }`: the event feed published to a
  // Kafka topic (with kafka_properties); empty brokers: not published.
  std::string publish_kafka_brokers;
  std::string publish_kafka_topic = "usher.saga-events";
};

// Reads `path` over `config`. kInvalidArgument names the file and key:
// "usher.yaml: limits.max_body_bytes: expected a positive integer".
Result<ServeConfig> load_serve_config(const std::string& path, ServeConfig config);

// A duration ("5s", "500ms"), or 0 for no grace.
Result<Millis> parse_shutdown_grace(const std::string& text);

// "full" | "normal".
Result<Durability> parse_durability(const std::string& text);
// One of spdlog's level names.
Status check_log_level(const std::string& text);

struct ListenAddress {
  std::string host;
  uint16_t port = 0;
};
// "HOST:PORT", "[v6]:PORT" or ":PORT" (127.0.0.1); port 0 picks a free port.
Result<ListenAddress> parse_listen(const std::string& text);

// The token alone, surrounding whitespace trimmed. Refuses a file that group
// or others may read (mode & 077), an unreadable file, and an empty token.
Result<std::string> read_token_file(const std::string& path);

}  // namespace usher::cli
