#include "kafka/kafka_reply.h"

#include <algorithm>

#include "usher/service_text.h"

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
  std::string out = valid_utf8(text, max);
  std::replace(out.begin(), out.end(), '\t', ' ');  // one line, one kind of blank
  return out;
}

StepResult parse_reply(std::string_view value, std::string_view label) {
  // Every text built here goes through valid_utf8() last, so the label, the
  // service's words and the excerpt together stay within the bound.
  auto text = [&](std::string_view what) { return valid_utf8(std::string(label) + ": " + std::string(what)); };
  // Unknown outcome: see the header comment for why not kTransient.
  auto malformed = [&](std::string_view why) {
    return StepResult::timeout(text("malformed reply (" + std::string(why) + "): " + excerpt(value)));
  };
  // Depth first, before the parser sees the value.
  if (json_deeper_than(value))
    return malformed("nested deeper than " + std::to_string(kMaxReplyDepth) + " levels");
  // The parser is told not to throw: a discarded value is how it reports bad
  // JSON (invalid UTF-8 in a string included), and a reply is external input
  // we must survive.
  // It stops at a NUL byte as if the text ended there; JSON text holds no raw
  // NUL, so a value with one is not JSON whatever comes before it.
  if (value.find('\0') != std::string_view::npos) return malformed("not JSON");
  Json reply = Json::parse(value.begin(), value.end(), nullptr, /*allow_exceptions=*/false);
  if (reply.is_discarded()) return malformed("not JSON");
  if (!reply.is_object()) return malformed("not a JSON object");
  auto status_it = reply.find("status");
  if (status_it == reply.end() || !status_it->is_string()) return malformed("no \"status\" string");
  const auto& status = status_it->get_ref<const std::string&>();

  // From here the service has said what happened; a field of the wrong type
  // costs the detail, not the outcome (as a 2xx with a body that is not JSON
  // is still a success over HTTP).
  if (status == "ok") {
    auto out = reply.find("output");
    if (out == reply.end() || out->is_null()) return StepResult::ok(Json::object());
    if (!out->is_object())
      return StepResult::ok_without_output(
          valid_utf8("the reply's \"output\" is not an object: " +
                     excerpt(out->dump(-1, ' ', false, Json::error_handler_t::replace), 80)));
    return StepResult::ok(std::move(*out));
  }
  if (status == "failed") {
    auto err = reply.find("error");
    if (err == reply.end() || err->is_null()) return StepResult::failed(text("failed"));
    if (!err->is_string())
      return StepResult::failed(text(err->dump(-1, ' ', false, Json::error_handler_t::replace)));
    return StepResult::failed(text(err->get_ref<const std::string&>()));
  }
  if (status == "retry") {
    auto err = reply.find("error");
    std::string why = "service asked to retry";
    if (err != reply.end() && err->is_string() && !err->get_ref<const std::string&>().empty())
      why += ": " + err->get<std::string>();
    return StepResult::transient(text(why));
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

}  // namespace usher::kafka_wire
