// TLS to step services (issue 17, item 6) through the real `usher serve`: a
// payment service on https:// whose certificate verifies against the
// workflow's own CA file (a path relative to the workflow) takes part in a
// booking like any other; one whose certificate expired fails the step once,
// never sent and never retried, and the step before it is compensated; a tls
// file that is not PEM keeps `serve` from starting, naming the file.
#include <doctest/doctest.h>

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "e2e_harness.h"
#include "scripted_service.h"
#include "support/read_file.h"
#include "support/test_certificates.h"
#include "support/tls_step_service.h"

using namespace usher::e2e;
using usher::test::TestCertificates;
using usher::test::TlsStepService;

namespace {

// `shop` over plain HTTP at URL, `pay` over TLS at PAY_URL, trusted through
// certs/ca.pem beside the workflow. Three attempts for each step: a
// certificate that does not verify must not use them.
const char* const kBooking = R"(saga: tls-booking
version: 1
services:
  shop: { http: { url: "URL" } }
  pay:
    http:
      url: "PAY_URL"
      tls: { ca_file: certs/ca.pem }
defaults:
  timeout: 5s
  retry: { attempts: 3, backoff: 100ms }
steps:
  - name: reserve
    call: shop.hold
    with: { seat: "${input.seat}" }
    compensate: { call: shop.release, with: {} }
  - name: pay
    call: pay.charge
    with: { seat: "${input.seat}" }
)";

std::string with_pay_url(std::string yaml, const std::string& url) {
  yaml.replace(yaml.find("PAY_URL"), 7, url);
  return yaml;
}

void trust_ca(const TempDir& dir, const TestCertificates& certs) {
  std::filesystem::create_directories(dir.workflows() + "/certs");
  std::filesystem::copy_file(certs.ca(), dir.workflows() + "/certs/ca.pem");
}

std::vector<json> events_named(const json& events, const std::string& type, const std::string& step) {
  std::vector<json> out;
  for (const json& e : events)
    if (e["type"] == type && e.value("step", std::string()) == step) out.push_back(e);
  return out;
}

}  // namespace

TEST_CASE("tls: a booking whose payment service is https completes, its certificate verified") {
  TestCertificates certs;
  TlsStepService pay(certs.server());
  ScriptedService shop;
  TempDir dir;
  trust_ca(dir, certs);
  write_yaml(dir, "tls-booking", with_pay_url(kBooking, pay.url("localhost")), shop.url());
  Server server(dir);

  for (int i = 1; i <= 2; ++i) {
    auto r = server.start({{"seat", "A" + std::to_string(i)}}, "", "", "tls-booking");
    REQUIRE(r.status == 201);
    json saga = server.settled(r.json()["id"], 10s);
    CHECK(saga["status"] == "completed");
    CHECK(saga["steps"][1]["output"] == json{{"served", "/charge"}, {"n", i}});
  }
  auto seen = pay.requests();
  REQUIRE(seen.size() == 2);
  CHECK(seen[0].body == R"({"seat":"A1"})");
  CHECK(seen[1].connection == 1);  // the TLS connection was kept alive
  CHECK(pay.handshakes() == 1);
  CHECK(pay.server_names() == std::vector<std::string>{"localhost"});
}

TEST_CASE("tls: an expired certificate fails the payment once, never sent nor retried, and the seat is released") {
  TestCertificates certs;
  TlsStepService pay(certs.expired());
  ScriptedService shop;
  TempDir dir;
  trust_ca(dir, certs);
  write_yaml(dir, "tls-booking", with_pay_url(kBooking, pay.url("localhost")), shop.url());
  Server server(dir);

  auto r = server.start({{"seat", "A1"}}, "", "", "tls-booking");
  REQUIRE(r.status == 201);
  const std::string id = r.json()["id"];
  json saga = server.settled(id, 10s);
  CHECK(saga["status"] == "compensated");
  json events = server.events(id);
  auto failed = events_named(events, "StepFailed", "pay");
  REQUIRE(failed.size() == 1);  // one attempt of three: a definite failure is not retried
  CHECK(failed[0]["data"]["outcome"] == "failed");
  CHECK(failed[0]["data"]["sent"] == false);
  CHECK(failed[0]["data"]["error"] == "step \"pay\": TLS handshake with pay (localhost:" + std::to_string(pay.port()) +
                                         ") failed: certificate verify failed (certificate has expired)");
  CHECK(events_named(events, "RetryScheduled", "pay").empty());
  CHECK(pay.requests().empty());
  CHECK(pay.handshakes() == 0);
  CHECK(shop.requests("/release").size() == 1);  // reserve is compensated; pay, which never left, is not
}

TEST_CASE("tls: usher serve does not start when a service's tls file is not PEM, and names the file") {
  TestCertificates certs;
  TempDir dir;
  std::filesystem::create_directories(dir.workflows() + "/certs");
  std::ofstream(dir.workflows() + "/certs/ca.pem") << "not a certificate\n";
  write_yaml(dir, "tls-booking", with_pay_url(kBooking, "https://localhost:7443"), "http://127.0.0.1:7101");
  const std::string err = dir.file("serve.err");
  const std::string command = "timeout 20 '" USHER_BINARY_DIR "/cli/usher' serve --workflows '" + dir.workflows() +
                              "' --db '" + dir.db() + "' --listen 127.0.0.1:0 >/dev/null 2>'" + err + "'";
  const int status = std::system(command.c_str());
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 1);
  const std::string text = usher::test::read_file(err);
  CHECK(text.find(dir.workflows() + "/tls-booking.yaml:") != std::string::npos);
  CHECK(text.find("service \"pay\": tls.ca_file \"" + dir.workflows() + "/certs/ca.pem\": cannot be read as PEM CA "
                  "certificates") != std::string::npos);
}
