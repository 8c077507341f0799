#include "kafka/kafka_reply.h"

#include <cstdio>

namespace usher::kafka_wire {

std::string correlation_id(const StepCall& call, std::string_view nonce) {
  std::string id;
  id.reserve(call.saga_id.size() + call.step.size() + nonce.size() + 24);
  id += call.saga_id;
  id += ':';
  id += call.step;
  id += ':';
  id += call_kind_name(call.kind);
  id += ':';
  id += std::to_string(call.attempt);
  id += ':';
  id += nonce;
  return id;
}

std::string step_label(const StepCall& call) {
  std::string label = "step \"" + call.step + "\" (" + call.service.name + "." + call.operation;
  if (call.kind == CallKind::kCompensate) label += ", compensation";
  label += ")";
  return label;
}

std::string excerpt(std::string_view text, size_t max) {
  std::string out;
  const bool cut = text.size() > max;
  for (char c : text.substr(0, max)) out += static_cast<unsigned char>(c) < 0x20 ? ' ' : c;
  if (cut) out += "...";
  return out;
}

StepResult parse_reply(std::string_view value, std::string_view label) {
  auto malformed = [&](std::string_view why) {
    return StepResult::transient(std::string(label) + ": malformed reply (" + std::string(why) +
                                 "): " + excerpt(value));
  };
  // The parser is told not to throw: a discarded value is how it reports
  // bad JSON, and a reply is external input we must survive.
  Json reply = Json::parse(value.begin(), value.end(), nullptr, /*allow_exceptions=*/false);
  if (reply.is_discarded()) return malformed("not JSON");
  if (!reply.is_object()) return malformed("not a JSON object");
  auto status_it = reply.find("status");
  if (status_it == reply.end() || !status_it->is_string()) return malformed("no \"status\" string");
  const auto& status = status_it->get_ref<const std::string&>();

  if (status == "ok") {
    auto out = reply.find("output");
    if (out == reply.end() || out->is_null()) return StepResult::ok(Json::object());
    if (!out->is_object()) return malformed("\"output\" is not an object");
    return StepResult::ok(std::move(*out));
  }
  if (status == "failed") {
    auto err = reply.find("error");
    if (err == reply.end() || err->is_null())
      return StepResult::failed(std::string(label) + ": failed");
    if (!err->is_string()) return malformed("\"error\" is not a string");
    return StepResult::failed(std::string(label) + ": " + err->get<std::string>());
  }
  if (status == "retry") {
    auto err = reply.find("error");
    std::string why = std::string(label) + ": service asked to retry";
    if (err != reply.end() && err->is_string() && !err->get_ref<const std::string&>().empty())
      why += ": " + err->get<std::string>();
    return StepResult::transient(std::move(why));
  }
  return malformed("unknown status \"" + excerpt(status, 40) + "\"");
}

std::string ok_reply(const Json& output) {
  Json reply = {{"status", "ok"}, {"output", output.is_null() ? Json::object() : output}};
  return reply.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string failed_reply(std::string_view error) {
  Json reply = {{"status", "failed"}, {"error", std::string(error)}};
  return reply.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string retry_reply(std::string_view error) {
  Json reply = {{"status", "retry"}};
  if (!error.empty()) reply["error"] = std::string(error);
  return reply.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string format_duration(Millis d) {
  const auto ms = d.count();
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  if (ms < 1000) return std::to_string(ms) + "ms";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(ms) / 1000.0);
  return buf;
}

}  // namespace usher::kafka_wire
