// Service URLs, the CLI's --server and serve's listen address (usher/url.h).
#include <doctest/doctest.h>

#include "usher/url.h"

using namespace usher;

TEST_CASE("host and port are split at the last colon, an IPv6 host in brackets") {
  SUBCASE("name and port") {
    auto hp = split_host_port("seats.internal:7101");
    REQUIRE(hp);
    CHECK(hp->host == "seats.internal");
    CHECK(hp->port == 7101);
  }
  SUBCASE("no port") {
    auto hp = split_host_port("seats.internal");
    REQUIRE(hp);
    CHECK(hp->host == "seats.internal");
    CHECK_FALSE(hp->port.has_value());
  }
  SUBCASE("IPv6 in brackets, with and without a port") {
    auto hp = split_host_port("[::1]:8080");
    REQUIRE(hp);
    CHECK(hp->host == "::1");
    CHECK(hp->port == 8080);
    hp = split_host_port("[fe80::1]");
    REQUIRE(hp);
    CHECK(hp->host == "fe80::1");
    CHECK_FALSE(hp->port.has_value());
  }
  SUBCASE("IPv6 without brackets: the last colon starts the port") {
    auto hp = split_host_port("::1:8080");
    REQUIRE(hp);
    CHECK(hp->host == "::1");
    CHECK(hp->port == 8080);
  }
  SUBCASE("an empty host and port 0 are the caller's to refuse") {
    auto hp = split_host_port(":0");
    REQUIRE(hp);
    CHECK(hp->host == "");
    CHECK(hp->port == 0);
    CHECK(split_host_port(":65535")->port == 65535);
  }
  SUBCASE("what is wrong, said without quoting the whole text") {
    CHECK(split_host_port("[::1").status().message() == "unclosed '[' in host");
    CHECK(split_host_port("[::1]8080").status().message() == "expected ':' after ']'");
    CHECK(split_host_port("h:12ab").status().message() == "bad port \"12ab\" (expected a number from 0 to 65535)");
    for (const char* bad : {"h:", "h:65536", "h:-1", "h: 80", "h:8080 ", "[::1]:"}) {
      CAPTURE(bad);
      auto hp = split_host_port(bad);
      REQUIRE_FALSE(hp);
      CHECK(hp.status().code() == StatusCode::kInvalidArgument);
    }
  }
}

TEST_CASE("an http:// base URL is taken apart into host, port and base path") {
  SUBCASE("IP and port") {
    auto u = parse_http_url("http://127.0.0.1:7101");
    REQUIRE(u);
    CHECK(u->host == "127.0.0.1");
    CHECK(u->port == "7101");
    CHECK(u->base_path == "");
    CHECK(u->authority() == "127.0.0.1:7101");
    CHECK(u->host_header() == "127.0.0.1:7101");
    CHECK(u->to_string() == "http://127.0.0.1:7101");
  }
  SUBCASE("the default port is 80, and the Host header leaves it out") {
    auto u = parse_http_url("http://seats.internal/api/v1/");
    REQUIRE(u);
    CHECK(u->port == "80");
    CHECK(u->base_path == "/api/v1");
    CHECK(u->authority() == "seats.internal:80");
    CHECK(u->host_header() == "seats.internal");
    CHECK(u->to_string() == "http://seats.internal:80/api/v1");
  }
  SUBCASE("IPv6 in brackets") {
    auto u = parse_http_url("http://[::1]:8080/x");
    REQUIRE(u);
    CHECK(u->host == "::1");
    CHECK(u->authority() == "[::1]:8080");
    CHECK(u->host_header() == "[::1]:8080");
    CHECK(parse_http_url("http://[::1]")->host_header() == "[::1]");
  }
  SUBCASE("a port is written canonically; trailing slashes go") {
    auto u = parse_http_url("http://h:0080//");
    REQUIRE(u);
    CHECK(u->port == "80");
    CHECK(u->base_path == "");
  }
  SUBCASE("without http:// only where the caller allows it") {
    CHECK_FALSE(parse_http_url("127.0.0.1:8080"));
    auto u = parse_http_url("127.0.0.1:8080/usher", {.what = "server URL", .scheme_optional = true});
    REQUIRE(u);
    CHECK(u->to_string() == "http://127.0.0.1:8080/usher");
    CHECK_FALSE(parse_http_url("ftp://h:21", {.scheme_optional = true}));
  }
}

TEST_CASE("a URL usher cannot use is refused with the reason, quoting it once") {
  auto why = [](std::string_view text) {
    return parse_http_url(text, {.what = "service URL", .allow_https = true}).status().message();
  };
  CHECK(why("ftp://x") == "service URL \"ftp://x\": unsupported scheme \"ftp\" (expected http[s]://host[:port][/path])");
  CHECK(why("seats.internal:7101") == "service URL \"seats.internal:7101\": expected http[s]://host[:port][/path]");
  CHECK(why("https://") == "service URL \"https://\": no host");
  CHECK(why("http://:80") == "service URL \"http://:80\": no host");
  CHECK(why("http://") == "service URL \"http://\": no host");
  CHECK(why("http://h:0") == "service URL \"http://h:0\": bad port \"0\" (expected a number from 1 to 65535)");
  CHECK(why("http://h:70000") == "service URL \"http://h:70000\": bad port \"70000\" (expected a number from 1 to 65535)");
  CHECK(why("http://h:12ab") == "service URL \"http://h:12ab\": bad port \"12ab\" (expected a number from 1 to 65535)");
  CHECK(why("http://h?x=1") == "service URL \"http://h?x=1\": query strings and fragments are not allowed");
  CHECK(why("http://h/v1#top") == "service URL \"http://h/v1#top\": query strings and fragments are not allowed");
  CHECK(why("http://user:pw@h") == "service URL \"http://user:pw@h\": user information is not allowed");
  CHECK(why("http://[::1") == "service URL \"http://[::1\": unclosed '[' in host");
  CHECK(parse_http_url("https://x").status().message() == "URL \"https://x\": https is not supported here; use http://");
  CHECK(parse_http_url("ftp://x").status().message() ==
        "URL \"ftp://x\": unsupported scheme \"ftp\" (expected http://host[:port][/path])");
}

TEST_CASE("https:// is read where it is allowed: port 443 by default, which the Host header leaves out") {
  auto u = parse_http_url("https://pay.example.com/v1/", {.allow_https = true});
  REQUIRE(u);
  CHECK(u->tls);
  CHECK(u->port == "443");
  CHECK(u->base_path == "/v1");
  CHECK(u->host_header() == "pay.example.com");
  CHECK(u->to_string() == "https://pay.example.com:443/v1");
  auto v = parse_http_url("https://[::1]:80", {.allow_https = true});
  REQUIRE(v);
  CHECK(v->host_header() == "[::1]:80");  // 80 is not https's default
  CHECK_FALSE(parse_http_url("http://h", {.allow_https = true})->tls);
  CHECK(parse_http_url("http://h:443")->host_header() == "h:443");
}
