// `usher start|ls|show|events|cancel|retry|stats --server`: the real binary
// against a real `usher serve` (port 0, temp log, a workflow of the test's own
// whose services are the example step services, also on port 0, with a bearer
// token), checked against what --db reads from the same log.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "cli_test_util.h"
#include "support/test_store.h"
#include "usher/definition.h"

extern char** environ;

namespace usher::test {

namespace {

// A child process whose stdout and stderr go to files; SIGTERM on destruction.
class Child {
 public:
  Child(std::vector<std::string> argv, const std::string& out_file, const std::string& err_file) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, 2, err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<char*> args;
    for (std::string& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    const int rc = posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    REQUIRE_MESSAGE(rc == 0, "cannot start " << argv[0]);
  }
  ~Child() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

 private:
  pid_t pid_ = -1;
};

// Waits (bounded) for a file to hold a line that starts with `prefix`; returns the line.
std::string wait_for_line(const std::string& file, const std::string& prefix, const std::string& err_file) {
  for (int i = 0; i < 200; ++i) {
    std::ifstream in(file);
    std::string line;
    while (std::getline(in, line))
      if (line.rfind(prefix, 0) == 0) return line;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  FAIL("no line starting with \"" << prefix << "\" in " << file << "; stderr:\n" << read_file(err_file));
  return {};
}

struct ServerFixture {
  TempDir dir;
  std::string db = usher::test::saga_log_at(dir.file("usher.db"));
  std::string token_file = dir.file("token");
  std::unique_ptr<Child> services, server;
  std::string url;

  ServerFixture() {
    services = std::make_unique<Child>(
        std::vector<std::string>{USHER_BINARY_DIR "/examples/services/usher-example-services", "--seats-port", "0",
                                 "--payments-port", "0", "--tickets-port", "0", "--notifier-port", "0"},
        dir.file("services.out"), dir.file("services.err"));
    const Json ports = Json::parse(wait_for_line(dir.file("services.out"), "{", dir.file("services.err")));
    auto base = [&](const char* name) { return "http://127.0.0.1:" + std::to_string(ports[name].get<int>()); };

    std::filesystem::create_directories(dir.file("workflows"));
    std::ofstream(dir.file("workflows/ticket-sale.yaml"))
        << "saga: ticket-sale\nversion: 4\n"
        << "services:\n"
        << "  seats: { http: { url: \"" << base("seats") << "\" } }\n"
        << "  payments: { http: { url: \"" << base("payments") << "\" } }\n"
        << "  tickets: { http: { url: \"" << base("tickets") << "\" } }\n"
        << "  notifier: { http: { url: \"" << base("notifier") << "\" } }\n"
        << R"(defaults:
  timeout: 2s
  retry: { attempts: 2, backoff: 10ms }
steps:
  - name: reserve
    call: seats.hold
    with: { concertId: "${input.concertId}", seat: "${input.seat}" }
    compensate: { call: seats.release, with: { holdId: "${steps.reserve.output.holdId}" } }
  - name: pay
    call: payments.charge
    with: { userId: "${input.userId}", amount: "${input.amount}", reference: "${saga.id}" }
    compensate: { call: payments.refund, with: { paymentId: "${steps.pay.output.paymentId}" } }
  - name: confirm
    type: pivot
    call: tickets.issue
    with: { holdId: "${steps.reserve.output.holdId}", paymentId: "${steps.pay.output.paymentId}" }
  - name: notify
    type: retriable
    call: notifier.send
    with: { userId: "${input.userId}", ticketId: "${steps.confirm.output.ticketId}" }
)";
    std::ofstream(token_file) << "  s3cret-token\n";
    ::chmod(token_file.c_str(), 0600);
    server = std::make_unique<Child>(
        std::vector<std::string>{USHER_BINARY_DIR "/cli/usher", "serve", "--db", db, "--workflows",
                                 dir.file("workflows"), "--listen", "127.0.0.1:0", "--token-file", token_file},
        dir.file("serve.out"), dir.file("serve.err"));
    const std::string line = wait_for_line(dir.file("serve.out"), "usher: listening on ", dir.file("serve.err"));
    url = "http://" + line.substr(std::string("usher: listening on ").size());
  }

  // Flags for server mode with the token.
  std::string server_flags() const { return "--server " + url + " --token-file " + shell_quote(token_file); }
  std::string db_flags() const { return "--db " + shell_quote(db); }
};

Json parse_ok(const CommandResult& r) {
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  Json j = Json::parse(r.out, nullptr, false);
  REQUIRE_FALSE(j.is_discarded());
  return j;
}

}  // namespace

TEST_CASE("server mode starts sagas and shows what --db shows") {
  ServerFixture f;
  const std::string server = f.server_flags();

  Json done = parse_ok(run_usher("start ticket-sale --wait --json " + server +
                                 " --input '{\"userId\":\"u1\",\"concertId\":\"c1\",\"seat\":\"A1\",\"amount\":120}'"));
  CHECK(done["status"] == "completed");
  const std::string completed = done["id"];

  std::ofstream(f.dir.file("declined.json")) << R"({"userId":"u2","concertId":"c1","seat":"A2","amount":5000})";
  CommandResult declined_run =
      run_usher("start ticket-sale --wait " + server + " --input @" + shell_quote(f.dir.file("declined.json")));
  INFO(declined_run.err);
  REQUIRE(declined_run.exit_code == 4);  // start --wait: compensated
  CHECK(declined_run.out.find(": compensated after ") != std::string::npos);
  CHECK(declined_run.out.find("card declined") != std::string::npos);
  Json latest = parse_ok(run_usher("ls --json --limit 1 " + server));
  const std::string compensated = latest["sagas"][0]["id"];
  CHECK(compensated != completed);

  SUBCASE("--json output is the same through the API and the log") {
    for (const std::string& cmd : std::vector<std::string>{"ls", "ls --status compensated", "stats", "show " + completed,
                                   "show " + compensated, "events " + compensated}) {
      INFO(cmd);
      CHECK(parse_ok(run_usher(cmd + " --json " + server)) == parse_ok(run_usher(cmd + " --json " + f.db_flags())));
    }
  }

  SUBCASE("the timeline reads the same through the API and the log") {
    CommandResult api = run_usher("show " + compensated + " " + server);
    CommandResult log = run_usher("show " + compensated + " " + f.db_flags());
    REQUIRE(api.exit_code == 0);
    CHECK(api.out == log.out);
    CHECK(api.out.find("ticket-sale v4") != std::string::npos);
    CHECK(api.out.find("\ncompensations") != std::string::npos);
    CHECK(api.out.find("1  reserve") != std::string::npos);
  }

  SUBCASE("show --at goes through the API's ?at=") {
    Json events = parse_ok(run_usher("events --json " + compensated + " " + server));
    std::string reserved;
    for (const Json& e : events["events"])
      if (e["type"] == "StepSucceeded" && e["step"] == "reserve" && reserved.empty()) reserved = e["occurred_at"];
    REQUIRE_FALSE(reserved.empty());
    Json then = parse_ok(run_usher("show --json --at " + reserved + " " + compensated + " " + server));
    // --at covers the whole millisecond written, and a fast saga may fail its
    // payment and start compensating within the millisecond the seat was held:
    // the expected status is the one the events up to that time imply. The
    // timestamps share one fixed format, so they compare as text.
    std::string expected = "running";
    for (const Json& e : events["events"]) {
      if (e["occurred_at"].get<std::string>() > reserved) break;
      if (e["type"] == "CompensationStarted") expected = "compensating";
      if (e["type"] == "SagaCompensated") expected = "compensated";
    }
    CHECK(then["status"] == expected);
    // reserve's release is scheduled with CompensationStarted and succeeds with SagaCompensated.
    CHECK(then["steps"][0]["status"] == (expected == "running" ? "succeeded" : expected));
    CHECK(then["steps"][0]["output"].is_object());  // the seat was held by then
    CHECK(then == parse_ok(run_usher("show --json --at " + reserved + " " + compensated + " " + f.db_flags())));
  }

  SUBCASE("a repeated idempotency key returns the first saga") {
    const std::string start = "start ticket-sale --idempotency-key order-7 --wait " + server +
                              " --input '{\"userId\":\"u3\",\"concertId\":\"c1\",\"seat\":\"A3\",\"amount\":10}'";
    Json first = parse_ok(run_usher(start + " --json"));
    CommandResult again = run_usher(start);
    REQUIRE(again.exit_code == 0);
    CHECK(again.out.find(first["id"].get<std::string>() + " (already started with this idempotency key)") !=
          std::string::npos);
    CHECK(run_usher(start + " -q").out == first["id"].get<std::string>() + "\n");
  }

  SUBCASE("refused actions and unknown sagas exit 1") {
    CommandResult cancel = run_usher("cancel " + completed + " " + server);
    CHECK(cancel.exit_code == 1);
    CHECK(cancel.err.find("409") != std::string::npos);
    CHECK(run_usher("retry " + compensated + " " + server).exit_code == 1);
    CHECK(run_usher("show 01890000-0000-7000-8000-000000000000 " + server).exit_code == 1);
    CHECK(run_usher("start no-such-workflow --input {} " + server).exit_code == 1);
    CommandResult invalid = run_usher("start ticket-sale --input '{\"x\":1' " + server);
    CHECK(invalid.exit_code == 2);  // not JSON: refused before sending
  }

  SUBCASE("the token is required and read from USHER_TOKEN too") {
    CommandResult anonymous = run_usher("ls --server " + f.url);
    CHECK(anonymous.exit_code == 1);
    CHECK(anonymous.err.find("401") != std::string::npos);
    CHECK(run_usher("ls --server " + f.url, "USHER_TOKEN=s3cret-token").exit_code == 0);
    CHECK(run_usher("ls", "USHER_TOKEN=s3cret-token USHER_SERVER=" + f.url).exit_code == 0);
  }

  SUBCASE("stats counts through the API") {
    Json stats = parse_ok(run_usher("stats --json " + server));
    CHECK(stats["sagas"]["completed"] == 1);
    CHECK(stats["sagas"]["compensated"] == 1);
    CHECK(stats["total"] == 2);
  }
}

}  // namespace usher::test
