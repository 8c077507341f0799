// `usher start --wait`'s exit codes, and what `show` makes of an attempt sent
// again after a restart and of an error an operator's retry left behind: the real binary against
// a real `usher serve` in front of the example services (serve_fixture.h).
#include <doctest/doctest.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>

#include "serve_fixture.h"

namespace usher::test {

TEST_CASE("start --wait exits with how the saga ended") {
  ServeFixture f;
  const std::string server = f.server_flags();

  SUBCASE("completed: 0, and --wait takes its duration after a space too") {
    CommandResult r = run_usher("start ticket-sale --wait 20s " + server + input("C1"));
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out.find(": completed after ") != std::string::npos);
    CHECK(r.out.find("timeline: usher show ") != std::string::npos);
    CHECK(r.out.find(" --server " + f.url() + " --token-file ") != std::string::npos);
    // --wait right before the workflow name does not swallow it.
    CHECK(run_usher("start --wait ticket-sale " + server + input("C2")).exit_code == 0);
    CHECK(run_usher("start ticket-sale --wait=20s " + server + input("C3")).exit_code == 0);
  }
  SUBCASE("compensated: 4") {
    CommandResult r = run_usher("start ticket-sale --wait=20s " + server + input("C4", 5000));
    CHECK(r.exit_code == 4);
    CHECK(r.out.find(": compensated after ") != std::string::npos);
  }
  SUBCASE("stuck: 5") {
    f.fail("notifier", "send", "decline");
    CommandResult r = run_usher("start ticket-sale --wait 20s " + server + input("C5"));
    CHECK(r.exit_code == 5);
    CHECK(r.out.find(": stuck") != std::string::npos);
    CHECK(r.out.find(": stuck after") == std::string::npos);  // not finished: no duration
  }
  SUBCASE("still running when the wait ended: 7; without --wait: 0") {
    f.fail("seats", "hold", "hang", 2);
    CHECK(run_usher("start ticket-sale --wait 200ms -q " + server + input("C6")).exit_code == 7);
    CHECK(run_usher("start ticket-sale -q " + server + input("C7")).exit_code == 0);
  }
  SUBCASE("--input @- reads the payload from standard input") {
    std::ofstream(f.dir().file("in.json")) << R"({"userId":"u9","concertId":"c1","seat":"C9","amount":10})";
    Json saga = parse_json_output(run_usher("start ticket-sale --wait 20s --json --input @- " + server + " < " +
                                            shell_quote(f.dir().file("in.json"))));
    CHECK(saga["input"]["seat"] == "C9");
    CommandResult bad = run_usher("start ticket-sale --input @- " + server + " < /dev/null");
    CHECK(bad.exit_code == 2);
    CHECK(bad.err.find("--input (standard input) is not valid JSON") != std::string::npos);
  }
}

TEST_CASE("show marks an attempt sent again after a restart") {
  ServeFixture f;
  const std::string server = f.server_flags();

  SUBCASE("an attempt in flight when the server died is marked when its answer comes") {
    f.fail("seats", "hold", "hang", 1);
    const std::string id = trimmed(run_usher("start ticket-sale -q " + server + input("D2")).out);
    // The hold is logged as scheduled, then sent; the service holds it unanswered.
    REQUIRE(eventually_holds([&] { return !events_of(f, id, "StepScheduled").empty(); }));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    f.kill_server();
    f.fail("seats", "hold", "decline", 1);  // the attempt sent again after the restart is declined
    f.restart_server();
    const std::string again = f.server_flags();
    REQUIRE(eventually_holds([&] {
      const std::string status = parse_json_output(run_usher("show --json " + id + " " + again))["status"];
      return status != "running" && status != "compensating";
    }));
    CommandResult show = run_usher("show " + id + " " + again);
    INFO(show.out);
    CHECK(show.out.find("[resent after a restart: it may have happened]") != std::string::npos);
  }
}

TEST_CASE("after an operator's retry, show gives the last error as earlier, not as current") {
  ServeFixture f;
  const std::string server = f.server_flags();
  f.fail("notifier", "send", "transient", 2);  // notify's two attempts fail: stuck after the pivot
  CommandResult started = run_usher("start ticket-sale --wait 20s -q " + server + input("E1"));
  REQUIRE(started.exit_code == 5);
  const std::string id = trimmed(started.out);
  f.fail("notifier", "send", "hang");  // the retried attempt stays in flight
  REQUIRE(run_usher("retry " + id + " " + server).exit_code == 0);
  REQUIRE(eventually_holds([&] { return saga(f, id)["status"] == "running"; }));
  CommandResult show = run_usher("show " + id + " " + server);
  INFO(show.out);
  CHECK(show.out.find("\n  error ") == std::string::npos);
  CHECK(show.out.find("\n  last error   ") != std::string::npos);
  CHECK(show.out.find("\n       earlier  ") != std::string::npos);
  CHECK(show.out.find("(before the operator acted at ") != std::string::npos);
  CHECK(show.out.find("retried by an operator") != std::string::npos);
}

}  // namespace usher::test
