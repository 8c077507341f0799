// An https:// service's `tls:` block: ca_file, and cert_file with key_file;
// relative paths taken from the workflow file's directory; every file checked
// to be readable, at its line and column; no `tls:` on a plain http:// url.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "support/temp_dir.h"
#include "test_util.h"

using usher::test::errors;
using usher::test::Lines;
using usher::test::TempDir;

namespace {

// One http service at `url` with `tls` (line 6, from column 7) and one step.
std::string tls_workflow(const std::string& url, const std::string& tls) {
  return "saga: test\n"
         "services:\n"
         "  seats:\n"
         "    http:\n"
         "      url: \"" + url + "\"\n"
         "      tls: " + tls + "\n"
         "steps: [{ name: reserve, call: seats.hold }]\n";
}

usher::LoadResult load_at(const std::string& yaml, const std::string& file) {
  return usher::load_definition(yaml, file, &usher::test::fake_env_lookup);
}

void touch(const std::string& path) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << "-----BEGIN CERTIFICATE-----\n";
}

}  // namespace

TEST_CASE("a tls block gives an https service its CA and client certificate files") {
  TempDir dir;
  touch(dir.file("ca.pem"));
  touch(dir.file("client.pem"));
  touch(dir.file("client.key"));
  auto r = load_at(tls_workflow("https://127.0.0.1:7443", "{ ca_file: \"" + dir.file("ca.pem") + "\", cert_file: \"" +
                                                               dir.file("client.pem") + "\", key_file: \"" +
                                                               dir.file("client.key") + "\" }"),
                   dir.file("w.yaml"));
  REQUIRE(errors(r) == Lines{});
  const auto& tls = r.definition->services.at("seats").tls;
  CHECK(tls.ca_file == dir.file("ca.pem"));
  CHECK(tls.cert_file == dir.file("client.pem"));
  CHECK(tls.key_file == dir.file("client.key"));

  SUBCASE("an empty block means the system's CAs") {
    auto e = load_at(tls_workflow("https://127.0.0.1:7443", "{}"), dir.file("w.yaml"));
    REQUIRE(errors(e) == Lines{});
    CHECK(e.definition->services.at("seats").tls == usher::ServiceTls{});
  }
}

TEST_CASE("relative tls paths are taken from the workflow file's directory") {
  TempDir dir;
  touch(dir.file("certs/ca.pem"));
  auto r = load_at(tls_workflow("https://pay.internal", "{ ca_file: certs/ca.pem }"), dir.file("w.yaml"));
  REQUIRE(errors(r) == Lines{});
  CHECK(r.definition->services.at("seats").tls.ca_file == dir.file("certs/ca.pem"));

  SUBCASE("and may come from the environment") {
    usher::test::EnvGuard env(std::map<std::string, std::string>{{"PAY_CA", "certs/ca.pem"}});
    auto e = load_at(tls_workflow("https://pay.internal", "{ ca_file: \"${env.PAY_CA}\" }"), dir.file("w.yaml"));
    REQUIRE(errors(e) == Lines{});
    CHECK(e.definition->services.at("seats").tls.ca_file == dir.file("certs/ca.pem"));
  }
}

TEST_CASE("a tls file that cannot be read is a load error at its value") {
  TempDir dir;
  std::filesystem::create_directories(dir.file("certs"));
  const std::string w = dir.file("w.yaml");
  CHECK(errors(load_at(tls_workflow("https://pay.internal", "{ ca_file: nope.pem }"), w)) ==
        Lines{w + ":6:23: service \"seats\": \"http.tls.ca_file\" \"" + dir.file("nope.pem") + "\" does not exist"});
  CHECK(errors(load_at(tls_workflow("https://pay.internal", "{ ca_file: certs }"), w)) ==
        Lines{w + ":6:23: service \"seats\": \"http.tls.ca_file\" \"" + dir.file("certs") + "\" is a directory"});
  SUBCASE("but not in a definition read back from the log, whose files belong to the machine that ran it") {
    auto r = load_at(tls_workflow("https://pay.internal", "{ ca_file: nope.pem }"), "<log:0123456789ab>");
    REQUIRE(errors(r) == Lines{});
    CHECK(r.definition->services.at("seats").tls.ca_file == "nope.pem");
  }
}

TEST_CASE("a tls block is refused when it is incomplete, misspelt or on a plain http url") {
  TempDir dir;
  touch(dir.file("c.pem"));
  const std::string w = dir.file("w.yaml");
  CHECK(errors(load_at(tls_workflow("https://pay.internal", "{ cert_file: c.pem }"), w)) ==
        Lines{w + ":6:14: service \"seats\": \"http.tls.cert_file\" needs \"http.tls.key_file\" too (a client "
                  "certificate and its private key go together)"});
  CHECK(errors(load_at(tls_workflow("https://pay.internal", "{ key_file: c.pem }"), w)) ==
        Lines{w + ":6:14: service \"seats\": \"http.tls.key_file\" needs \"http.tls.cert_file\" too (a client "
                  "certificate and its private key go together)"});
  CHECK(errors(load_at(tls_workflow("https://pay.internal", "{ ca_flie: c.pem }"), w)) ==
        Lines{w + ":6:14: service \"seats\": unknown field \"ca_flie\" in \"http.tls\" (did you mean \"ca_file\"?)"});
  CHECK(errors(load_at(tls_workflow("http://127.0.0.1:7101", "{ ca_file: c.pem }"), w)) ==
        Lines{w + ":6:7: service \"seats\": \"http.tls\" is for an https:// url; \"http://127.0.0.1:7101\" is plain "
                  "http"});
  CHECK(errors(load_at(tls_workflow("https://pay.internal", "c.pem"), w)) ==
        Lines{w + ":6:12: service \"seats\": expected the tls settings for \"http.tls\" (a mapping of key: value)"});
  auto misspelt = load_at("saga: test\nservices: { seats: { http: { url: \"https://h\", tsl: {} } } }\n"
                          "steps: [{ name: reserve, call: seats.hold }]\n",
                          w);
  REQUIRE(misspelt.diagnostics.size() == 1);
  CHECK(misspelt.diagnostics[0].message ==
        "service \"seats\": unknown field \"tsl\" in \"http\" (did you mean \"tls\"?)");
}
