// The HTTP request of one step attempt, built before a connection is taken:
// the method and target, the headers every usher call carries
// (Idempotency-Key, X-Usher-Saga-Id, X-Usher-Step, X-Usher-Attempt, and
// X-Correlation-Id and traceparent when the saga has them, X-Usher-Node when
// the sending engine is a node of a cluster) and the JSON body.
// No socket here.
#pragma once

#include <string>
#include <string_view>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "usher/adapter.h"
#include "usher/status.h"

namespace usher::http_step {

using StepRequest = boost::beast::http::request<boost::beast::http::string_body>;

// POST unless the step names `http.method`; the target is `base_path` followed
// by the rendered `http.path`, else by "/" + the operation. Keep-alive.
// kInvalidArgument, and nothing may be sent, for an unknown method or a target
// holding a space or a control character (it would change the request line):
// values in `http.path` arrive percent-encoded (render_path), but the service
// URL's path and the template's own text do not.
Result<StepRequest> build_step_request(const StepCall& call, std::string_view base_path,
                                       const std::string& host_header, const std::string& user_agent);

}  // namespace usher::http_step
