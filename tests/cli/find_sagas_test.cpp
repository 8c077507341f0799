// Finding sagas from the CLI: `usher ls --key/--correlation/--since/--until`
// and `usher stats`, the same through a real `usher serve` (port 0) and from
// the log itself (--db, while the server runs); a malformed cursor or limit
// is a usage error (exit 2) in both modes.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "cli_test_util.h"
#include "support/dead_port.h"
#include "support/test_store.h"
#include "usher/definition.h"

extern char** environ;

namespace usher::test {
namespace {

// `usher serve` as a child process (stdout and stderr to files); SIGTERM on destruction.
class Server {
 public:
  Server(const std::string& db, const std::string& workflows, const TempDir& dir) {
    std::vector<std::string> argv = {USHER_BINARY_DIR "/cli/usher", "serve", "--db", db, "--workflows", workflows,
                                     "--listen", "127.0.0.1:0"};
    out_ = dir.file("serve.out");
    err_ = dir.file("serve.err");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, 2, err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<char*> args;
    for (std::string& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    const int rc = posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    REQUIRE_MESSAGE(rc == 0, "cannot start usher serve");
    // Bounded wait for the line that gives the port.
    const std::string prefix = "usher: listening on ";
    for (int i = 0; i < 200 && url.empty(); ++i) {
      std::ifstream in(out_);
      for (std::string line; std::getline(in, line);)
        if (line.rfind(prefix, 0) == 0) url = "http://" + line.substr(prefix.size());
      if (url.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    REQUIRE_MESSAGE(!url.empty(), "usher serve did not listen; stderr:\n" << read_file(err_));
  }
  ~Server() {
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  std::string url;

 private:
  pid_t pid_ = -1;
  std::string out_, err_;
};

Json parse_ok(const CommandResult& r) {
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  Json j = Json::parse(r.out, nullptr, false);
  REQUIRE_FALSE(j.is_discarded());
  return j;
}

std::vector<std::string> ids_of(const Json& page) {
  std::vector<std::string> ids;
  for (const Json& s : page["sagas"]) ids.push_back(s["id"].get<std::string>());
  return ids;
}

// One workflow whose one step calls a port where nothing listens and backs off
// for a minute: its sagas stay running, which is all a listing needs.
struct FindFixture {
  TempDir dir;
  std::string db = saga_log_at(dir.file("usher.db"));
  std::unique_ptr<Server> server;

  FindFixture() {
    std::filesystem::create_directories(dir.file("workflows"));
    std::ofstream(dir.file("workflows/hold.yaml"))
        << "saga: hold\nversion: 1\nservices:\n  seats: { http: { url: \"http://127.0.0.1:" << dead_port()
        << "\" } }\nsteps:\n  - name: reserve\n    call: seats.hold\n"
        << "    retry: { attempts: unlimited, backoff: 60s }\n";
    server = std::make_unique<Server>(db, dir.file("workflows"), dir);
  }

  std::string server_flags() const { return "--server " + server->url; }
  std::string db_flags() const { return "--db " + shell_quote(db); }

  // Starts a saga with this key; returns it as the API shows it.
  Json start(const std::string& key) {
    return parse_ok(run_usher("start hold --json --input '{}' --idempotency-key " + key + " " + server_flags()));
  }
};

TEST_CASE("usher ls finds a saga by its idempotency key and by time, the same with --server and --db") {
  FindFixture f;
  const Json first = f.start("order-1001");
  const Json second = f.start("order-1002");
  const Json third = f.start("order-1003");
  const std::string id1 = first["id"], id2 = second["id"], id3 = third["id"];

  for (const std::string& mode : {f.server_flags(), f.db_flags()}) {
    INFO(mode);
    CHECK(ids_of(parse_ok(run_usher("ls --json --key order-1002 " + mode))) == std::vector<std::string>{id2});
    CHECK(ids_of(parse_ok(run_usher("ls --json --key no-such-order " + mode))).empty());
    CommandResult table = run_usher("ls --key order-1002 " + mode);
    CHECK(table.exit_code == 0);
    CHECK(table.out.find(id2) != std::string::npos);
    CHECK(table.out.find(id1) == std::string::npos);

    // created_at is shown to the millisecond, and each start is a process of
    // its own, so the three fall in different milliseconds.
    const std::string since = second["created_at"];
    CHECK(ids_of(parse_ok(run_usher("ls --json --since " + since + " " + mode))) ==
          std::vector<std::string>{id3, id2});
    CHECK(ids_of(parse_ok(run_usher("ls --json --until " + since + " " + mode))) ==
          std::vector<std::string>{id1});
    CHECK(ids_of(parse_ok(run_usher("ls --json --since " + since + " --until " +
                                    third["created_at"].get<std::string>() + " " + mode))) ==
          std::vector<std::string>{id2});
    // The next page's command keeps the filters.
    CommandResult paged = run_usher("ls --limit 1 --since " + since + " " + mode);
    const std::string source = mode == f.server_flags() ? "--server " + f.server->url : "--db " + f.db;
    CHECK(paged.out.find("more: usher ls --after " + id3 + " --since " + since + " --limit 1 " + source + "\n") !=
          std::string::npos);
    // A time as `ls` prints it (UTC, no zone).
    CHECK(ids_of(parse_ok(run_usher("ls --json --since '2000-01-01 00:00:00' " + mode))).size() == 3);
    CHECK(run_usher("ls --since '2999-01-01 00:00:00' " + mode).out == "no sagas\n");

    CommandResult garbage = run_usher("ls --after garbage " + mode);
    CHECK(garbage.exit_code == 2);
    CHECK(garbage.out.empty());
    CHECK(garbage.err.find("--after \"garbage\" is not a cursor") != std::string::npos);
    CHECK(run_usher("ls --limit 1001 " + mode).exit_code == 2);
    CHECK(run_usher("ls --since yesterday " + mode).exit_code == 2);

    // The same page size and cursor either way.
    const Json page = parse_ok(run_usher("ls --json --limit 2 " + mode));
    CHECK(ids_of(page) == std::vector<std::string>{id3, id2});
    CHECK(page["next"] == id2);
  }
}

TEST_CASE("usher stats counts from the database, the same with --server and --db") {
  FindFixture f;
  const Json first = f.start("a");
  f.start("b");
  const Json api = parse_ok(run_usher("stats --json " + f.server_flags()));
  CHECK(api["sagas"]["running"] == 2);
  CHECK(api["sagas"]["terminated"] == 0);
  CHECK(api["total"] == 2);
  CHECK(api["oldest_unfinished_created_at"] == first["created_at"]);
  CHECK(parse_ok(run_usher("stats --json " + f.db_flags())) == api);
  CommandResult table = run_usher("stats " + f.server_flags());
  CHECK(table.out.find("terminated") != std::string::npos);
  CHECK(table.out.find("oldest running or compensating saga started") != std::string::npos);
}

}  // namespace
}  // namespace usher::test
