// The CLI's rough edges of issue 18, against the closed log of saga_fixture.h
// (--db) or without any source: `version` and `help`, every time printed as
// RFC 3339 and taken back by `show --at`, a stuck saga without a duration, the
// token's help, and the usage errors of the operator actions.
#include <doctest/doctest.h>

#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "saga_fixture.h"

namespace usher::test {

namespace {

std::string db_flag() { return "--db " + shell_quote(fixture().db); }

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The first line of `text` that holds every part.
std::string line_with(const std::string& text, std::initializer_list<std::string> parts) {
  for (const std::string& line : lines_of(text)) {
    bool all = true;
    for (const std::string& p : parts) all = all && line.find(p) != std::string::npos;
    if (all) return line;
  }
  FAIL("no line with the given parts in:\n" << text);
  return {};
}

}  // namespace

TEST_CASE("usher version and usher help work") {
  const std::regex version(R"(usher \d+\.\d+\.\d+\n)");
  for (const char* args : {"version", "--version"}) {
    CommandResult r = run_usher(args);
    INFO(args << ": " << r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK(std::regex_match(r.out, version));
  }
  CommandResult help = run_usher("help");
  CHECK(help.exit_code == 0);
  for (const char* command : {"start", "resolve", "terminate", "retry", "cancel", "version"})
    CHECK(help.out.find(command) != std::string::npos);
  CommandResult start = run_usher("help start");
  CHECK(start.exit_code == 0);
  CHECK(start.out.find("--wait") != std::string::npos);
  CHECK(start.out.find("5 stuck") != std::string::npos);
  CommandResult unknown = run_usher("help nope");
  CHECK(unknown.exit_code == 2);
  CHECK(unknown.err.find("no command \"nope\"") != std::string::npos);
}

TEST_CASE("the help says USHER_TOKEN holds the token itself and --token-file names a file") {
  CommandResult r = run_usher("help ls");
  CHECK(r.out.find("$USHER_TOKEN holds the token itself") != std::string::npos);
}

TEST_CASE("events prints every time as RFC 3339 UTC, never as epoch microseconds") {
  const SagaFixture& f = fixture();
  CommandResult r = run_usher("events " + f.completed + " " + db_flag());
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  // No instant in the data is left as a number (deadline, a retry's at, any …_at).
  CHECK_FALSE(std::regex_search(r.out, std::regex(R"re("(deadline|at|[a-z_]+_at)":-?\d)re")));
  CHECK(std::regex_search(r.out, std::regex(R"(\n1 +2026-01-02T\d\d:\d\d:\d\d\.\d{3}Z +SagaStarted)")));
  CHECK(std::regex_search(r.out, std::regex(R"("deadline":"2026-01-02T\d\d:\d\d:\d\d\.\d{3}Z")")));
  CHECK(std::regex_search(r.out, std::regex(R"("at":"2026-01-02T\d\d:\d\d:\d\d\.\d{3}Z")")));  // the retry
}

TEST_CASE("show --at takes back the times ls, events and show print") {
  const SagaFixture& f = fixture();
  // The compensated saga: reserve, then pay declined, then the compensation.
  CommandResult events = run_usher("events " + f.compensated + " " + db_flag());
  REQUIRE(events.exit_code == 0);
  const std::string pay_failed = line_with(events.out, {"StepFailed", "pay"});
  std::smatch m;
  REQUIRE(std::regex_search(pay_failed, m, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")));
  const std::string rfc3339 = m.str();

  SUBCASE("as events prints it") {
    Json then = Json::parse(run_usher("show --json --at " + rfc3339 + " " + f.compensated + " " + db_flag()).out);
    CHECK(then["steps"][1]["status"] == "failed");
  }
  SUBCASE("without the fraction") {
    const std::string whole = rfc3339.substr(0, 19) + "Z";
    CommandResult r = run_usher("show --json --at " + whole + " " + f.compensated + " " + db_flag());
    REQUIRE(r.exit_code == 0);
  }
  SUBCASE("as the tables print it, UTC without a zone") {
    // ls prints "2026-01-02 03:04:05"; the saga existed from that second on.
    CommandResult ls = run_usher("ls " + db_flag());
    const std::string row = line_with(ls.out, {f.compensated});
    REQUIRE(std::regex_search(row, m, std::regex(R"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)")));
    CommandResult r = run_usher("show --at '" + m.str() + "' " + f.compensated + " " + db_flag());
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("as of " + m.str()) != std::string::npos);
    // And with the fraction events would give, after a space.
    const std::string spaced = rfc3339.substr(0, 10) + " " + rfc3339.substr(11, 12);
    Json then = Json::parse(run_usher("show --json --at '" + spaced + "' " + f.compensated + " " + db_flag()).out);
    CHECK(then["steps"][1]["status"] == "failed");
  }
  SUBCASE("anything else is a usage error that shows both forms") {
    CommandResult r = run_usher("show --at 2026-01-02 " + f.compensated + " " + db_flag());
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("2026-11-21 05:25:00") != std::string::npos);
  }
}

TEST_CASE("show gives a stuck saga no duration: it has not finished") {
  const SagaFixture& f = fixture();
  CommandResult stuck = run_usher("show " + f.stuck + " " + db_flag());
  INFO(stuck.out);
  REQUIRE(stuck.exit_code == 0);
  CHECK(stuck.out.find("duration") == std::string::npos);
  CHECK(stuck.out.find("stuck since  2026-01-02T") != std::string::npos);
  CommandResult done = run_usher("show " + f.completed + " " + db_flag());
  CHECK(done.out.find("duration") != std::string::npos);
}

TEST_CASE("show writes a failed step's error once, though the adapter's error names the step too") {
  // A log of its own: pay fails with an error labelled as the Kafka adapter
  // labels its errors. The engine's reason to compensate then names the step
  // once (logs written before it did show `step "pay" failed: ` in front,
  // which show folds the same way).
  TempDir dir;
  const std::string db = saga_log_at(dir.file("usher.db"));
  std::string id;
  {
    EngineOptions options;
    options.db_path = db;
    auto opened = Engine::open(options);
    REQUIRE_MESSAGE(opened.is_ok(), opened.status().to_string());
    std::unique_ptr<Engine> engine = std::move(opened.value());
    LoadResult loaded = load_definition(kBookingYaml, "booking.yaml");
    REQUIRE(loaded.ok());
    REQUIRE(engine->load(loaded.definition).is_ok());
    engine->register_handler("seats.hold", [](const StepCall&) { return StepResult::ok({{"holdId", "h-1"}}); });
    engine->register_handler("seats.release", [](const StepCall&) { return StepResult::ok(Json::object()); });
    engine->register_handler("payments.charge", [](const StepCall&) {
      return StepResult::failed("step \"pay\" (payments.charge): card declined");
    });
    REQUIRE(engine->resume().is_ok());
    StartRequest request;
    request.workflow = "booking";
    request.input = {{"seat", "A1"}, {"amount", 10}, {"user", "ann"}};
    auto started = engine->start(std::move(request));
    REQUIRE(started.is_ok());
    id = started->id;
    auto done = engine->wait(id);
    REQUIRE(done.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
    engine->shutdown();
  }
  CommandResult show = run_usher("show " + id + " --db " + shell_quote(db));
  INFO(show.out);
  REQUIRE(show.exit_code == 0);
  CHECK(show.out.find("compensation started: step \"pay\" (payments.charge): card declined") != std::string::npos);
  CHECK(show.out.find("error        step \"pay\" (payments.charge): card declined") != std::string::npos);
  CHECK(show.out.find("failed: step \"pay\"") == std::string::npos);
}

TEST_CASE("the operator actions check their arguments before sending anything: 2") {
  // No server listens on port 9; a usage error is found before connecting (else: 3).
  const std::string server = " --server http://127.0.0.1:9";
  struct Case {
    std::string args, says;
  };
  for (const Case& c : std::vector<Case>{
           {"retry", "usage: usher retry ID"},
           {"retry x --status stuck", "not both"},
           {"retry --workflow w", "--workflow needs --status"},
           {"retry x --dry-run", "--dry-run goes with --status"},
           {"retry --status broken", "unknown status \"broken\""},
           {"terminate x", "--reason"},
           {"terminate x --reason ' '", "--reason"},
           {"resolve x --outcome succeeded --note n", "--step"},
           {"resolve x --step pay --note n", "--outcome succeeded|failed is required"},
           {"resolve x --step pay --outcome maybe --note n", "\"maybe\" is not succeeded or failed"},
           {"resolve x --step pay --outcome succeeded", "--note"},
           {"resolve x --step pay --outcome failed --output '{}' --note n", "--output goes only with --outcome succeeded"},
           {"resolve x --step pay --outcome succeeded --output '[1]' --note n", "--output must be a JSON object"},
           {"resolve x --step pay --outcome succeeded --output '{' --note n", "--output is not valid JSON"},
           {"resolve x --step pay --outcome succeeded --output @/no/such/file --note n", "cannot read --output file"},
           {"start booking --wait soon --input {}", "--wait \"soon\" is not a duration"},
       }) {
    CommandResult r = run_usher(c.args + server);
    INFO(c.args << "\nstderr: " << r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find(c.says) != std::string::npos);
  }
  SUBCASE("and refuse --db, which is read-only") {
    for (const char* cmd : {"resolve x --step pay --outcome failed --note n", "terminate x --reason r",
                            "retry --status stuck --dry-run"}) {
      CommandResult r = run_usher(std::string(cmd) + " " + db_flag());
      INFO(cmd);
      CHECK(r.exit_code == 2);
      CHECK(r.err.find("--server") != std::string::npos);
    }
  }
}

}  // namespace usher::test
