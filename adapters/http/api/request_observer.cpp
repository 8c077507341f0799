#include "http/api/request_observer.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <vector>

#include "http/api/log_line.h"

namespace usher::api {

namespace http = boost::beast::http;

namespace {

std::vector<std::string_view> segments(std::string_view target) {
  std::string_view path = target.substr(0, target.find('?'));
  std::vector<std::string_view> out;
  if (path.empty() || path[0] != '/') return out;
  path.remove_prefix(1);
  while (true) {
    size_t slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

bool is_saga_subresource(std::string_view s) {
  return s == "events" || s == "cancel" || s == "retry" || s == "resolve" || s == "terminate";
}

// The problem's detail, or the status's reason phrase when the body is not a problem.
std::string reason_of(const ApiResponse& res) {
  Json body = Json::parse(res.body(), nullptr, /*allow_exceptions=*/false);
  if (body.is_object() && body.contains("detail") && body["detail"].is_string()) return body["detail"].get<std::string>();
  return std::string(res.reason());
}

}  // namespace

std::string route_template(std::string_view target) {
  const auto seg = segments(target);
  const size_t n = seg.size();
  if (n == 1 && (seg[0] == "healthz" || seg[0] == "metrics")) return "/" + std::string(seg[0]);
  if (n < 2 || seg[0] != "v1") return "other";
  if (n == 2 && (seg[1] == "stats" || seg[1] == "cluster" || seg[1] == "workflows" || seg[1] == "sagas" ||
                 seg[1] == "events"))
    return "/v1/" + std::string(seg[1]);
  if (n == 3 && seg[1] == "events" && seg[2] == "stream") return "/v1/events/stream";
  if (seg[1] == "workflows" && n >= 3 && !seg[2].empty()) {
    if (n == 3) return "/v1/workflows/{name}";
    if (n == 4 && seg[3] == "sagas") return "/v1/workflows/{name}/sagas";
  }
  if (seg[1] == "sagas" && n >= 3 && !seg[2].empty()) {
    if (n == 3) return "/v1/sagas/{id}";
    if (n == 4 && is_saga_subresource(seg[3])) return "/v1/sagas/{id}/" + std::string(seg[3]);
  }
  return "other";
}

std::function<void(ApiResponse)> observe_request(ApiMetrics* metrics, const ApiRequest& request,
                                                 std::function<void(ApiResponse)> respond) {
  const auto started = std::chrono::steady_clock::now();
  const http::verb verb = request.method();
  std::string method = verb == http::verb::unknown ? "other" : std::string(http::to_string(verb));
  std::string route = route_template(request.target());
  // Only what a refusal's log line names is kept from the request.
  const auto seg = segments(request.target());
  std::string saga_id = route.starts_with("/v1/sagas/{id}") ? std::string(seg[2]) : std::string();
  std::string workflow = route.starts_with("/v1/workflows/{name}") ? std::string(seg[2]) : std::string();
  auto cid = request.find("X-Correlation-Id");
  std::string correlation_id = cid == request.end() ? std::string() : std::string(cid->value());
  return [metrics, started, method = std::move(method), route = std::move(route), saga_id = std::move(saga_id),
          workflow = std::move(workflow), correlation_id = std::move(correlation_id),
          respond = std::move(respond)](ApiResponse res) {
    const unsigned code = res.result_int();
    if (metrics) {
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      metrics->observe_request(method, route, code, seconds);
    }
    const bool auth = code == 401 || code == 403;
    if (auth || (code >= 400 && code < 500 && method == "POST")) {
      const LogFields fields = {{"method", method},      {"route", route},
                                {"code", code},          {"reason", reason_of(res)},
                                {"saga_id", saga_id},    {"workflow", workflow},
                                {"correlation_id", correlation_id}};
      spdlog::log(auth ? spdlog::level::warn : spdlog::level::info, "{}",
                  with_fields("api: refused " + method + " " + route, fields));
    }
    respond(std::move(res));
  };
}

}  // namespace usher::api
