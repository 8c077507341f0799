// The HTTP step adapter over TLS, against a local HTTPS step service with
// certificates the test makes (support/test_certificates.h): a certificate
// that verifies completes, on one kept-alive connection; one that does not
// (another name, an unknown CA, expired) is a definite failure that never
// left, with the reason in the error, and the service sees no request; a
// service that requires a client certificate gets one from tls.cert_file.
#include <doctest/doctest.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "call_helpers.h"
#include "support/test_certificates.h"
#include "support/tls_step_service.h"

using namespace usher;
using namespace usher::test;

namespace {

StepCall tls_call(const std::string& url, const std::string& ca_file) {
  StepCall c = make_call(url);
  c.service.tls.ca_file = ca_file;
  return c;
}

// The service counts a failed handshake once it has seen the client give up.
void wait_for_failed_handshakes(const TlsStepService& service, int n) {
  for (int i = 0; i < 400 && service.failed_handshakes() < n; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
}

}  // namespace

TEST_CASE("an https service whose certificate verifies is called over TLS, on one kept-alive connection") {
  TestCertificates certs;
  TlsStepService service(certs.server());
  HttpStepAdapter adapter;

  SUBCASE("by host name: the name is sent as SNI and checked against the certificate") {
    for (int i = 1; i <= 2; ++i) {
      StepResult r = call_sync(adapter, tls_call(service.url("localhost"), certs.ca()));
      REQUIRE(r.outcome == Outcome::kOk);
      CHECK(r.output == Json{{"served", "/hold"}, {"n", i}});
    }
    CHECK(service.server_names() == std::vector<std::string>{"localhost"});
  }
  SUBCASE("by IP address: no SNI, the address is checked against the certificate") {
    for (int i = 1; i <= 2; ++i) REQUIRE(call_sync(adapter, tls_call(service.url(), certs.ca())).outcome == Outcome::kOk);
    CHECK(service.server_names() == std::vector<std::string>{""});
  }
  CHECK(service.connections() == 1);
  CHECK(service.handshakes() == 1);
  CHECK(adapter.stats().tls_handshakes == 1);
  CHECK(adapter.stats().connections_opened == 1);
  auto seen = service.requests();
  REQUIRE(seen.size() == 2);
  CHECK(seen[0].method == "POST");
  CHECK(seen[0].body == R"({"concertId":"C-7","seat":"A1"})");
  CHECK(seen[0].idempotency_key == "0190a1b2-0000-7000-8000-000000000001:reserve:action");
  CHECK(seen[1].connection == 1);
}

TEST_CASE("a TLS connection the service closed while idle is not reused: the next call makes a new one") {
  TestCertificates certs;
  TlsStepService service(certs.server());
  service.close_idle_after(std::chrono::milliseconds(50));
  HttpStepAdapter adapter;
  REQUIRE(call_sync(adapter, tls_call(service.url("localhost"), certs.ca())).outcome == Outcome::kOk);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  StepResult r = call_sync(adapter, tls_call(service.url("localhost"), certs.ca()));
  REQUIRE(r.outcome == Outcome::kOk);
  CHECK(r.output["n"] == 2);
  CHECK(service.connections() == 2);
  CHECK(service.handshakes() == 2);
  CHECK(adapter.stats().stale_retries == 0);  // seen closed before reuse, not after sending on it
  CHECK(adapter.stats().requests_sent == 2);
}

TEST_CASE("a certificate that does not verify fails the call for good, and no request reaches the service") {
  TestCertificates certs;
  struct Case {
    const char* name;
    CertAndKey server;
    std::string host;
    std::string ca_file;
    std::string why;
  };
  const Case cases[] = {
      {"a certificate for another host name", certs.wrong_name(), "localhost", certs.ca(), "hostname mismatch"},
      {"a certificate for another address", certs.wrong_name(), "127.0.0.1", certs.ca(), "IP address mismatch"},
      {"a certificate from a CA the service's ca_file does not hold", certs.unknown_ca(), "localhost", certs.ca(),
       "unable to get local issuer certificate"},
      {"a certificate from a CA the system does not know", certs.server(), "localhost", "",
       "unable to get local issuer certificate"},
      {"an expired certificate", certs.expired(), "localhost", certs.ca(), "certificate has expired"},
  };
  for (const Case& c : cases) {
    SUBCASE(c.name) {
      TlsStepService service(c.server);
      HttpStepAdapter adapter;
      StepResult r = call_sync(adapter, tls_call(service.url(c.host), c.ca_file));
      CHECK(r.outcome == Outcome::kFailed);  // not kTransient: no retry will make it verify
      CHECK_FALSE(r.sent);                   // the handshake ends before any request byte
      CHECK(r.error == "step \"reserve\": TLS handshake with seats (" + c.host + ":" +
                           std::to_string(service.port()) + ") failed: certificate verify failed (" + c.why + ")");
      wait_for_failed_handshakes(service, 1);
      CHECK(service.failed_handshakes() == 1);
      CHECK(service.handshakes() == 0);
      CHECK(service.requests().empty());
      CHECK(adapter.stats().tls_handshakes == 0);
    }
  }
}

TEST_CASE("a service that requires a client certificate accepts tls.cert_file and refuses a call without one") {
  TestCertificates certs;
  TlsStepService service(certs.server(), certs.ca());
  HttpStepAdapter adapter;

  SUBCASE("with the client certificate") {
    StepCall call = tls_call(service.url("localhost"), certs.ca());
    call.service.tls.cert_file = certs.client().cert;
    call.service.tls.key_file = certs.client().key;
    StepResult r = call_sync(adapter, call);
    REQUIRE(r.outcome == Outcome::kOk);
    CHECK(r.output["served"] == "/hold");
    CHECK(service.requests().size() == 1);
  }
  SUBCASE("without one: refused, never left, and not retried as transient") {
    StepResult r = call_sync(adapter, tls_call(service.url("localhost"), certs.ca()));
    CHECK(r.outcome == Outcome::kFailed);
    CHECK_FALSE(r.sent);
    CHECK(r.error.starts_with("step \"reserve\": TLS handshake with seats (localhost:" +
                              std::to_string(service.port()) + ") failed: the service refused the client certificate: "));
    CHECK(service.requests().empty());
  }
}

TEST_CASE("tls files that cannot be used are refused at bind time and by every call, naming the file") {
  TestCertificates certs;
  Service s;
  s.name = "seats";
  s.url = "https://localhost:7443";
  s.tls.ca_file = certs.ca();
  CHECK(HttpStepAdapter::check_service(s).is_ok());

  SUBCASE("a ca_file that is not PEM") {
    s.tls.ca_file = certs.dir() + "/ca.cnf";
    CHECK(HttpStepAdapter::check_service(s).message() ==
          "service \"seats\": tls.ca_file \"" + s.tls.ca_file + "\": cannot be read as PEM CA certificates: " +
              "no certificate or crl found");
  }
  SUBCASE("a key that is not the certificate's") {
    s.tls.cert_file = certs.client().cert;
    s.tls.key_file = certs.server().key;
    CHECK(HttpStepAdapter::check_service(s).message() ==
          "service \"seats\": tls.key_file \"" + s.tls.key_file + "\": is not the key of tls.cert_file \"" +
              s.tls.cert_file + "\"");
  }
  SUBCASE("a missing cert_file: the call fails for good before anything is sent") {
    s.tls.cert_file = certs.dir() + "/nowhere.pem";
    s.tls.key_file = certs.client().key;
    CHECK(HttpStepAdapter::check_service(s).message().starts_with(
        "service \"seats\": tls.cert_file \"" + s.tls.cert_file + "\": cannot be read as a PEM certificate"));
    HttpStepAdapter adapter;
    StepCall call = make_call(s.url);
    call.service.tls = s.tls;
    StepResult r = call_sync(adapter, call);
    CHECK(r.outcome == Outcome::kFailed);
    CHECK_FALSE(r.sent);
    CHECK(r.error.starts_with("step \"reserve\": service \"seats\": tls.cert_file \""));
  }
}

TEST_CASE("an https service and a plain one on the same adapter each get their own pool") {
  TestCertificates certs;
  TlsStepService tls_service(certs.server());
  TestServer plain([](const SeenRequest&) { return reply(200, R"({"plain":true})"); });
  HttpStepAdapter adapter;
  for (int i = 0; i < 2; ++i) {
    CHECK(call_sync(adapter, tls_call(tls_service.url(), certs.ca())).outcome == Outcome::kOk);
    CHECK(call_sync(adapter, make_call(plain.url())).output == Json{{"plain", true}});
  }
  CHECK(tls_service.connections() == 1);
  CHECK(plain.connections_accepted() == 1);
  CHECK(adapter.stats().connections_opened == 2);
}
