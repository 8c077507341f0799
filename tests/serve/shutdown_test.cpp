// `usher serve` on SIGTERM (issue: shutdown must not double-book): no new
// attempt leaves once the signal came, the calls already out get
// shutdown_grace to answer and their answers are logged, and a ?wait start
// cut short answers 202 with the saga and its Location, never a 503 without
// the saga's id.
#include <doctest/doctest.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "serve/serve_rig.h"
#include "serve/test_http.h"
#include "support/recording_service.h"
#include "support/temp_dir.h"
#include "support/test_store.h"
#include "usher/inspect.h"

using nlohmann::json;
namespace http = boost::beast::http;
using namespace std::chrono_literals;
using usher::test::Child;
using usher::test::RecordingService;
using usher::test::TempDir;

namespace {

// reserve -> pay, both on `service`; pay would be sent as soon as reserve answers.
void write_workflow(const TempDir& dir, const RecordingService& service) {
  std::filesystem::create_directories(dir.file("workflows"));
  std::ofstream(dir.file("workflows/two-steps.yaml")) << "saga: two-steps\nversion: 1\nservices:\n"
                                                       << "  seats: { http: { url: \"" << service.url() << "\" } }\n"
                                                       << "  payments: { http: { url: \"" << service.url() << "\" } }\n"
                                                       << "defaults:\n  timeout: 20s\n"
                                                       << "steps:\n"
                                                       << "  - name: reserve\n    call: seats.hold\n"
                                                       << "    compensate: { call: seats.release }\n"
                                                       << "  - name: pay\n    call: payments.charge\n"
                                                       << "    with: { amount: 10 }\n";
}

// usher serve on the workflow above, with a shutdown grace of `grace`.
struct Server : usher::test::Server {
  Server(const TempDir& dir, const std::string& grace)
      : usher::test::Server(dir, {"--shutdown-grace", grace}, dir.file("workflows")) {}
};

// Waits (bounded) until the service has seen `n` requests.
void wait_for_calls(const RecordingService& service, size_t n) {
  for (int i = 0; i < 1000 && service.calls().size() < n; ++i) std::this_thread::sleep_for(10ms);
  REQUIRE(service.calls().size() >= n);
}

}  // namespace

TEST_CASE("SIGTERM: the call in flight answers within the grace and is logged, no new attempt leaves, "
          "and a ?wait start answers 202 with its saga") {
  TempDir dir;
  RecordingService service(1500ms, 1500ms);  // every answer takes 1.5 s
  write_workflow(dir, service);
  Server server(dir, "10s");

  usher::test::HttpReply waited;
  std::thread client([&] {
    waited = usher::test::request(server.port, http::verb::post, "/v1/workflows/two-steps/sagas?wait=30s", "{}", {},
                                  20s);
  });
  wait_for_calls(service, 1);  // reserve's hold is out
  const auto signalled = std::chrono::steady_clock::now();
  auto status = server.child.signal_and_wait(SIGTERM, 8s);
  const auto took = std::chrono::steady_clock::now() - signalled;
  client.join();

  REQUIRE(status.has_value());
  CHECK(*status == 0);
  // It waited for the hold's answer (1.5 s), not for the whole grace.
  CHECK(took >= 1s);
  CHECK(took < 6s);

  // The ?wait was cut short by the shutdown: 202, the saga, where to find it.
  REQUIRE(waited.status == 202);
  const json saga = waited.json();
  REQUIRE(saga.is_object());
  const std::string id = saga["id"];
  CHECK(waited.header("Location") == "/v1/sagas/" + id);
  CHECK(saga["status"] == "running");

  // Only the hold ever left: pay was decided after SIGTERM and stays
  // scheduled in the log, to be sent when usher next starts.
  const auto calls = service.calls();
  REQUIRE(calls.size() == 1);
  CHECK(calls[0].operation == "hold");

  auto log = usher::LogInspector::open(usher::test::saga_log_at(dir.file("usher.db")));
  REQUIRE(log.is_ok());
  auto events = log.value()->events(id);
  REQUIRE(events.is_ok());
  std::vector<std::string> trace;
  for (const json& e : events.value()["events"])
    trace.push_back(e["type"].get<std::string>() + (e["step"].is_string() ? " " + e["step"].get<std::string>() : ""));
  CHECK(trace == std::vector<std::string>{"SagaStarted", "StepScheduled reserve", "StepSucceeded reserve",
                                          "StepScheduled pay"});

  SUBCASE("the next start sends the scheduled attempt, and the saga completes") {
    Server again(dir, "5s");
    for (int i = 0; i < 500; ++i) {
      auto s = usher::test::request(again.port, http::verb::get, "/v1/sagas/" + id);
      if (s.json().is_object() && s.json()["status"] == "completed") break;
      std::this_thread::sleep_for(20ms);
    }
    CHECK(usher::test::request(again.port, http::verb::get, "/v1/sagas/" + id).json()["status"] == "completed");
    CHECK(service.calls().size() == 2);
    CHECK(service.calls()[1].operation == "charge");
  }
}

TEST_CASE("SIGTERM: a call that does not answer within the grace is left to the next start") {
  TempDir dir;
  RecordingService service(20s, 20s);  // never answers in time
  write_workflow(dir, service);
  Server server(dir, "500ms");
  auto started = usher::test::request(server.port, http::verb::post, "/v1/workflows/two-steps/sagas", "{}");
  REQUIRE(started.status == 201);
  wait_for_calls(service, 1);
  const auto signalled = std::chrono::steady_clock::now();
  auto status = server.child.signal_and_wait(SIGTERM, 8s);
  REQUIRE(status.has_value());
  CHECK(*status == 0);
  CHECK(std::chrono::steady_clock::now() - signalled < 4s);
}

TEST_CASE("shutdown_grace is checked like every setting") {
  TempDir dir;
  RecordingService service(10ms, 10ms);
  write_workflow(dir, service);
  Child bad({USHER_BINARY_DIR "/cli/usher", "serve", "--db", usher::test::saga_log_at(dir.file("usher.db")),
             "--workflows", dir.file("workflows"), "--listen", "127.0.0.1:0", "--shutdown-grace", "soon"});
  auto status = bad.signal_and_wait(0, 10s);
  REQUIRE(status.has_value());
  CHECK(*status == 2);
}
