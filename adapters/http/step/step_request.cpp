#include "http/step/step_request.h"

#include <algorithm>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>

namespace usher::http_step {

namespace http = boost::beast::http;

Result<StepRequest> build_step_request(const StepCall& call, std::string_view base_path,
                                       const std::string& host_header, const std::string& user_agent) {
  http::verb verb = http::verb::post;
  if (call.http_method) {
    verb = http::string_to_verb(*call.http_method);
    if (verb == http::verb::unknown) return Status::invalid_argument("unknown HTTP method \"" + *call.http_method + "\"");
  }
  std::string target(base_path);
  if (call.http_path) {
    target += *call.http_path;
  } else {
    target += '/';
    target += call.operation;
  }
  if (std::any_of(target.begin(), target.end(), [](char ch) {
        const auto u = static_cast<unsigned char>(ch);
        return u <= 0x20 || u == 0x7F;
      }))
    return Status::invalid_argument("request not sent: its target contains a space or a control character");
  StepRequest req{verb, target, 11};
  req.set(http::field::host, host_header);
  req.set(http::field::user_agent, user_agent);
  req.set("Idempotency-Key", call.idempotency_key);
  req.set("X-Usher-Saga-Id", call.saga_id);
  req.set("X-Usher-Step", call.step);
  req.set("X-Usher-Attempt", std::to_string(call.attempt));
  if (!call.correlation_id.empty()) req.set("X-Correlation-Id", call.correlation_id);
  if (!call.traceparent.empty()) req.set("traceparent", call.traceparent);
  if (call.node != 0) req.set("X-Usher-Node", std::to_string(call.node));
  if (verb != http::verb::get && verb != http::verb::head) {
    req.set(http::field::content_type, "application/json");
    // replace: a `with` holding invalid UTF-8 is sent mangled rather than throwing.
    req.body() = call.body.dump(-1, ' ', false, Json::error_handler_t::replace);
  }
  req.keep_alive(true);
  req.prepare_payload();
  return req;
}

}  // namespace usher::http_step
