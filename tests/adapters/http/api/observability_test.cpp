// What operators read: /metrics (Prometheus names, the gauges from the log,
// attempts by kind and service, API requests by route) and the log lines
// (text or JSON, with the saga and correlation ids).
#include <doctest/doctest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>
#include <vector>

#include "api_fixture.h"
#include "http/api/log_line.h"
#include "http/api/request_observer.h"
#include "usher/inspect.h"

namespace {

using namespace usher;
using namespace usher::test;
namespace api = usher::api;

const std::string kGood = R"({"seat":"A1","amount":50})";
const std::string kDeclined = R"({"seat":"A2","amount":5000})";

bool has_line(const std::string& m, const std::string& line) { return m.find(line + "\n") != std::string::npos; }

#define CHECK_LINE(m, line)        \
  do {                             \
    INFO(line);                    \
    CHECK(has_line((m), (line)));  \
  } while (0)

Result<std::unique_ptr<Engine>> reopen(const std::string& db) {
  EngineOptions options;
  options.db_path = db;
  auto opened = Engine::open(options);
  if (!opened.is_ok()) return opened.status();
  auto engine = std::move(opened.value());
  for (auto [yaml, name] : {std::pair<std::string, const char*>{kApiBookingYaml, "booking.yaml"},
                            {kApiSlowYaml, "slow.yaml"},
                            {kApiFragileYaml, "fragile.yaml"}}) {
    if (Status s = engine->load(must_load(yaml, name)); !s.is_ok()) return s;
  }
  register_api_handlers(*engine, Jammed::kOnce);
  if (Status s = engine->resume(); !s.is_ok()) return s;
  return engine;
}

}  // namespace

TEST_CASE("usher_sagas counts the log by status, and is right after a restart") {
  ApiFixture f;
  CHECK(f.post("/v1/workflows/booking/sagas?wait=10s", kGood).json.value("status", "") == "completed");
  CHECK(f.post("/v1/workflows/booking/sagas?wait=10s", kGood).json.value("status", "") == "completed");
  CHECK(f.post("/v1/workflows/booking/sagas?wait=10s", kDeclined).json.value("status", "") == "compensated");
  CHECK(f.post("/v1/workflows/fragile/sagas?wait=10s", "{}").json.value("status", "") == "stuck");
  CHECK(f.post("/v1/workflows/slow/sagas", "{}").status == 201);  // stays running

  const std::string before = f.get("/metrics").body;
  CHECK_LINE(before, "usher_sagas{status=\"completed\"} 2");
  CHECK_LINE(before, "usher_sagas{status=\"compensated\"} 1");
  CHECK_LINE(before, "usher_sagas{status=\"stuck\"} 1");
  CHECK_LINE(before, "usher_sagas{status=\"running\"} 1");
  CHECK_LINE(before, "usher_sagas{status=\"terminated\"} 0");  // listed with 0: "stuck > 0" needs the series
  CHECK(before.find("# TYPE usher_sagas gauge\n") != std::string::npos);
  CHECK(before.find("usher_sagas_stuck_total") == std::string::npos);
  CHECK(before.find("usher_sagas_in_flight") == std::string::npos);
  CHECK_LINE(before, "usher_saga_transitions_total{workflow=\"fragile\",status=\"stuck\"} 1");

  // Restart: a new engine on the same file, and metrics that saw nothing.
  const std::string db = f.dir.file("usher.db");
  f.handler.reset();
  f.engine->shutdown();
  f.engine.reset();
  auto reopened = reopen(db);
  REQUIRE_MESSAGE(reopened.is_ok(), reopened.status().to_string());
  f.engine = std::move(reopened.value());
  f.handler = std::make_unique<api::ApiHandler>(*f.engine, nullptr, api::ApiHandlerOptions{});

  api::ApiMetrics fresh;
  const std::string after = fresh.render(*f.engine);
  CHECK_LINE(after, "usher_sagas{status=\"completed\"} 2");
  CHECK_LINE(after, "usher_sagas{status=\"compensated\"} 1");
  CHECK_LINE(after, "usher_sagas{status=\"stuck\"} 1");
  CHECK_LINE(after, "usher_sagas{status=\"running\"} 1");
  CHECK(after.find("usher_oldest_unfinished_saga_age_seconds ") != std::string::npos);
  CHECK(after.find("usher_oldest_unfinished_saga_age_seconds 0\n") == std::string::npos);  // the slow saga
  // And /metrics of a handler without ApiMetrics shows them too.
  CHECK_LINE(f.get("/metrics").body, "usher_sagas{status=\"stuck\"} 1");
}

TEST_CASE("the oldest unfinished saga's age is read from the log's answer at the scrape's time") {
  api::ApiMetrics metrics;
  const int64_t now = *parse_time("2026-12-06T16:01:30Z");
  SUBCASE("a saga started 90 s ago") {
    Json counts = {{"sagas", {{"running", 1}}}, {"total", 1}, {"oldest_unfinished_created_at", "2026-12-06T16:00:00.000Z"}};
    const std::string m = metrics.render(EngineStats{}, &counts, now);
    CHECK_LINE(m, "usher_oldest_unfinished_saga_age_seconds 90");
    CHECK_LINE(m, "usher_sagas{status=\"running\"} 1");
    CHECK_LINE(m, "usher_sagas{status=\"stuck\"} 0");
  }
  SUBCASE("none unfinished") {
    Json counts = {{"sagas", {{"completed", 4}}}, {"total", 4}, {"oldest_unfinished_created_at", nullptr}};
    CHECK_LINE(metrics.render(EngineStats{}, &counts, now), "usher_oldest_unfinished_saga_age_seconds 0");
  }
  SUBCASE("the log could not be read: the gauges are left out, not zero") {
    const std::string m = metrics.render(EngineStats{}, nullptr, now);
    CHECK(m.find("usher_sagas{") == std::string::npos);
    CHECK(m.find("usher_oldest_unfinished_saga_age_seconds") == std::string::npos);
  }
}

TEST_CASE("step attempts are labelled by service, operation and kind") {
  ApiFixture f;
  CHECK(f.post("/v1/workflows/booking/sagas?wait=10s", kDeclined).json.value("status", "") == "compensated");
  CHECK(f.post("/v1/workflows/fragile/sagas?wait=10s", "{}").json.value("status", "") == "stuck");
  const std::string m = f.get("/metrics").body;
  CHECK_LINE(m, "usher_step_attempts_total{workflow=\"booking\",step=\"pay\",service=\"payments\","
                "operation=\"charge\",kind=\"action\",outcome=\"failed\"} 1");
  CHECK_LINE(m, "usher_step_attempts_total{workflow=\"booking\",step=\"reserve\",service=\"seats\","
                "operation=\"release\",kind=\"compensation\",outcome=\"ok\"} 1");
  CHECK_LINE(m, "usher_step_attempts_total{workflow=\"fragile\",step=\"open\",service=\"box\","
                "operation=\"close\",kind=\"compensation\",outcome=\"failed\"} 1");
  CHECK_LINE(m, "usher_step_attempts_total{workflow=\"fragile\",step=\"open\",service=\"box\","
                "operation=\"open\",kind=\"action\",outcome=\"ok\"} 1");
  CHECK_LINE(m, "usher_step_duration_seconds_count{workflow=\"booking\",step=\"reserve\",service=\"seats\","
                "operation=\"release\",kind=\"compensation\"} 1");
}

TEST_CASE("API requests are counted by method, route template and code, never by id") {
  ApiFixture f;
  auto started = f.post("/v1/workflows/booking/sagas?wait=10s", kGood);
  REQUIRE(started.status == 201);
  const std::string id = started.json.value("id", "");
  REQUIRE(!id.empty());
  CHECK(f.get("/v1/sagas/" + id).status == 200);
  CHECK(f.get("/v1/sagas/" + id + "?at=2020-01-01T00:00:00Z").status != 200);
  CHECK(f.get("/v1/sagas/" + id + "/events").status == 200);
  CHECK(f.post("/v1/workflows/nope/sagas", kGood).status == 404);
  CHECK(f.get("/wp-login.php").status == 404);
  const std::string m = f.get("/metrics").body;
  CHECK_LINE(m, "usher_api_requests_total{method=\"POST\",route=\"/v1/workflows/{name}/sagas\",code=\"201\"} 1");
  CHECK_LINE(m, "usher_api_requests_total{method=\"POST\",route=\"/v1/workflows/{name}/sagas\",code=\"404\"} 1");
  CHECK_LINE(m, "usher_api_requests_total{method=\"GET\",route=\"/v1/sagas/{id}\",code=\"200\"} 1");
  CHECK_LINE(m, "usher_api_requests_total{method=\"GET\",route=\"/v1/sagas/{id}/events\",code=\"200\"} 1");
  CHECK_LINE(m, "usher_api_requests_total{method=\"GET\",route=\"other\",code=\"404\"} 1");
  CHECK_LINE(m, "usher_api_request_duration_seconds_count{method=\"GET\",route=\"/v1/sagas/{id}\"} 2");
  CHECK(m.find("# TYPE usher_api_request_duration_seconds histogram\n") != std::string::npos);
  CHECK(m.find(id) == std::string::npos);
  CHECK(m.find("nope") == std::string::npos);
  // The scrape itself is counted once it is answered.
  CHECK_LINE(f.get("/metrics").body, "usher_api_requests_total{method=\"GET\",route=\"/metrics\",code=\"200\"} 1");
}

TEST_CASE("route_template names every route's variables and folds the rest into 'other'") {
  using api::route_template;
  CHECK(route_template("/healthz") == "/healthz");
  CHECK(route_template("/metrics") == "/metrics");
  CHECK(route_template("/v1/stats") == "/v1/stats");
  CHECK(route_template("/v1/sagas?status=stuck&limit=5") == "/v1/sagas");
  CHECK(route_template("/v1/sagas/0193a/resolve") == "/v1/sagas/{id}/resolve");
  CHECK(route_template("/v1/sagas/0193a?at=2026-01-01T00:00:00Z") == "/v1/sagas/{id}");
  CHECK(route_template("/v1/workflows/booking") == "/v1/workflows/{name}");
  CHECK(route_template("/v1/workflows/booking/sagas?wait=5s") == "/v1/workflows/{name}/sagas");
  CHECK(route_template("/v1/sagas/0193a/delete") == "other");
  CHECK(route_template("/v1/sagas//cancel") == "other");
  CHECK(route_template("/admin") == "other");
  CHECK(route_template("") == "other");
  CHECK(route_template("*") == "other");
}

TEST_CASE("usher_build_info carries the version") {
  const std::string m = api::ApiMetrics{}.render(EngineStats{}, nullptr, 0);
  const size_t at = m.find("\nusher_build_info{version=\"");
  REQUIRE(at != std::string::npos);
  const size_t end = m.find('\n', at + 1);
  const std::string line = m.substr(at + 1, end - at - 1);
  CHECK(line.ends_with("\"} 1"));
  CHECK(line.find("version=\"\"") == std::string::npos);
  CHECK(m.find("# TYPE usher_build_info gauge\n") != std::string::npos);
}

TEST_CASE("the metrics pass promtool check metrics") {
  if (std::system("command -v promtool >/dev/null 2>&1") != 0) {
    MESSAGE("promtool is not installed: skipped");
    return;
  }
  ApiFixture f;
  f.post("/v1/workflows/booking/sagas?wait=10s", kGood);
  f.post("/v1/workflows/booking/sagas?wait=10s", kDeclined);
  f.post("/v1/workflows/fragile/sagas?wait=10s", "{}");
  f.get("/v1/sagas/nope");
  const std::string m = f.get("/metrics").body;
  const std::string file = f.dir.file("metrics.txt");
  const std::string out = f.dir.file("promtool.txt");
  std::ofstream(file) << m;
  const int rc = std::system(("promtool check metrics < " + file + " > " + out + " 2>&1").c_str());
  std::ifstream in(out);
  std::stringstream said;
  said << in.rdbuf();
  INFO("promtool: " << said.str());
  CHECK(rc == 0);
}

// ---- log lines ------------------------------------------------------------

TEST_CASE("a JSON log line is one JSON object with the record's fields") {
  const int64_t t = *parse_time("2026-12-06T16:45:00.123Z");
  const api::LogFields fields = {{"saga_id", "0193-s"},  {"workflow", "booking"},
                                 {"correlation_id", "req-7"}, {"step", ""},
                                 {"status", "stuck"},      {"detail", "step \"pay\": \"x\"\nline two \xff"}};
  const std::string line =
      api::format_log_line(api::LogFormat::kJson, t, spdlog::level::err, api::with_fields("saga stuck", fields));
  INFO(line);
  CHECK(line.find('\n') == std::string::npos);
  Json j = Json::parse(line, nullptr, false);
  REQUIRE(j.is_object());
  CHECK(j["time"] == "2026-12-06T16:45:00.123Z");
  CHECK(j["level"] == "error");
  CHECK(j["message"] == "saga stuck");
  CHECK(j["saga_id"] == "0193-s");
  CHECK(j["correlation_id"] == "req-7");
  CHECK(j["workflow"] == "booking");
  CHECK_FALSE(j.contains("step"));  // empty fields are left out
  CHECK(j["detail"].get<std::string>().starts_with("step \"pay\": \"x\"\nline two"));
  CHECK(line.rfind("{\"time\":", 0) == 0);  // time, level, message first

  SUBCASE("a message logged without fields") {
    Json plain = Json::parse(api::format_log_line(api::LogFormat::kJson, t, spdlog::level::info, "loaded booking"),
                             nullptr, false);
    REQUIRE(plain.is_object());
    CHECK(plain.size() == 3);
    CHECK(plain["message"] == "loaded booking");
  }
}

TEST_CASE("a text log line is time, level, message and key=value fields") {
  const int64_t t = *parse_time("2026-12-06T16:45:00.123Z");
  const std::string line = api::format_log_line(
      api::LogFormat::kText, t, spdlog::level::info,
      api::with_fields("saga compensated", {{"saga_id", "0193-s"}, {"correlation_id", ""}, {"detail", "card declined"}}));
  CHECK(line == "2026-12-06T16:45:00.123Z info saga compensated saga_id=0193-s detail=\"card declined\"");
  CHECK(api::parse_log_format("json").value() == api::LogFormat::kJson);
  CHECK(api::parse_log_format("text").value() == api::LogFormat::kText);
  CHECK(api::parse_log_format("logfmt").status().message() == "log format must be text or json, not \"logfmt\"");
}

TEST_CASE("a log line carries no control character from a saga's values, in either format") {
  const int64_t t = *parse_time("2026-12-06T16:45:00.123Z");
  // A title change, a screen clear with C1 CSI, a line break that would forge a second line.
  const std::string hostile = "\x1b]0;pwned\x07 \xc2\x9b" "2J\n2026-12-06T16:45:01.000Z info forged";
  for (auto format : {api::LogFormat::kText, api::LogFormat::kJson}) {
    const std::string line = api::format_log_line(
        format, t, spdlog::level::warn,
        api::with_fields("api: " + hostile, {{"detail", hostile}, {"correlation_id", "order-\xc2\x85" "7"}}));
    CAPTURE(line);
    for (char c : line) CHECK_FALSE((static_cast<unsigned char>(c) < 0x20 || c == 0x7f));
    CHECK(line.find("\xc2\x9b") == std::string::npos);
    CHECK(line.find("\xc2\x85") == std::string::npos);
    CHECK(line.find("\\u001b]0;pwned\\u0007") != std::string::npos);
    if (format == api::LogFormat::kJson) {
      Json j = Json::parse(line);  // still one JSON object, the values intact
      CHECK(j["detail"] == hostile);
      CHECK(j["correlation_id"] == "order-\xc2\x85" "7");
    }
  }
}

namespace {

// Captures what spdlog's default logger writes, formatted as `format`, while alive.
struct LogCapture {
  explicit LogCapture(api::LogFormat format) : previous(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
    auto logger = std::make_shared<spdlog::logger>("capture", sink);
    logger->set_formatter(api::make_log_formatter(format));
    logger->set_level(spdlog::level::info);
    spdlog::set_default_logger(logger);
  }
  ~LogCapture() { spdlog::set_default_logger(previous); }
  std::vector<Json> lines() const {
    std::vector<Json> v;
    std::istringstream in(out.str());
    for (std::string l; std::getline(in, l);) v.push_back(Json::parse(l, nullptr, false));
    return v;
  }
  std::ostringstream out;
  std::shared_ptr<spdlog::logger> previous;
};

}  // namespace

TEST_CASE("a saga's outcome is one info line with its ids; transitions are debug") {
  LogCapture capture(api::LogFormat::kJson);
  TransitionInfo t;
  t.saga_id = "0193-s";
  t.workflow = "fragile";
  t.correlation_id = "req-7";
  t.step = "open";
  t.event = EventType::kStepSucceeded;
  api::log_transition(t);  // debug: not written at info
  t.event = EventType::kSagaStuck;
  t.status = SagaStatus::kStuck;
  t.detail = "compensation of \"open\" failed: jammed";
  api::log_transition(t);
  t.event = EventType::kSagaTerminated;
  t.status = SagaStatus::kTerminated;
  t.detail = "by token:1a2b3c4d: refunded by hand";
  api::log_transition(t);
  auto lines = capture.lines();
  REQUIRE(lines.size() == 2);
  CHECK(lines[0]["level"] == "error");
  CHECK(lines[0]["saga_id"] == "0193-s");
  CHECK(lines[0]["correlation_id"] == "req-7");
  CHECK(lines[0]["status"] == "stuck");
  CHECK(lines[0]["detail"] == "compensation of \"open\" failed: jammed");
  CHECK(lines[1]["level"] == "info");
  CHECK(lines[1]["event"] == "SagaTerminated");
  CHECK(lines[1]["detail"] == "by token:1a2b3c4d: refunded by hand");
}

TEST_CASE("a refused start or action is logged once, with its route and reason") {
  ApiFixture f("s3cret-token", "read-token");
  LogCapture capture(api::LogFormat::kJson);
  const std::map<std::string, std::string> auth = {{"Authorization", "Bearer s3cret-token"},
                                                   {"X-Correlation-Id", "req-9"}};
  CHECK(f.post("/v1/workflows/booking/sagas", R"({"seat":"A1"})", auth).status == 422);
  CHECK(f.post("/v1/sagas/not-a-saga/cancel", "{}", {{"Authorization", "Bearer read-token"}}).status == 403);
  CHECK(f.get("/v1/sagas/not-a-saga", auth).status == 404);  // a read that misses: not logged
  auto lines = capture.lines();
  REQUIRE(lines.size() == 2);
  CHECK(lines[0]["level"] == "info");
  CHECK(lines[0]["route"] == "/v1/workflows/{name}/sagas");
  CHECK(lines[0]["code"] == 422);
  CHECK(lines[0]["workflow"] == "booking");
  CHECK(lines[0]["correlation_id"] == "req-9");
  CHECK(lines[0]["reason"].get<std::string>().find("amount") != std::string::npos);
  CHECK(lines[1]["level"] == "warning");
  CHECK(lines[1]["route"] == "/v1/sagas/{id}/cancel");
  CHECK(lines[1]["saga_id"] == "not-a-saga");
  CHECK(lines[1]["code"] == 403);
}

TEST_CASE("every transition carries the saga's correlation id, and a step's the service it called") {
  TempDir dir;
  std::mutex mu;
  std::vector<TransitionInfo> seen;
  EngineOptions options;
  options.db_path = dir.file("usher.db");
  options.on_transition = [&](const TransitionInfo& t) {
    std::lock_guard lock(mu);
    seen.push_back(t);
  };
  auto opened = Engine::open(options);
  REQUIRE_MESSAGE(opened.is_ok(), opened.status().to_string());
  auto engine = std::move(opened.value());
  REQUIRE(engine->load(must_load(kApiBookingYaml, "booking.yaml")).is_ok());
  register_api_handlers(*engine, Jammed::kOnce);
  REQUIRE(engine->resume().is_ok());
  StartRequest start;
  start.workflow = "booking";
  start.input = Json::parse(kDeclined);
  start.correlation_id = "req-42";
  auto started = engine->start(start);
  REQUIRE_MESSAGE(started.is_ok(), started.status().to_string());
  CHECK(engine->wait(started->id).get().value("status", "") == "compensated");
  engine->shutdown();

  std::lock_guard lock(mu);
  REQUIRE(!seen.empty());
  bool refund_seen = false;
  for (const auto& t : seen) {
    INFO(event_type_name(t.event) << " " << t.step);
    CHECK(t.correlation_id == "req-42");
    if (t.event == EventType::kStepSucceeded && t.kind == CallKind::kCompensate) {
      CHECK(t.step == "reserve");
      CHECK(t.service == "seats");
      CHECK(t.operation == "release");
      refund_seen = true;
    }
    if (t.event == EventType::kSagaCompensated) CHECK(t.detail.find("card declined") != std::string::npos);
  }
  CHECK(refund_seen);
}
