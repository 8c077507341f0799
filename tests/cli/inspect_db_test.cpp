// `usher ls|show|events|stats --db`: the real binary against a closed log that
// a real engine wrote (saga_fixture.h).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "saga_fixture.h"
#include "usher/inspect.h"

namespace usher::test {

namespace {

std::string db_flag() { return "--db " + shell_quote(fixture().db); }

// Position of `needle` in `haystack`, failing the test when it is absent.
size_t position(const std::string& haystack, const std::string& needle) {
  const size_t at = haystack.find(needle);
  INFO("looking for: " << needle << "\nin:\n" << haystack);
  CHECK(at != std::string::npos);
  return at;
}

// Whether one line of `text` holds every part, in this order.
bool has_line(const std::string& text, std::initializer_list<std::string> parts) {
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    size_t at = 0;
    bool all = true;
    for (const std::string& part : parts) {
      at = line.find(part, at);
      if (at == std::string::npos) {
        all = false;
        break;
      }
      at += part.size();
    }
    if (all) return true;
    start = end + 1;
  }
  return false;
}

Json parse(const CommandResult& r) {
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  Json j = Json::parse(r.out, nullptr, false);
  REQUIRE_FALSE(j.is_discarded());
  return j;
}

}  // namespace

TEST_CASE("ls lists sagas newest first with their statuses") {
  const SagaFixture& f = fixture();

  SUBCASE("table") {
    CommandResult r = run_usher("ls " + db_flag());
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.rfind("ID", 0) == 0);
    for (const char* column : {"WORKFLOW", "STATUS", "CURRENT STEP", "CREATED", "UPDATED"})
      CHECK(r.out.find(column) != std::string::npos);
    const size_t running = position(r.out, f.running), stuck = position(r.out, f.stuck),
                 pivot = position(r.out, f.refused_at_pivot), compensated = position(r.out, f.compensated),
                 completed = position(r.out, f.completed);
    CHECK(running < stuck);
    CHECK(stuck < pivot);
    CHECK(pivot < compensated);
    CHECK(compensated < completed);
    // Each row carries its saga's status.
    auto row = [&](const std::string& id) { return r.out.substr(r.out.find(id), r.out.find('\n', r.out.find(id)) - r.out.find(id)); };
    CHECK(row(f.completed).find("completed") != std::string::npos);
    CHECK(row(f.compensated).find("compensated") != std::string::npos);
    CHECK(row(f.stuck).find("stuck") != std::string::npos);
    CHECK(row(f.stuck).find("notify") != std::string::npos);
    CHECK(row(f.running).find("running") != std::string::npos);
    CHECK(row(f.running).find("waitlist v1") != std::string::npos);
    CHECK(row(f.completed).find("booking v2") != std::string::npos);
  }

  SUBCASE("--status keeps only that status") {
    Json j = parse(run_usher("ls --json --status compensated " + db_flag()));
    REQUIRE(j["sagas"].size() == 2);
    CHECK(j["sagas"][0]["id"] == f.refused_at_pivot);
    CHECK(j["sagas"][1]["id"] == f.compensated);
    CommandResult table = run_usher("ls --status stuck " + db_flag());
    CHECK(table.out.find(f.stuck) != std::string::npos);
    CHECK(table.out.find(f.completed) == std::string::npos);
  }

  SUBCASE("--workflow keeps only that workflow") {
    Json j = parse(run_usher("ls --json --workflow waitlist " + db_flag()));
    REQUIRE(j["sagas"].size() == 1);
    CHECK(j["sagas"][0]["id"] == f.running);
  }

  SUBCASE("--json lists the same sagas, newest first, and pages with --limit and --after") {
    Json all = parse(run_usher("ls --json " + db_flag()));
    std::vector<std::string> ids;
    for (const Json& s : all["sagas"]) ids.push_back(s["id"]);
    CHECK(ids == std::vector<std::string>{f.running, f.stuck, f.refused_at_pivot, f.compensated, f.completed});
    CHECK(all["next"].is_null());

    Json first = parse(run_usher("ls --json --limit 2 " + db_flag()));
    REQUIRE(first["sagas"].size() == 2);
    REQUIRE(first["next"].is_string());
    Json rest = parse(run_usher("ls --json --after " + first["next"].get<std::string>() + " " + db_flag()));
    REQUIRE(rest["sagas"].size() == 3);
    CHECK(rest["sagas"][0]["id"] == f.refused_at_pivot);
    CommandResult paged = run_usher("ls --limit 2 " + db_flag());
    CHECK(paged.out.find("more: usher ls --after " + first["next"].get<std::string>()) != std::string::npos);
  }

  SUBCASE("a bad --status is a usage error") {
    CommandResult r = run_usher("ls --status done " + db_flag());
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("unknown status \"done\"") != std::string::npos);
  }
}

TEST_CASE("show prints the steps in order, then the compensations in the order they ran") {
  const SagaFixture& f = fixture();

  SUBCASE("a saga declined at step 2 compensates step 1") {
    CommandResult r = run_usher("show " + f.compensated + " " + db_flag());
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.find("saga " + f.compensated) == 0);
    CHECK(r.out.find("booking v2") != std::string::npos);
    CHECK(r.out.find("status       compensated") != std::string::npos);
    CHECK(r.out.find("card declined") != std::string::npos);
    const size_t steps = position(r.out, "\nsteps\n"), reserve = position(r.out, "reserve "),
                 pay = position(r.out, "pay "), confirm = position(r.out, "confirm (pivot)"),
                 notify = position(r.out, "notify (retriable)"), comps = position(r.out, "\ncompensations");
    CHECK(steps < reserve);
    CHECK(reserve < pay);
    CHECK(pay < confirm);
    CHECK(confirm < notify);
    CHECK(notify < comps);
    const std::string after = r.out.substr(comps);
    CHECK(after.find("1  reserve") != std::string::npos);
    CHECK(after.find("1  pay") == std::string::npos);
    CHECK(after.find("attempt 1 succeeded") != std::string::npos);
    CHECK(has_line(r.out, {"attempt 1 failed after ", "s: card declined"}));
    CHECK(r.out.find("output   {\"holdId\":\"hold-B2\"}") != std::string::npos);
    CHECK(r.out.find("compensation started: step \"pay\" failed: card declined") != std::string::npos);
  }

  SUBCASE("a refusal at the pivot compensates pay, then reserve") {
    CommandResult r = run_usher("show " + f.refused_at_pivot + " " + db_flag());
    REQUIRE(r.exit_code == 0);
    const std::string comps = r.out.substr(position(r.out, "\ncompensations"));
    INFO(comps);
    const size_t pay = position(comps, "1  pay"), reserve = position(comps, "2  reserve");
    CHECK(pay < reserve);
  }

  SUBCASE("attempt lines show a transient failure and its retry") {
    CommandResult r = run_usher("show " + f.completed + " " + db_flag());
    INFO(r.out);
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.find("status       completed") != std::string::npos);
    CHECK(r.out.find("2 attempts") != std::string::npos);
    CHECK(r.out.find("attempt 1 scheduled (timeout 5s)") != std::string::npos);
    CHECK(has_line(r.out, {"attempt 1 failed (transient) after ", ": HTTP 503"}));
    CHECK(has_line(r.out, {"retry at ", " as attempt 2"}));
    CHECK(r.out.find("attempt 2 succeeded in") != std::string::npos);
    CHECK(r.out.find("\ncompensations") == std::string::npos);
  }

  SUBCASE("a stuck saga says where it gave up") {
    CommandResult r = run_usher("show " + f.stuck + " " + db_flag());
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.find("status       stuck") != std::string::npos);
    CHECK(r.out.find("current step notify") != std::string::npos);
    CHECK(r.out.find("gave up: the saga is stuck") != std::string::npos);
  }
}

TEST_CASE("show --at shows the saga as it stood at that moment") {
  const SagaFixture& f = fixture();
  // The moment pay was scheduled: reserve had succeeded, nothing was compensated yet.
  std::string pay_scheduled;
  for (const Json& e : f.compensated_events["events"])
    if (e["type"] == "StepScheduled" && e["step"] == "pay") pay_scheduled = e["occurred_at"];
  REQUIRE_FALSE(pay_scheduled.empty());

  Json then = parse(run_usher("show --json --at " + pay_scheduled + " " + f.compensated + " " + db_flag()));
  CHECK(then["status"] == "running");
  CHECK(then["steps"][0]["status"] == "succeeded");
  CHECK(then["steps"][1]["status"] == "running");
  CHECK(then["steps"][0]["compensation"].is_null());

  CommandResult text = run_usher("show --at " + pay_scheduled + " " + f.compensated + " " + db_flag());
  INFO(text.out);
  REQUIRE(text.exit_code == 0);
  CHECK(text.out.find("status       running") != std::string::npos);
  CHECK(text.out.find("card declined") == std::string::npos);
  CHECK(text.out.find("\ncompensations") == std::string::npos);
  CHECK(text.out.find("as of " + pay_scheduled) != std::string::npos);

  SUBCASE("before the saga existed: not found") {
    CommandResult r = run_usher("show --at 2000-01-01T00:00:00Z " + f.compensated + " " + db_flag());
    CHECK(r.exit_code == 1);
  }
  SUBCASE("a malformed time is a usage error") {
    CommandResult r = run_usher("show --at yesterday " + f.compensated + " " + db_flag());
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("RFC 3339") != std::string::npos);
  }
}

TEST_CASE("--json prints what the API returns") {
  const SagaFixture& f = fixture();

  SUBCASE("events --json equals the log") {
    Json events = parse(run_usher("events --json " + f.compensated + " " + db_flag()));
    CHECK(events == f.compensated_events);
    int64_t seq = 0;
    for (const Json& e : events["events"]) CHECK(e["seq"] == ++seq);
    CHECK(events["events"].back()["type"] == "SagaCompensated");
  }

  SUBCASE("show --json equals the saga the engine returned") {
    CHECK(parse(run_usher("show --json " + f.completed + " " + db_flag())) == f.completed_saga);
    CHECK(parse(run_usher("show --json " + f.compensated + " " + db_flag())) == f.compensated_saga);
  }

  SUBCASE("stats --json counts by status") {
    Json stats = parse(run_usher("stats --json " + db_flag()));
    CHECK(stats["sagas"]["completed"] == 1);
    CHECK(stats["sagas"]["compensated"] == 2);
    CHECK(stats["sagas"]["stuck"] == 1);
    CHECK(stats["sagas"]["running"] == 1);
    CHECK(stats["sagas"]["compensating"] == 0);
    CHECK(stats["total"] == 5);
  }
}

TEST_CASE("events prints one row per event in seq order") {
  const SagaFixture& f = fixture();
  CommandResult r = run_usher("events " + f.compensated + " " + db_flag());
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.rfind("SEQ", 0) == 0);
  const size_t started = position(r.out, "SagaStarted"), comp = position(r.out, "CompensationStarted"),
               done = position(r.out, "SagaCompensated");
  CHECK(started < comp);
  CHECK(comp < done);
  CHECK(has_line(r.out, {"StepFailed", "pay", "\"error\":\"card declined\"", "\"outcome\":\"failed\""}));
}

TEST_CASE("stats prints a table of counts") {
  CommandResult r = run_usher("stats " + db_flag());
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("compensated") != std::string::npos);
  CHECK(r.out.find("total") != std::string::npos);
}

TEST_CASE("exit codes say what went wrong") {
  const SagaFixture& f = fixture();
  SUBCASE("an unknown saga is not found: 1") {
    for (const char* cmd : {"show", "events"}) {
      CommandResult r = run_usher(std::string(cmd) + " 01890000-0000-7000-8000-000000000000 " + db_flag());
      CHECK(r.exit_code == 1);
      CHECK(r.err.find("not found") != std::string::npos);
    }
  }
  SUBCASE("a missing database: 3") {
    for (const char* cmd : {"ls", "stats", "show x", "events x"}) {
      CommandResult r = run_usher(std::string(cmd) + " --db " + shell_quote(f.dir.file("nope.db")));
      CHECK(r.exit_code == 3);
      CHECK(r.err.find("cannot open database") != std::string::npos);
    }
  }
  SUBCASE("changing a saga through --db is refused as usage: 2") {
    for (const char* cmd : {"cancel x", "retry x", "start booking --input {}"}) {
      CommandResult r = run_usher(std::string(cmd) + " " + db_flag());
      CHECK(r.exit_code == 2);
      CHECK(r.err.find("--server") != std::string::npos);
    }
  }
  SUBCASE("no server listening: 3") {
    // Port 9 (discard) is closed on a test machine; connecting is refused at once.
    CommandResult r = run_usher("ls --server http://127.0.0.1:9");
    CHECK(r.exit_code == 3);
    CHECK(r.err.find("cannot reach http://127.0.0.1:9") != std::string::npos);
  }
  SUBCASE("a missing id is a usage error: 2") {
    CHECK(run_usher("show " + db_flag()).exit_code == 2);
    CHECK(run_usher("events " + db_flag()).exit_code == 2);
  }
}

}  // namespace usher::test
