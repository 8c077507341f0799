#include "http/api/list_query.h"

#include <array>
#include <charconv>
#include <string_view>

#include "usher/inspect.h"

namespace usher::api {
namespace {

constexpr std::array<std::string_view, 8> kParameters = {
    "status", "workflow", "limit", "after", "idempotency_key", "correlation_id", "created_after", "created_before"};
constexpr size_t kMaxLimit = 1000;

std::string accepted() {
  std::string out;
  for (std::string_view p : kParameters) {
    if (!out.empty()) out += ", ";
    out += p;
  }
  return out;
}

Status bad(const std::string& name, const std::string& value, const std::string& why) {
  return Status::invalid_argument(name + "=\"" + value + "\" " + why);
}

Result<int64_t> time_parameter(const std::string& name, const std::string& value) {
  auto us = parse_time(value);
  if (!us) return bad(name, value, "is not an RFC 3339 time, e.g. 2026-12-06T10:00:00Z or 2026-12-06T11:00:00.250+01:00");
  return *us;
}

}  // namespace

Result<SagaFilter> parse_list_query(const std::map<std::string, std::string>& query) {
  SagaFilter filter;
  for (const auto& [name, value] : query) {
    bool known = false;
    for (std::string_view p : kParameters) known = known || p == name;
    if (!known) {
      return Status::invalid_argument("unknown query parameter \"" + name + "\"; GET /v1/sagas accepts " + accepted());
    }
    if (value.empty()) continue;
    if (name == "status") {
      filter.status = parse_saga_status(value);
      if (!filter.status)
        return bad(name, value, "is not a saga status; use running, compensating, completed, compensated, stuck or terminated");
    } else if (name == "workflow") {
      filter.workflow = value;
    } else if (name == "limit") {
      size_t n = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc() || end != value.data() + value.size() || n < 1 || n > kMaxLimit)
        return bad(name, value, "must be an integer from 1 to " + std::to_string(kMaxLimit));
      filter.limit = n;
    } else if (name == "after") {
      if (!is_saga_id(value))
        return bad(name, value, "is not a cursor: pass the `next` of the previous page (a saga id)");
      filter.after = value;
    } else if (name == "idempotency_key") {
      filter.idempotency_key = value;
    } else if (name == "correlation_id") {
      filter.correlation_id = value;
    } else if (name == "created_after") {
      auto t = time_parameter(name, value);
      if (!t.is_ok()) return t.status();
      filter.created_after = t.value();
    } else {  // created_before
      auto t = time_parameter(name, value);
      if (!t.is_ok()) return t.status();
      filter.created_before = t.value();
    }
  }
  return filter;
}

}  // namespace usher::api
