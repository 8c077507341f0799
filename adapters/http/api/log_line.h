// The lines `usher serve` writes to stderr, in one of two formats
// (`log_format:` in usher.yaml, `--log-format`):
//
//   text  2026-12-06T16:45:00.123Z info saga compensated saga_id=0193… workflow=booking
//         correlation_id=req-7 status=compensated detail="step \"pay\" failed: …"
//   json  {"time":"2026-12-06T16:45:00.123Z","level":"info","message":"saga compensated",
//          "saga_id":"0193…","workflow":"booking","correlation_id":"req-7",…}
//
// One line per record, always: JSON escapes newlines inside values, and text
// quotes a value that holds a space, a quote, '=' or a control character.
// Times are RFC 3339 in UTC with milliseconds; levels are spdlog's names
// (trace, debug, info, warning, error, critical).
//
// A record carries fields (saga_id, workflow, correlation_id, step, event,
// status, detail, route, code, ...) by appending them to spdlog's message as a
// JSON object after a '\x1f' (with_fields()); the formatter installed by
// make_log_formatter() takes them apart again. A message logged without fields
// (spdlog::info("loaded ...")) is a line with a message only. Fields with an
// empty string value are left out.
#pragma once

#include <spdlog/common.h>
#include <spdlog/formatter.h>

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "usher/status.h"

namespace usher::api {

enum class LogFormat { kText, kJson };

// "text" or "json"; kInvalidArgument names both for anything else.
Result<LogFormat> parse_log_format(std::string_view text);

// A record's fields, in the order they are written.
using LogFields = nlohmann::ordered_json;

// The spdlog message for `message` with `fields` (a JSON object): log it as
// spdlog::info("{}", with_fields(...)).
std::string with_fields(std::string_view message, const LogFields& fields);

// One line (without its newline) for a record: `payload` as with_fields() made
// it or a plain message, at `time_us` (microseconds since the Unix epoch).
std::string format_log_line(LogFormat format, int64_t time_us, spdlog::level::level_enum level,
                            std::string_view payload);

// An spdlog formatter that writes format_log_line() and a newline; in text the
// level is the sink's color range.
std::unique_ptr<spdlog::formatter> make_log_formatter(LogFormat format);

}  // namespace usher::api
