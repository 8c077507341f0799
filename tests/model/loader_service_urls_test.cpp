// Service addresses in `services:`: a workflow validates with exactly the
// URLs and broker lists the step adapters can use (http:// and https:// for
// HTTP services; host:port, optionally after one of librdkafka's security
// protocols, for Kafka brokers).
#include <doctest/doctest.h>

#include "test_util.h"
#include "usher/url.h"

using usher::test::errors;
using usher::test::load;
using usher::test::Lines;

namespace {

// One http service at `url` (line 2) and one step calling it.
std::string http_workflow(const std::string& url) {
  return "saga: test\n"
         "services: { seats: { http: { url: \"" + url + "\" } } }\n"
         "steps: [{ name: reserve, call: seats.hold }]\n";
}

// One kafka service with `brokers` (line 2) and one step calling it.
std::string kafka_workflow(const std::string& brokers) {
  return "saga: test\n"
         "services: { payments: { kafka: { topic: payments.requests, brokers: \"" + brokers + "\" } } }\n"
         "steps: [{ name: pay, call: payments.charge }]\n";
}

}  // namespace

TEST_CASE("accepts http:// and https:// service URLs") {
  for (const char* url : {"http://127.0.0.1:7101", "http://seats.internal", "http://seats.internal/api/v1/",
                          "http://[::1]:8080/v1", "http://h:65535", "https://pay.example.com",
                          "https://127.0.0.1:7443/v1"}) {
    CAPTURE(url);
    auto r = load(http_workflow(url));
    CHECK(errors(r) == Lines{});
  }
  auto r = load(http_workflow("http://seats.internal/api/v1//"));
  REQUIRE(r.ok());
  CHECK(r.definition->services.at("seats").url == "http://seats.internal/api/v1");
  r = load(http_workflow("https://pay.example.com/"));
  REQUIRE(r.ok());
  CHECK(r.definition->services.at("seats").url == "https://pay.example.com");
  CHECK(r.definition->services.at("seats").tls == usher::ServiceTls{});  // the system's CAs
}

TEST_CASE("refuses every other scheme at the url, naming http[s]:// as the ones accepted") {
  CHECK(errors(load(http_workflow("ftp://seats.internal"))) ==
        Lines{"x.yaml:2:35: service \"seats\": url \"ftp://seats.internal\": unsupported scheme \"ftp\" (expected "
              "http[s]://host[:port][/path])"});
  CHECK(errors(load(http_workflow("HTTP://seats.internal"))) ==
        Lines{"x.yaml:2:35: service \"seats\": url \"HTTP://seats.internal\": unsupported scheme \"HTTP\" (expected "
              "http[s]://host[:port][/path])"});
  CHECK(errors(load(http_workflow("seats.internal:7101"))) ==
        Lines{"x.yaml:2:35: service \"seats\": url \"seats.internal:7101\": expected http[s]://host[:port][/path]"});
  SUBCASE("a scheme that comes from the environment is checked once substituted") {
    usher::test::EnvGuard env(std::map<std::string, std::string>{{"SEATS_URL", "wss://seats.internal"}});
    auto r = load(http_workflow("${env.SEATS_URL:-http://127.0.0.1:7101}"));
    REQUIRE(r.diagnostics.size() == 1);
    CHECK(r.diagnostics[0].message.starts_with("service \"seats\": url \"wss://seats.internal\": unsupported scheme"));
  }
}

TEST_CASE("a service URL loads exactly when the HTTP step adapter's parser takes it") {
  // The adapter parses with parse_http_url (adapters/http/step/service_url.cpp).
  for (const char* url : {"http://127.0.0.1:7101", "https://x", "ftp://x", "http://", "http://:80", "http://h:0",
                          "http://h:70000", "http://h?x=1", "http://h/v1#top", "http://user:pw@h", "http://[::1",
                          "http://[::1]:1", "h:1", "Http://h", "ws://h", "unix:///run/seats.sock"}) {
    CAPTURE(url);
    auto adapter = usher::parse_http_url(url, {.what = "service URL", .allow_https = true});
    auto r = load(http_workflow(url));
    CHECK(r.ok() == adapter.is_ok());
    if (!adapter.is_ok() && r.diagnostics.size() == 1) {
      // The same reason, naming the field as the workflow does.
      std::string why = adapter.status().message().substr(adapter.status().message().find("\": ") + 3);
      CHECK(r.diagnostics[0].message.ends_with(why));
    }
  }
}

TEST_CASE("accepts Kafka brokers with no scheme or one of librdkafka's security protocols") {
  for (const char* brokers : {"127.0.0.1:9092", "k1:9092,k2:9092", "k1:9092, k2:9092", "PLAINTEXT://k1:9092",
                              "plaintext://k1:9092", "SSL://k1:9093", "SASL_PLAINTEXT://k1:9092",
                              "sasl_ssl://k1:9093,sasl_ssl://k2:9093", "[::1]:9092"}) {
    CAPTURE(brokers);
    auto r = load(kafka_workflow(brokers));
    CHECK(errors(r) == Lines{});
  }
}

TEST_CASE("refuses a Kafka broker with any other scheme") {
  CHECK(errors(load(kafka_workflow("kafka://k1:9092"))) ==
        Lines{"x.yaml:2:69: service \"payments\": broker \"kafka://k1:9092\" has an unsupported scheme \"kafka\" "
              "(expected host:port, optionally after PLAINTEXT://, SSL://, SASL_PLAINTEXT:// or SASL_SSL://)"});
  CHECK(errors(load(kafka_workflow("k1:9092, plaintxt://k2:9092"))) ==
        Lines{"x.yaml:2:69: service \"payments\": broker \"plaintxt://k2:9092\" has an unsupported scheme "
              "\"plaintxt\" (expected host:port, optionally after PLAINTEXT://, SSL://, SASL_PLAINTEXT:// or "
              "SASL_SSL://) (did you mean \"PLAINTEXT\"?)"});
  CHECK_FALSE(load(kafka_workflow("http://k1:9092")).ok());
}
