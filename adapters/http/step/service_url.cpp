#include "http/step/service_url.h"

#include <boost/asio/ip/address.hpp>

namespace usher::http_step {

Result<ServiceUrl> parse_service_url(std::string_view url) {
  auto parsed = parse_http_url(url, {.what = "service URL", .allow_https = true});
  if (!parsed) return parsed.status();
  ServiceUrl out;
  static_cast<HttpUrl&>(out) = std::move(parsed.value());
  boost::system::error_code ec;
  boost::asio::ip::make_address(out.host, ec);
  out.host_is_ip = !ec;
  return out;
}

}  // namespace usher::http_step
