// A step service's base URL as the HTTP step adapter uses it: the
// http[s]://host[:port][/base/path] of usher/url.h, plus whether the host is
// an IP literal (then it needs no DNS, no SNI, and the certificate must name
// the address).
#pragma once

#include <string>
#include <string_view>

#include "usher/status.h"
#include "usher/url.h"

namespace usher::http_step {

struct ServiceUrl : HttpUrl {
  bool host_is_ip = false;
  // The name in errors, and the pool key of an http:// service: one pool per
  // host:port ("127.0.0.1:7101", "[::1]:8080").
  std::string endpoint() const { return authority(); }
};

// kInvalidArgument `service URL "…": why` (parse_http_url).
Result<ServiceUrl> parse_service_url(std::string_view url);

}  // namespace usher::http_step
