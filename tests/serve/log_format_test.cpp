// `usher serve --log-format json`: every line on stderr is one JSON object,
// and a saga's outcome line carries its id and correlation id.
#include <doctest/doctest.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "serve/test_http.h"
#include "support/recording_service.h"
#include "support/temp_dir.h"
#include "support/test_store.h"

using nlohmann::json;
namespace http = boost::beast::http;
using namespace std::chrono_literals;
using usher::test::Child;
using usher::test::RecordingService;
using usher::test::TempDir;

TEST_CASE("usher serve --log-format json writes one JSON object per line, the outcome with saga and correlation id") {
  TempDir dir;
  RecordingService service(1ms, 5ms);
  std::filesystem::create_directories(dir.file("workflows"));
  std::ofstream(dir.file("workflows/one-step.yaml"))
      << "saga: one-step\nversion: 1\nservices:\n  seats: { http: { url: \"" << service.url() << "\" } }\n"
      << "steps:\n  - name: reserve\n    call: seats.hold\n";
  const std::string log = dir.file("serve.log");
  Child server({"/bin/sh", "-c", "log=$1; shift; exec \"$@\" 2>\"$log\"", "sh", log, USHER_BINARY_DIR "/cli/usher",
                "serve", "--db", usher::test::saga_log_at(dir.file("usher.db")), "--workflows", dir.file("workflows"),
                "--listen", "127.0.0.1:0", "--log-format", "json", "--log-level", "info"});
  const uint16_t port = usher::test::listening_port(server);
  auto started = usher::test::request(port, http::verb::post, "/v1/workflows/one-step/sagas?wait=10s", "{}",
                                      {{"X-Correlation-Id", "order-77"}});
  REQUIRE(started.status == 201);
  REQUIRE(started.json()["status"] == "completed");
  const std::string id = started.json()["id"];
  auto stopped = server.signal_and_wait(SIGTERM, 10s);
  REQUIRE(stopped.has_value());
  CHECK(*stopped == 0);

  std::ifstream in(log);
  std::string line;
  int lines = 0;
  bool outcome = false;
  while (std::getline(in, line)) {
    ++lines;
    const json j = json::parse(line, nullptr, false);
    REQUIRE_MESSAGE(j.is_object(), "not a JSON object: " << line);
    CHECK(j.contains("time"));
    CHECK(j.contains("level"));
    CHECK(j.contains("message"));
    if (j.value("saga_id", "") == id && j.value("message", "") == "saga completed") {
      outcome = true;
      CHECK(j["correlation_id"] == "order-77");
      CHECK(j["workflow"] == "one-step");
      CHECK(j["level"] == "info");
    }
  }
  CHECK(lines >= 3);
  CHECK_MESSAGE(outcome, "no 'saga completed' line for " << id);
}
