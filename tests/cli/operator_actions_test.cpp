// `usher retry|resolve|terminate|cancel` (docs/semantics.md (operator actions)), on one saga and in
// batches: the real binary against a real `usher serve` whose notifier is made
// to decline, so that sagas get stuck after their pivot.
#include <doctest/doctest.h>

#include <fstream>
#include <string>

#include "model/sha256.h"
#include "serve_fixture.h"

namespace usher::test {

namespace {

// The actor the server records for the fixture's token.
std::string token_actor() { return "token:" + sha256_hex(ServeFixture::kToken).substr(0, 8); }

// Starts a saga that gets stuck at notify (the notifier must be declining).
std::string start_stuck(const ServeFixture& f, const std::string& seat) {
  CommandResult r = run_usher("start ticket-sale --wait 20s -q " + f.server_flags() + input(seat));
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 5);  // stuck
  return trimmed(r.out);
}

bool settles_as(const ServeFixture& f, const std::string& id, const std::string& status) {
  return eventually_holds([&] { return saga(f, id)["status"] == status; });
}

}  // namespace

TEST_CASE("a stuck saga is finished from the CLI by retry, resolve or terminate, each recorded with its note and actor") {
  ServeFixture f;
  const std::string server = f.server_flags();
  f.fail("notifier", "send", "decline");  // until "ok": every saga gets stuck at notify, after its pivot
  const std::string id = start_stuck(f, "A1");

  SUBCASE("retry: sent again with the same key, the service repeats its answer, the saga is stuck again") {
    CommandResult r = run_usher("retry " + id + " --note 'notifier redeployed' " + server);
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.find("saga " + id + ": retry accepted") != std::string::npos);
    // The follow-up hint keeps the flags that reach this server.
    CHECK(r.out.find("timeline: usher show " + id + " --server " + f.url() + " --token-file ") != std::string::npos);
    CHECK(settles_as(f, id, "stuck"));
    Json retried = events_of(f, id, "OperatorRetried");
    REQUIRE(retried.size() == 1);
    CHECK(retried[0]["step"] == "notify");
    CHECK(retried[0]["data"]["note"] == "notifier redeployed");
    CHECK(retried[0]["data"]["actor"] == token_actor());

    CommandResult show = run_usher("show " + id + " " + server);
    INFO(show.out);
    CHECK(show.out.find("retried by an operator (step \"notify\") by " + token_actor() + ": \"notifier redeployed\"") !=
          std::string::npos);
    CHECK(show.out.find("status       stuck") != std::string::npos);
    CHECK(show.out.find("stuck since") != std::string::npos);
    CHECK(show.out.find("duration") == std::string::npos);  // stuck is not finished
  }

  SUBCASE("resolve: the operator states the step's outcome and output; the saga completes") {
    CommandResult wrong = run_usher("resolve " + id + " --step pay --outcome succeeded --note 'wrong step' " + server);
    CHECK(wrong.exit_code == 1);
    CHECK(wrong.err.find("409") != std::string::npos);

    std::ofstream(f.dir().file("output.json")) << R"({"messageId":"m-1"})";
    CommandResult r = run_usher("resolve " + id + " --step notify --outcome succeeded --output @- --note 'sent by hand' " +
                                server + " < " + shell_quote(f.dir().file("output.json")));
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.find("resolve accepted") != std::string::npos);
    CHECK(settles_as(f, id, "completed"));
    CHECK(saga(f, id)["steps"][3]["output"] == Json{{"messageId", "m-1"}});
    Json resolved = events_of(f, id, "OperatorResolved");
    REQUIRE(resolved.size() == 1);
    CHECK(resolved[0]["step"] == "notify");
    CHECK(resolved[0]["data"]["outcome"] == "succeeded");
    CHECK(resolved[0]["data"]["note"] == "sent by hand");
    CHECK(resolved[0]["data"]["actor"] == token_actor());

    CommandResult show = run_usher("show " + id + " " + server);
    INFO(show.out);
    CHECK(show.out.find("resolved by an operator (step \"notify\"): succeeded by " + token_actor() +
                        ": \"sent by hand\"") != std::string::npos);
    CHECK(show.out.find("resolved as succeeded by an operator by " + token_actor() + ": \"sent by hand\"") !=
          std::string::npos);
    CHECK(show.out.find("output stated: {\"messageId\":\"m-1\"}") != std::string::npos);
  }

  SUBCASE("terminate: the saga ends as terminated; a second terminate is refused") {
    CommandResult r = run_usher("terminate " + id + " --reason 'refunded by hand' " + server);
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.find("status terminated") != std::string::npos);
    CHECK(saga(f, id)["status"] == "terminated");
    Json terminated = events_of(f, id, "SagaTerminated");
    REQUIRE(terminated.size() == 1);
    CHECK(terminated[0]["data"]["reason"] == "refunded by hand");
    CHECK(terminated[0]["data"]["actor"] == token_actor());

    CommandResult show = run_usher("show " + id + " " + server);
    INFO(show.out);
    CHECK(show.out.find("status       terminated") != std::string::npos);
    CHECK(show.out.find("terminated by an operator by " + token_actor() + ": \"refunded by hand\"") !=
          std::string::npos);

    CommandResult again = run_usher("terminate " + id + " --reason again " + server);
    CHECK(again.exit_code == 1);
    CHECK(again.err.find("409") != std::string::npos);
    CHECK(run_usher("retry " + id + " " + server).exit_code == 1);
  }
}

TEST_CASE("batch actions list the matching sagas first, then report each one's result") {
  ServeFixture f;
  const std::string server = f.server_flags();
  f.fail("notifier", "send", "decline", 2);  // the first two sagas get stuck, the third completes
  const std::string first = start_stuck(f, "B1"), second = start_stuck(f, "B2");
  Json done = parse_json_output(run_usher("start ticket-sale --wait 20s --json " + server + input("B3")));
  REQUIRE(done["status"] == "completed");
  const std::string completed = done["id"];

  SUBCASE("--dry-run prints what would be acted on and sends nothing") {
    CommandResult r = run_usher("retry --status stuck --workflow ticket-sale --dry-run " + server);
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.find(first) != std::string::npos);
    CHECK(r.out.find(second) != std::string::npos);
    CHECK(r.out.find(completed) == std::string::npos);
    CHECK(r.out.find("2 sagas would be retried; nothing was sent (--dry-run)") != std::string::npos);
    CHECK(events_of(f, first, "OperatorRetried").empty());

    Json listed = parse_json_output(run_usher("terminate --status stuck --workflow ticket-sale --reason x --dry-run --json " + server));
    CHECK(listed["dry_run"] == true);
    CHECK(listed["sagas"].size() == 2);
    CHECK(saga(f, first)["status"] == "stuck");
  }

  SUBCASE("every saga acted on gets a line; all accepted exits 0") {
    CommandResult r = run_usher("terminate --status stuck --workflow ticket-sale --reason 'event cancelled' " + server);
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.find(first + "  ok") != std::string::npos);
    CHECK(r.out.find(second + "  ok") != std::string::npos);
    CHECK(r.out.find("terminate: 2 sagas, 2 terminated, 0 refused") != std::string::npos);
    CHECK(saga(f, first)["status"] == "terminated");
    CHECK(saga(f, second)["status"] == "terminated");
    // Nothing is stuck any more: an empty batch is not an error.
    CommandResult none = run_usher("retry --status stuck --workflow ticket-sale " + server);
    CHECK(none.exit_code == 0);
    CHECK(none.out.find("retry: 0 sagas") != std::string::npos);
  }

  SUBCASE("a refused saga is reported with the server's reason and exits 1") {
    CommandResult r = run_usher("cancel --status completed --workflow ticket-sale --note 'too late' " + server);
    INFO(r.out << r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.out.find(completed + "  refused") != std::string::npos);
    CHECK(r.out.find("(HTTP 409)") != std::string::npos);
    CHECK(r.out.find("cancel: 1 saga, 0 cancelled, 1 refused") != std::string::npos);

    Json report = Json::parse(run_usher("retry --status stuck --json " + server).out, nullptr, false);
    REQUIRE(report.is_object());
    CHECK(report["ok"] == 2);
    CHECK(report["refused"] == 0);
  }
}

TEST_CASE("the read-only token reads but cannot act, and a batch stops at its first 403") {
  ServeFixture f(/*with_read_token=*/true);
  f.fail("notifier", "send", "decline");
  const std::string first = start_stuck(f, "F1"), second = start_stuck(f, "F2");
  const std::string reader = "--server " + f.url() + " --token-file " + shell_quote(f.read_token_file());
  CHECK(run_usher("show " + first + " " + reader).exit_code == 0);

  CommandResult one = run_usher("terminate " + first + " --reason r " + reader);
  CHECK(one.exit_code == 1);
  CHECK(one.err.find("(HTTP 403); this token may only read") != std::string::npos);

  CommandResult batch = run_usher("retry --status stuck --workflow ticket-sale " + reader);
  INFO(batch.out << batch.err);
  CHECK(batch.exit_code == 1);
  CHECK(batch.out.find("retry: 2 sagas, 0 retried, 1 refused, 1 not sent (stopped)") != std::string::npos);
  CHECK(saga(f, first)["status"] == "stuck");
  CHECK(saga(f, second)["status"] == "stuck");
}

}  // namespace usher::test
