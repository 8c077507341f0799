#include "http/api/console_assets.h"

#include <boost/beast/http/field.hpp>
#include <string>

namespace usher::api {

namespace http = boost::beast::http;

namespace {

void set_console_headers(ApiResponse& res) {
  // Beast's field enum has none of these three: they are set by name.
  res.set("Content-Security-Policy", kConsoleCsp);
  res.set("X-Content-Type-Options", "nosniff");
  res.set("Referrer-Policy", "no-referrer");
  res.set(http::field::cache_control, "no-cache");
}

ApiResponse text_response(http::status status, std::string body) {
  ApiResponse res{status, 11};
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

}  // namespace

bool is_console_path(std::string_view path) { return path == "/" || path == "/ui" || path.starts_with("/ui/"); }

ApiResponse console_response(http::verb method, std::string_view path) {
  ApiResponse res;
  if (method != http::verb::get) {
    res = text_response(http::status::method_not_allowed, "the console's files answer GET only\n");
    res.set(http::field::allow, "GET");
  } else if (path == "/" || path == "/ui") {
    // 302 rather than 301/308: a browser caches a permanent redirect for good,
    // and "/" may serve something else in a later version.
    res = text_response(http::status::found, "");
    res.set(http::field::location, "/ui/");
  } else {
    std::string_view name = path.substr(4);  // after "/ui/"
    if (name.empty()) name = "index.html";
    res = text_response(http::status::not_found, "the console has no file \"" + std::string(name) + "\"\n");
    for (const ConsoleAsset& a : console_assets()) {
      if (a.name != name) continue;
      res = ApiResponse{http::status::ok, 11};
      res.set(http::field::content_type, a.content_type);
      res.body() = std::string(a.body);
      res.prepare_payload();
      break;
    }
  }
  set_console_headers(res);
  return res;
}

}  // namespace usher::api
