#include "serve_config.h"

#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <tuple>

#include "http/api/log_line.h"
#include "usher/duration.h"
#include "usher/url.h"
#include "usher/yaml_json.h"

namespace usher::cli {

namespace {

Status bad(const std::string& file, const std::string& key, const std::string& what) {
  return Status::invalid_argument(file + ": " + key + ": " + what);
}

Status read_string(const std::string& file, const Json& obj, const char* key, const std::string& prefix,
                   std::string& out) {
  if (!obj.contains(key)) return Status::ok();
  const Json& v = obj[key];
  if (!v.is_string() || v.get<std::string>().empty()) return bad(file, prefix + key, "expected a non-empty string");
  out = v.get<std::string>();
  return Status::ok();
}

template <typename T>
Status read_count(const std::string& file, const Json& obj, const char* key, const std::string& prefix, T& out) {
  if (!obj.contains(key)) return Status::ok();
  const Json& v = obj[key];
  if (!v.is_number_integer() || v.get<int64_t>() < 1) return bad(file, prefix + key, "expected a positive integer");
  out = static_cast<T>(v.get<int64_t>());
  return Status::ok();
}

Status only_keys(const std::string& file, const Json& obj, const std::string& prefix,
                 std::initializer_list<const char*> keys) {
  for (const auto& [k, v] : obj.items()) {
    bool known = false;
    for (const char* allowed : keys) known = known || k == allowed;
    if (!known) {
      std::string list;
      for (const char* allowed : keys) list += std::string(list.empty() ? "" : ", ") + allowed;
      return bad(file, prefix + k, "unknown key (expected one of: " + list + ")");
    }
  }
  return Status::ok();
}

}  // namespace

Result<Durability> parse_durability(const std::string& text) {
  if (text == "full") return Durability::kFull;
  if (text == "normal") return Durability::kNormal;
  return Status::invalid_argument("durability must be full or normal, not \"" + text + "\"");
}

Status check_log_level(const std::string& text) {
  for (const char* l : {"trace", "debug", "info", "warn", "error", "critical", "off"})
    if (text == l) return Status::ok();
  return Status::invalid_argument("log level must be trace, debug, info, warn, error, critical or off, not \"" +
                                  text + "\"");
}

Result<ListenAddress> parse_listen(const std::string& text) {
  auto bad = [&](const std::string& why) { return Status::invalid_argument("listen address \"" + text + "\": " + why); };
  auto split = split_host_port(text);
  if (!split) return bad(split.status().message());
  if (!split->port) return bad("expected HOST:PORT, e.g. 127.0.0.1:8080");
  ListenAddress a;
  a.host = split->host.empty() ? "127.0.0.1" : split->host;
  a.port = *split->port;
  return a;
}

Result<std::string> read_token_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return Status::invalid_argument("token file " + path + ": cannot be read (does it exist?)");
  if (st.st_mode & 077) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%03o", static_cast<unsigned>(st.st_mode & 0777));
    return Status::invalid_argument("token file " + path + " is readable by group or others (mode " + mode +
                                    "); run: chmod 600 " + path);
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::invalid_argument("token file " + path + ": cannot be opened");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string token = ss.str();
  const char* space = " \t\r\n\f\v";
  size_t first = token.find_first_not_of(space);
  if (first == std::string::npos) return Status::invalid_argument("token file " + path + " is empty");
  size_t last = token.find_last_not_of(space);
  token = token.substr(first, last - first + 1);
  for (char c : token)
    if (static_cast<unsigned char>(c) < 0x21 || c == 0x7f)
      return Status::invalid_argument("token file " + path +
                                      ": the token must be one line of printable characters without spaces");
  return token;
}

Result<Millis> parse_shutdown_grace(const std::string& text) {
  if (text == "0" || text == "0s" || text == "0ms") return Millis{0};
  std::optional<Millis> d = parse_duration(text);
  if (!d || d->count() <= 0)
    return Status::invalid_argument("shutdown grace \"" + text + "\" is not a duration; use e.g. 5s, 500ms or 0s");
  return *d;
}

Result<ServeConfig> load_serve_config(const std::string& path, ServeConfig config) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::invalid_argument(path + ": cannot open the config file");
  std::stringstream ss;
  ss << in.rdbuf();
  auto parsed = yaml_to_json(ss.str());
  if (!parsed.is_ok()) return Status::invalid_argument(path + ":" + parsed.status().message());
  const Json& root = parsed.value();
  if (root.is_null()) return config;  // an empty file: all defaults
  if (!root.is_object()) return Status::invalid_argument(path + ": expected a mapping of settings");
  if (Status s = only_keys(path, root, "",
                           {"db", "workflows", "listen", "token_file", "read_token_file", "durability", "log_level",
                            "log_format",
                            "io_threads", "shutdown_grace", "limits", "http", "kafka", "publish"});
      !s.is_ok())
    return s;
  for (auto [key, out] : {std::pair<const char*, std::string*>{"db", &config.db},
                          {"workflows", &config.workflows},
                          {"listen", &config.listen},
                          {"token_file", &config.token_file},
                          {"read_token_file", &config.read_token_file},
                          {"log_level", &config.log_level},
                          {"log_format", &config.log_format}}) {
    if (Status s = read_string(path, root, key, "", *out); !s.is_ok()) return s;
  }
  if (root.contains("listen")) {
    if (auto l = parse_listen(config.listen); !l.is_ok()) return bad(path, "listen", l.status().message());
  }
  if (Status s = check_log_level(config.log_level); !s.is_ok()) return bad(path, "log_level", s.message());
  if (auto f = api::parse_log_format(config.log_format); !f.is_ok())
    return bad(path, "log_format", f.status().message());
  if (root.contains("durability")) {
    std::string d;
    if (Status s = read_string(path, root, "durability", "", d); !s.is_ok()) return s;
    auto parsed_d = parse_durability(d);
    if (!parsed_d.is_ok()) return bad(path, "durability", parsed_d.status().message());
    config.durability = parsed_d.value();
  }
  if (Status s = read_count(path, root, "io_threads", "", config.io_threads); !s.is_ok()) return s;
  if (root.contains("shutdown_grace")) {
    const Json& v = root["shutdown_grace"];
    auto grace = v.is_string() ? parse_shutdown_grace(v.get<std::string>()) : Result<Millis>(Status::invalid_argument(""));
    if (!grace.is_ok()) return bad(path, "shutdown_grace", "expected a duration such as 5s (0s: no grace)");
    config.shutdown_grace = grace.value();
  }
  if (root.contains("limits")) {
    const Json& limits = root["limits"];
    if (!limits.is_object()) return bad(path, "limits", "expected a mapping");
    if (Status s = only_keys(path, limits, "limits.",
                             {"max_body_bytes", "max_header_bytes", "max_connections", "max_connections_per_address",
                              "first_request_timeout", "idle_timeout", "read_timeout"});
        !s.is_ok())
      return s;
    if (Status s = read_count(path, limits, "max_body_bytes", "limits.", config.max_body_bytes); !s.is_ok()) return s;
    if (Status s = read_count(path, limits, "max_header_bytes", "limits.", config.max_header_bytes); !s.is_ok())
      return s;
    if (Status s = read_count(path, limits, "max_connections", "limits.", config.max_connections); !s.is_ok())
      return s;
    if (Status s = read_count(path, limits, "max_connections_per_address", "limits.",
                              config.max_connections_per_address);
        !s.is_ok())
      return s;
    for (auto [key, out, example] : {std::tuple<const char*, Millis*, const char*>{"idle_timeout", &config.idle_timeout, "60s"},
                                     {"read_timeout", &config.read_timeout, "30s"},
                                     {"first_request_timeout", &config.first_request_timeout, "10s"}}) {
      if (!limits.contains(key)) continue;
      const Json& v = limits[key];
      std::optional<Millis> d = v.is_string() ? parse_duration(v.get<std::string>()) : std::nullopt;
      if (!d || d->count() <= 0)
        return bad(path, std::string("limits.") + key, std::string("expected a duration such as ") + example);
      *out = *d;
    }
  }
  if (root.contains("http")) {
    const Json& h = root["http"];
    if (!h.is_object()) return bad(path, "http", "expected a mapping");
    if (Status s = only_keys(path, h, "http.", {"max_connections_per_service"}); !s.is_ok()) return s;
    if (Status s = read_count(path, h, "max_connections_per_service", "http.", config.max_connections_per_service);
        !s.is_ok())
      return s;
  }
  if (root.contains("kafka")) {
    const Json& k = root["kafka"];
    if (!k.is_object()) return bad(path, "kafka", "expected a mapping");
    if (Status s = only_keys(path, k, "kafka.", {"properties", "group_id"}); !s.is_ok()) return s;
    if (Status s = read_string(path, k, "group_id", "kafka.", config.kafka_group_id); !s.is_ok()) return s;
    if (k.contains("properties")) {
      const Json& props = k["properties"];
      if (!props.is_object()) return bad(path, "kafka.properties", "expected a mapping of librdkafka properties");
      for (const auto& [name, value] : props.items()) {
        // librdkafka takes every property as text; YAML may have typed it.
        if (value.is_structured() || value.is_null())
          return bad(path, "kafka.properties." + name, "expected a scalar value");
        config.kafka_properties[name] = value.is_string() ? value.get<std::string>() : value.dump();
      }
    }
  }
  if (root.contains("publish")) {
    const Json& p = root["publish"];
    if (!p.is_object()) return bad(path, "publish", "expected a mapping (publish: { kafka: { brokers, topic } })");
    if (Status s = only_keys(path, p, "publish.", {"kafka"}); !s.is_ok()) return s;
    const Json& k = p.contains("kafka") ? p["kafka"] : Json();
    if (!k.is_object()) return bad(path, "publish.kafka", "expected a mapping with brokers and topic");
    if (Status s = only_keys(path, k, "publish.kafka.", {"brokers", "topic"}); !s.is_ok()) return s;
    if (Status s = read_string(path, k, "brokers", "publish.kafka.", config.publish_kafka_brokers); !s.is_ok())
      return s;
    if (Status s = read_string(path, k, "topic", "publish.kafka.", config.publish_kafka_topic); !s.is_ok()) return s;
    if (config.publish_kafka_brokers.empty())
      return bad(path, "publish.kafka.brokers", "expected the bootstrap servers, e.g. kafka-1:9092,kafka-2:9092");
    if (config.publish_kafka_topic.empty()) return bad(path, "publish.kafka.topic", "expected a topic name");
  }
  return config;
}

}  // namespace usher::cli
