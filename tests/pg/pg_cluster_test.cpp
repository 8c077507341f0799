// The throwaway cluster the PostgreSQL store's tests, demo and benchmark stand
// on: it answers, it keeps what it committed through a hard kill, and it runs
// with the durability settings the store's guarantees assume.
#include <doctest/doctest.h>

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <stdexcept>
#include <string>

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

}  // namespace
}  // namespace usher
