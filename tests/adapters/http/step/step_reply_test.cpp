// The pure parts of the HTTP step adapter, without a network.
#include <doctest/doctest.h>

#include "http/step/http_step_adapter.h"
#include "http/step/service_url.h"
#include "http/step/step_reply.h"
#include "usher/duration.h"
#include "usher/service_text.h"

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
  SUBCASE("https, port 443 by default") {
    auto u = parse_service_url("https://pay.example.com/v1");
    REQUIRE(u);
    CHECK(u.value().tls);
    CHECK(u.value().endpoint() == "pay.example.com:443");
    CHECK(u.value().host_header() == "pay.example.com");
    CHECK(u.value().to_string() == "https://pay.example.com:443/v1");
    CHECK(parse_service_url("https://127.0.0.1:7443").value().host_header() == "127.0.0.1:7443");
    CHECK_FALSE(parse_service_url("http://127.0.0.1:7443").value().tls);
  }
  SUBCASE("refused") {
    CHECK_FALSE(parse_service_url("ftp://x"));
    CHECK_FALSE(parse_service_url("http://:80"));
    CHECK_FALSE(parse_service_url("http://h:0"));
    CHECK_FALSE(parse_service_url("http://h:70000"));
    CHECK_FALSE(parse_service_url("http://h:12ab"));
    CHECK_FALSE(parse_service_url("http://h?x=1"));
  }
}

TEST_CASE("check_service accepts https and other transports, and refuses tls settings on plain http") {
  Service s;
  s.name = "payments";
  s.url = "https://pay.example.com";
  CHECK(HttpStepAdapter::check_service(s).is_ok());  // the system's CAs
  s.url = "http://127.0.0.1:7102";
  CHECK(HttpStepAdapter::check_service(s).is_ok());
  s.tls.ca_file = "/etc/ssl/certs/ca-certificates.crt";
  Status st = HttpStepAdapter::check_service(s);
  CHECK(st.code() == StatusCode::kInvalidArgument);
  CHECK(st.message() == "service \"payments\": tls settings are for an https:// url");
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
  // Dates no clock holds: long past is past, far future is a year at most (no overflow).
  CHECK(parse_retry_after("Wed, 21 Oct 0423 07:28:00 GMT", now) == Millis(0));
  CHECK(parse_retry_after("Wed, 21 Oct 9999 07:28:00 GMT", now) == Millis(365LL * 24 * 3600 * 1000));
}

TEST_CASE("durations in errors are written as in the workflow files") {
  CHECK(format_duration(Millis(5000)) == "5s");
  CHECK(format_duration(Millis(250)) == "250ms");
  CHECK(format_duration(Millis(1500)) == "1.5s");
  CHECK(format_duration(Millis(120'000)) == "2m");
  CHECK(format_duration(Millis(7'200'000)) == "2h");
}

TEST_CASE("body excerpts are bounded, printable and valid UTF-8 cut on a character boundary") {
  CHECK(body_excerpt("  {\"a\":1}\n") == "{\"a\":1}");
  CHECK(body_excerpt("a\tb") == "a b");
  // The "…" counts in the bound.
  CHECK(body_excerpt(std::string(300, 'x'), 10) == std::string(7, 'x') + "\xe2\x80\xa6");
  SUBCASE("a multibyte character is never split") {
    std::string e_acute;
    for (int i = 0; i < 10; ++i) e_acute += "\xC3\xA9";  // é
    const std::string cut = body_excerpt(e_acute, 8);
    CHECK(cut == "\xC3\xA9\xC3\xA9\xE2\x80\xA6");  // 2 × é + …, 7 bytes
    CHECK(is_valid_utf8(body_excerpt(e_acute, 9)));
  }
  SUBCASE("invalid bytes become U+FFFD, control characters spaces, trimmed") {
    CHECK(body_excerpt("\xE9" "chec") == "\xEF\xBF\xBD" "chec");
    CHECK(body_excerpt(std::string("\x00\x1B" "a\x00" "b\x07", 6)) == "a b");
  }
}

TEST_CASE("the depth pre-scan counts brackets outside strings, without recursion") {
  CHECK_FALSE(json_deeper_than(std::string(64, '[') + std::string(64, ']')));
  CHECK(json_deeper_than(std::string(65, '[') + std::string(65, ']')));
  CHECK(json_deeper_than(std::string(400'000, '[')));  // one loop, no stack
  CHECK(json_deeper_than(std::string(40, '{') + std::string(30, '[')));
  SUBCASE("brackets inside strings, escaped quotes included, do not count") {
    const std::string in_string = "{\"a\":\"" + std::string(100, '[') + "\\\"" + std::string(100, '{') + "\"}";
    CHECK_FALSE(json_deeper_than(in_string));
    CHECK(Json::parse(in_string).is_object());
  }
  SUBCASE("closing brackets free depth for later ones") {
    std::string wide;
    for (int i = 0; i < 100; ++i) wide += std::string(60, '[') + std::string(60, ']');
    CHECK_FALSE(json_deeper_than(wide));
  }
}

TEST_CASE("a 2xx is a success whatever its body") {
  StepCall call;
  call.step = "pay";
  call.service.name = "payments";
  call.operation = "charge";
  const auto now = std::chrono::system_clock::now();
  auto classify = [&](unsigned status, std::string_view body) { return classify_reply(call, status, "", body, "", now); };
  for (std::string_view empty : {"", "  \r\n"}) {
    StepResult r = classify(200, empty);
    CHECK(r.outcome == Outcome::kOk);
    CHECK(r.output == Json::object());
    CHECK(r.note.empty());
  }
  CHECK(classify(200, R"({"id":1})").output == Json{{"id", 1}});
  StepResult r = classify(200, "<html>");
  CHECK(r.outcome == Outcome::kOk);
  CHECK(r.output == Json::object());
  CHECK(r.note == "the reply is not JSON: <html>");
  r = classify(202, std::string(65, '[') + std::string(65, ']'));
  CHECK(r.outcome == Outcome::kOk);
  CHECK(r.note == "the reply is nested deeper than 64 levels");
  r = classify(200, std::string(64, '[') + std::string(64, ']'));
  CHECK(r.outcome == Outcome::kOk);
  CHECK(r.note.empty());
  r = classify(200, "{\"name\":\"\xE9\"}");  // invalid UTF-8 inside a JSON string
  CHECK(r.outcome == Outcome::kOk);
  CHECK(r.note == "the reply is not JSON: {\"name\":\"\xEF\xBF\xBD\"}");
  // The parser would stop at a NUL and take what comes before it as the
  // reply: JSON text holds no raw NUL, so the body is not JSON.
  r = classify(200, std::string("{\"id\":1}\0garbage", 17));
  CHECK(r.outcome == Outcome::kOk);
  CHECK(r.output == Json::object());
  CHECK(r.note.find("the reply is not JSON") == 0);
  CHECK(classify(200, "[1,2]").output == Json{1, 2});  // the body as it is, whatever its type

  SUBCASE("cut off or too large after a 2xx: still a success; other statuses are classified") {
    r = classify_partial_reply(call, 200, "OK", "{\"id\"", "the reply was cut off: partial message", "", now);
    CHECK(r.outcome == Outcome::kOk);
    CHECK(r.output == Json::object());
    CHECK(r.note == "the reply was cut off: partial message");
    r = classify_partial_reply(call, 500, "Internal Server Error", "", "the reply is larger than 1 MiB", "3", now);
    CHECK(r.outcome == Outcome::kTransient);
    CHECK(r.error == "payments.charge: 500 Internal Server Error (the reply is larger than 1 MiB)");
    CHECK(r.retry_after == Millis(3000));
    r = classify_partial_reply(call, 409, "Conflict", "{\"error\":\"ta", "the reply was cut off: partial message", "", now);
    CHECK(r.outcome == Outcome::kFailed);
    CHECK(r.error == "payments.charge: 409 {\"error\":\"ta (the reply was cut off: partial message)");
  }
}

TEST_CASE("errors quoting a non-2xx body are valid UTF-8 of at most 512 bytes") {
  StepCall call;
  call.service.name = "payments";
  call.operation = "charge";
  const auto now = std::chrono::system_clock::now();
  std::string big;
  for (int i = 0; i < 1000; ++i) big += "\xF0\x9F\x92\xB3";  // 💳, 4 KB
  for (const std::string& body : {big, std::string(4096, '\xFF'), std::string(4096, '\0')}) {
    StepResult r = classify_reply(call, 422, "Unprocessable Entity", body, "", now);
    CHECK(r.outcome == Outcome::kFailed);
    CHECK(is_valid_utf8(r.error));
    CHECK(r.error.size() <= kMaxServiceTextBytes);
  }
  // A reason phrase is the service's text too.
  StepResult r = classify_reply(call, 418, "I'm a \xFF" "teapot", "", "", now);
  CHECK(r.error == "payments.charge: 418 I'm a \xEF\xBF\xBD" "teapot");
}
