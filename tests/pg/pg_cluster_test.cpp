// The throwaway cluster the PostgreSQL store's tests, demo and benchmark stand
// on: it answers, it keeps what it committed through a hard kill, and it runs
// with the durability settings the store's guarantees assume.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/pg_cluster.h"

namespace usher {
namespace {

using test::PgCluster;

TEST_CASE("the cluster answers on its URI") {
  PgCluster& pg = PgCluster::shared();
  CHECK(pg.port() > 0);
  CHECK(pg.uri() == "postgresql://usher@127.0.0.1:" + std::to_string(pg.port()) + "/usher");
  CHECK(pg.query("usher", "select 1") == "1");
  CHECK(pg.query("usher", "select current_user") == "usher");
  CHECK(pg.query("usher", "select null") == "");
  CHECK(pg.query("usher", "select 1 where false") == "");
  CHECK_THROWS_AS(pg.query("usher", "select * from no_such_table"), std::runtime_error);
}

TEST_CASE("create_database is idempotent") {
  PgCluster& pg = PgCluster::shared();
  pg.create_database("pg_cluster_test");
  pg.create_database("pg_cluster_test");
  CHECK(pg.query("postgres", "select count(*) from pg_database where datname = 'pg_cluster_test'") == "1");
  CHECK(pg.query("pg_cluster_test", "select current_database()") == "pg_cluster_test");
}

TEST_CASE("commits are durable: fsync and synchronous_commit are on") {
  PgCluster& pg = PgCluster::shared();
  CHECK(pg.query("usher", "show synchronous_commit") == "on");
  CHECK(pg.query("usher", "show fsync") == "on");
}

TEST_CASE("as root the data dir belongs to postgres") {
  if (::geteuid() != 0) return;
  PgCluster& pg = PgCluster::shared();
  struct stat st {};
  REQUIRE(::stat((std::filesystem::path(pg.dir()) / "data").c_str(), &st) == 0);
  const passwd* postgres = ::getpwnam("postgres");
  REQUIRE(postgres != nullptr);
  CHECK(st.st_uid == postgres->pw_uid);
}

TEST_CASE("a committed row survives kill_hard and start") {
  PgCluster& pg = PgCluster::shared();
  pg.query("usher", "create table if not exists crash_probe (v text)");
  pg.query("usher", "insert into crash_probe values ('before the crash')");
  const pid_t old_postmaster = pg.postmaster_pid();

  pg.kill_hard();
  // Nothing of the old server is left to answer or to hold the port.
  CHECK_THROWS_AS(pg.query("usher", "select 1"), std::runtime_error);

  pg.start();
  CHECK(pg.postmaster_pid() != old_postmaster);
  CHECK(pg.query("usher", "select v from crash_probe") == "before the crash");
  CHECK(pg.query("usher", "show synchronous_commit") == "on");
}

// ctest's timeout kill: SIGSTOP, then SIGKILL for every descendant found by
// parent pid, then for the process itself.
void kill_tree(pid_t pid) {
  ::kill(pid, SIGSTOP);
  for (pid_t child : test::pg_detail::children_of(pid)) kill_tree(child);
  ::kill(pid, SIGKILL);
}

TEST_CASE("a cluster is stopped and removed when its process is SIGKILLed with its process tree") {
  namespace fs = std::filesystem;
  int report[2];
  REQUIRE(::pipe2(report, O_CLOEXEC) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // Never back into doctest, and no destructor: the cluster is leaked on purpose.
    ::close(report[0]);
    try {
      auto* pg = new PgCluster();
      const std::string line = pg->dir() + "\n" + std::to_string(pg->postmaster_pid()) + "\n";
      if (::write(report[1], line.data(), line.size()) != static_cast<ssize_t>(line.size())) ::_exit(3);
    } catch (...) {
      ::_exit(2);
    }
    for (;;) ::pause();
  }
  ::close(report[1]);
  struct Reaper {
    pid_t pid;
    ~Reaper() {
      if (pid <= 0) return;
      kill_tree(pid);
      ::waitpid(pid, nullptr, 0);
    }
  } reaper{child};

  // dir and postmaster pid, one a line; initdb and start take a few seconds.
  std::string text;
  const auto read_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  while (std::count(text.begin(), text.end(), '\n') < 2 && std::chrono::steady_clock::now() < read_deadline) {
    pollfd p{report[0], POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    char buf[512];
    const ssize_t n = ::read(report[0], buf, sizeof buf);
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(report[0]);
  std::istringstream lines(text);
  std::string dir;
  pid_t postmaster = 0;
  REQUIRE_MESSAGE((lines >> dir >> postmaster), "the child reported no cluster: \"" << text << "\"");
  const test::pg_detail::ProcStat pm = test::pg_detail::proc_stat(postmaster);
  REQUIRE(pm.exists);
  REQUIRE(!test::pg_detail::dead(postmaster, pm.start_time));
  REQUIRE(fs::exists(dir));
  // The watchdog is no descendant of the child, or the tree kill would take it too.
  CHECK(test::pg_detail::children_of(child).empty());

  const auto killed = std::chrono::steady_clock::now();
  kill_tree(child);
  ::waitpid(child, nullptr, 0);
  reaper.pid = 0;

  const auto deadline = killed + std::chrono::seconds(15);
  while ((!test::pg_detail::dead(postmaster, pm.start_time) || fs::exists(dir)) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const bool server_gone = test::pg_detail::dead(postmaster, pm.start_time);
  const bool dir_gone = !fs::exists(dir);
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - killed);
  MESSAGE("cleaned up " << took.count() << " ms after the kill");
  CHECK(server_gone);
  CHECK(dir_gone);
  // Whatever failed above must not leak in turn.
  if (!server_gone) ::kill(postmaster, SIGQUIT);
  if (!dir_gone) {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
}

}  // namespace
}  // namespace usher
