#include "http/api/log_line.h"

#include <chrono>

#include "usher/inspect.h"
#include "usher/printable.h"

namespace usher::api {

namespace {

constexpr char kFieldsMark = '\x1f';

// Splits a payload into its message and its fields (an empty object when it
// has none). JSON escapes every control character, so the fields never hold
// the mark: the last one is where they start.
std::pair<std::string_view, LogFields> split_payload(std::string_view payload) {
  size_t mark = payload.rfind(kFieldsMark);
  if (mark != std::string_view::npos) {
    LogFields fields = LogFields::parse(std::string(payload.substr(mark + 1)), nullptr, /*allow_exceptions=*/false);
    if (fields.is_object()) return {payload.substr(0, mark), std::move(fields)};
  }
  return {payload, LogFields::object()};
}

std::string dump(const LogFields& j) {
  // A service's error text may not be UTF-8: replaced, never thrown on.
  return j.dump(-1, ' ', false, LogFields::error_handler_t::replace);
}

bool needs_quotes(std::string_view v) {
  if (v.empty()) return true;
  for (unsigned char c : v)
    if (c <= ' ' || c == '"' || c == '=' || c == 0x7f) return true;
  return false;
}

std::string_view level_name(spdlog::level::level_enum level) {
  auto sv = spdlog::level::to_string_view(level);
  return {sv.data(), sv.size()};
}

}  // namespace

Result<LogFormat> parse_log_format(std::string_view text) {
  if (text == "text") return LogFormat::kText;
  if (text == "json") return LogFormat::kJson;
  return Status::invalid_argument("log format must be text or json, not \"" + std::string(text) + "\"");
}

std::string with_fields(std::string_view message, const LogFields& fields) {
  std::string out(message);
  out += kFieldsMark;
  out += dump(fields);
  return out;
}

std::string format_log_line(LogFormat format, int64_t time_us, spdlog::level::level_enum level,
                            std::string_view payload) {
  auto [message, fields] = split_payload(payload);
  // Messages and fields quote sagas' values (ids, errors, notes) from
  // clients and services: every line is made printable (usher/printable.h),
  // so no control character reaches a terminal that shows the log. A JSON
  // line stays JSON: the escapes are JSON string escapes.
  if (format == LogFormat::kJson) {
    LogFields line = {{"time", format_time(time_us)}, {"level", level_name(level)}, {"message", message}};
    for (const auto& [k, v] : fields.items()) {
      if (v.is_string() && v.get_ref<const std::string&>().empty()) continue;
      if (!line.contains(k)) line[k] = v;
    }
    return printable(dump(line));
  }
  std::string out = format_time(time_us);
  out += ' ';
  out += level_name(level);
  out += ' ';
  out += message;
  for (const auto& [k, v] : fields.items()) {
    std::string value = v.is_string() ? v.get<std::string>() : dump(v);
    if (v.is_string() && value.empty()) continue;
    out += ' ';
    out += k;
    out += '=';
    out += needs_quotes(value) ? dump(LogFields(value)) : value;
  }
  return printable(out);
}

namespace {

class LineFormatter final : public spdlog::formatter {
 public:
  explicit LineFormatter(LogFormat format) : format_(format) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const int64_t us =
        std::chrono::duration_cast<std::chrono::microseconds>(msg.time.time_since_epoch()).count();
    std::string line = format_log_line(format_, us, msg.level, std::string_view(msg.payload.data(), msg.payload.size()));
    if (format_ == LogFormat::kText) {
      // "<time> <level> ...": the level is the second word.
      msg.color_range_start = line.find(' ') + 1;
      msg.color_range_end = msg.color_range_start + level_name(msg.level).size();
    }
    line += '\n';
    dest.append(line.data(), line.data() + line.size());
  }

  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<LineFormatter>(format_); }

 private:
  LogFormat format_;
};

}  // namespace

std::unique_ptr<spdlog::formatter> make_log_formatter(LogFormat format) {
  return std::make_unique<LineFormatter>(format);
}

}  // namespace usher::api
