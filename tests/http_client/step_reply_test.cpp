// The pure parts of the HTTP step adapter, without a network.
#include <doctest/doctest.h>

#include "http/step_client.h"
#include "http/step_reply.h"

using namespace usher;
using namespace usher::http_step;

TEST_CASE("service URLs are taken apart into host, port and base path") {
  SUBCASE("IP and port") {
    auto u = parse_service_url("http://127.0.0.1:7101");
    REQUIRE(u);
    CHECK(u.value().host == "127.0.0.1");
    CHECK(u.value().port == "7101");
    CHECK(u.value().base_path == "");
    CHECK(u.value().host_is_ip);
    CHECK(u.value().host_header() == "127.0.0.1:7101");
  }
  SUBCASE("name, default port, base path with a trailing slash") {
    auto u = parse_service_url("http://seats.internal/api/v1/");
    REQUIRE(u);
    CHECK(u.value().host == "seats.internal");
    CHECK(u.value().port == "80");
    CHECK(u.value().base_path == "/api/v1");
    CHECK_FALSE(u.value().host_is_ip);
    CHECK(u.value().host_header() == "seats.internal");
  }
  SUBCASE("IPv6 literal") {
    auto u = parse_service_url("http://[::1]:8080/x");
    REQUIRE(u);
    CHECK(u.value().host == "::1");
    CHECK(u.value().host_header() == "[::1]:8080");
  }
  SUBCASE("refused") {
    auto https = parse_service_url("https://pay.example.com");
    REQUIRE_FALSE(https);
    CHECK(https.status().message().find("https is not supported") != std::string::npos);
    CHECK_FALSE(parse_service_url("ftp://x"));
    CHECK_FALSE(parse_service_url("http://:80"));
    CHECK_FALSE(parse_service_url("http://h:0"));
    CHECK_FALSE(parse_service_url("http://h:70000"));
    CHECK_FALSE(parse_service_url("http://h:12ab"));
    CHECK_FALSE(parse_service_url("http://h?x=1"));
  }
}

TEST_CASE("check_service refuses https at bind time and accepts other transports") {
  Service s;
  s.name = "payments";
  s.url = "https://pay.example.com";
  Status st = HttpStepAdapter::check_service(s);
  CHECK(st.code() == StatusCode::kInvalidArgument);
  CHECK(st.message().starts_with("service \"payments\": service URL \"https://pay.example.com\": https is not supported"));
  s.url = "http://127.0.0.1:7102";
  CHECK(HttpStepAdapter::check_service(s).is_ok());
  s.transport = Transport::kKafka;
  s.url = "";
  CHECK(HttpStepAdapter::check_service(s).is_ok());
}

TEST_CASE("Retry-After is read as seconds or as an HTTP date") {
  const auto now = std::chrono::system_clock::from_time_t(1445412470);  // Wed, 21 Oct 2015 07:27:50 GMT
  CHECK(parse_retry_after("7", now) == Millis(7000));
  CHECK(parse_retry_after(" 0 ", now) == Millis(0));
  CHECK(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now) == Millis(10'000));
  CHECK(parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now) == Millis(0));  // in the past
  CHECK_FALSE(parse_retry_after("", now).has_value());
  CHECK_FALSE(parse_retry_after("soon", now).has_value());
  CHECK_FALSE(parse_retry_after("-1", now).has_value());
  CHECK_FALSE(parse_retry_after("Wed, 21 Foo 2015 07:28:00 GMT", now).has_value());
}

TEST_CASE("durations in errors are written as in the workflow files") {
  CHECK(format_duration(Millis(5000)) == "5s");
  CHECK(format_duration(Millis(250)) == "250ms");
  CHECK(format_duration(Millis(1500)) == "1.5s");
  CHECK(format_duration(Millis(120'000)) == "2m");
  CHECK(format_duration(Millis(7'200'000)) == "2h");
}

TEST_CASE("body excerpts are bounded and printable") {
  CHECK(body_excerpt("  {\"a\":1}\n") == "{\"a\":1}");
  CHECK(body_excerpt("a\tb") == "a b");
  CHECK(body_excerpt(std::string(300, 'x'), 10) == std::string(10, 'x') + "\xe2\x80\xa6");
}
