// What the API records about each request it answers: one count and one
// latency in ApiMetrics by method, route template and status code, and one
// log line (log_line.h) for a refused request:
//   warning  401 and 403, on any route (a wrong or read-only token);
//   info     any other 4xx answer to a POST (a start or an operator action),
//            with the route, the code and the problem's detail as reason.
// Nothing else is logged here: 5xx are logged where they happen
// (api_handler.cpp), and reads that miss (GET 404) are the client's business.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "http/api/api_metrics.h"
#include "http/api/api_problem.h"

namespace usher::api {

// The route a path matches, with its variable segments named:
// "/v1/sagas/0193…/cancel" → "/v1/sagas/{id}/cancel", "/v1/workflows/booking/sagas"
// → "/v1/workflows/{name}/sagas"; "other" for a path no route serves, so a
// scanner cannot grow the metrics' label sets. The query string is ignored.
std::string route_template(std::string_view target);

// `respond` wrapped so that the response it is given is counted in `metrics`
// (may be null: then only logged) and, when refused, logged, before it is passed on.
std::function<void(ApiResponse)> observe_request(ApiMetrics* metrics, const ApiRequest& request,
                                                 std::function<void(ApiResponse)> respond);

}  // namespace usher::api
