// Logs written by an older usher, upgraded in place: a SQLite file of schema
// version 1 and a PostgreSQL database of version 2 keep every saga, accept the
// status `terminated` and gain the index of correlation ids; a SQLite file of
// version 2 and a PostgreSQL database of version 3 gain the table of
// publication positions.
#include <doctest/doctest.h>

#include <sqlite3.h>

#include <stdexcept>

#include "store/embedded_sql.h"
#include "store/publication_store.h"
#include "store_test_util.h"

namespace usher {
namespace {

using test::PgCluster;
using test::saga_id;

// A saga row as version 1 wrote it, keyed and correlated by its number.
std::string v1_saga_insert(int n, const char* status) {
  return "INSERT INTO sagas (id, workflow, version, definition_hash, status, current_step, idempotency_key,"
         " correlation_id, created_at, updated_at, deadline, last_error, last_seq) VALUES ('" +
         saga_id(n) + "', 'book', 3, 'sha256:abc', '" + status + "', 'pay', 'key-" + std::to_string(n) +
         "', 'corr-" + std::to_string(n) + "', " + std::to_string(1'700'000'000'000'000 + n) + ", " +
         std::to_string(1'700'000'000'000'000 + n + 1) + ", NULL, 'boom', 1)";
}

// True when `sql` fails on a raw connection (RawDb::exec requires success).
bool sqlite_refuses(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
  sqlite3_close_v2(db);
  return rc != SQLITE_OK;
}

TEST_CASE("a SQLite log of schema version 1 is upgraded (through 2) and keeps its sagas") {
  test::TempDir dir;
  const std::string path = dir.file("v1.db");
  {
    test::RawDb raw(path);
    raw.exec("BEGIN");
    raw.exec(schema::kSagaLogSql);
    raw.exec("PRAGMA user_version = 1");
    raw.exec(v1_saga_insert(1, "completed"));
    raw.exec(v1_saga_insert(2, "running"));
    raw.exec(v1_saga_insert(3, "stuck"));
    for (int n : {2, 3}) {
      raw.exec("INSERT INTO saga_events (saga_id, seq, type, step, data, occurred_at) VALUES ('" + saga_id(n) +
               "', 1, 'SagaStarted', NULL, '{}', 1)");
    }
    raw.exec("COMMIT");
  }
  // Version 1 refuses the new status.
  CHECK(sqlite_refuses(path, "UPDATE sagas SET status = 'terminated' WHERE id = '" + saga_id(3) + "'"));
  CHECK(open_sqlite_reader(path, true).status().code() == StatusCode::kFailedPrecondition);

  test::open_sqlite_log(path)->close();  // the writer migrates

  test::RawDb raw(path);
  CHECK(raw.integer("PRAGMA user_version") == kSagaLogSchemaVersion);
  CHECK(raw.integer("SELECT count(*) FROM sagas") == 3);
  CHECK(raw.integer("SELECT count(*) FROM saga_events") == 2);
  CHECK(raw.text("PRAGMA integrity_check") == "ok");
  // Every index of version 1 is there again, and the new one.
  CHECK(raw.text("SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_schema WHERE type = 'index'"
                 " AND tbl_name = 'sagas' AND sql IS NOT NULL ORDER BY name)") ==
        "sagas_by_correlation,sagas_by_status,sagas_by_workflow,sagas_unfinished");
  CHECK(raw.text("SELECT count(*) FROM sqlite_schema WHERE name = 'sagas_v2'") == "0");

  auto reader = test::open_sqlite_log_reader(path);
  auto row = reader->saga(saga_id(2));
  REQUIRE(row.is_ok());
  REQUIRE(row->has_value());
  CHECK((*row)->status == SagaStatus::kRunning);
  CHECK((*row)->idempotency_key == "key-2");
  CHECK((*row)->correlation_id == "corr-2");
  CHECK((*row)->created_at == 1'700'000'000'000'002);
  CHECK((*row)->current_step == "pay");
  CHECK((*row)->last_error == "boom");
  CHECK(reader->saga_id_by_idempotency_key("key-3").value() == std::optional<std::string>(saga_id(3)));

  // The wider CHECK: `terminated` is taken, anything else still refused; the
  // idempotency key is still unique.
  raw.exec("UPDATE sagas SET status = 'terminated' WHERE id = '" + saga_id(3) + "'");
  CHECK(sqlite_refuses(path, "UPDATE sagas SET status = 'lost' WHERE id = '" + saga_id(1) + "'"));
  CHECK(sqlite_refuses(path, "UPDATE sagas SET idempotency_key = 'key-1' WHERE id = '" + saga_id(2) + "'"));
  // A terminated saga is finished: recovery's partial index leaves it out.
  std::vector<std::string> unfinished;
  REQUIRE(reader->for_each_unfinished([&](const SagaRow& r, std::vector<Event>&&) { unfinished.push_back(r.id); })
              .is_ok());
  CHECK(unfinished == std::vector<std::string>{saga_id(2)});
  CHECK(raw.integer("SELECT count(*) FROM sagas INDEXED BY sagas_unfinished"
                    " WHERE status IN ('running', 'compensating', 'stuck')") == 1);
}

TEST_CASE("a PostgreSQL log of schema version 2 is upgraded (through 3) and keeps its sagas") {
  const std::string database = "migrate_from_2";
  PgCluster& pg = PgCluster::shared();
  pg.create_database(database);
  const std::string uri = pg.uri(database);
  pg.query(database, std::string("BEGIN;") + schema::kSagaLogPostgresSql + ";" + schema::kSagaLogPostgresSql2 +
                         "; UPDATE usher_schema SET version = 2; COMMIT");
  auto pg_insert = [&](int n, const char* status) {
    pg.query(database, "INSERT INTO sagas (id, workflow, version, definition_hash, status, current_step,"
                       " idempotency_key, correlation_id, created_at, updated_at, last_error, last_seq) VALUES ('" +
                           saga_id(n) + "', 'book', 3, 'sha256:abc', '" + status + "', 'pay', 'key-" +
                           std::to_string(n) + "', 'corr-" + std::to_string(n) +
                           "', usher_time(1700000000000000 + " + std::to_string(n) +
                           "), usher_time(1700000000000001), 'boom', 1)");
  };
  pg_insert(1, "completed");
  pg_insert(2, "running");
  pg_insert(3, "stuck");
  for (int n : {2, 3}) {
    pg.query(database, "INSERT INTO saga_events (saga_id, seq, type, step, data, occurred_at, position) VALUES ('" +
                           saga_id(n) + "', 1, 'SagaStarted', NULL, '{}', usher_time(1), " + std::to_string(n) + ")");
  }
  CHECK_THROWS(pg.query(database, "UPDATE sagas SET status = 'terminated' WHERE id = '" + saga_id(3) + "'"));
  CHECK(open_postgres_reader(uri).status().code() == StatusCode::kFailedPrecondition);

  REQUIRE(migrate_store(uri).is_ok());

  CHECK(pg.query(database, "SELECT version FROM usher_schema") == std::to_string(kPostgresSchemaVersion));
  CHECK(pg.query(database, "SELECT count(*) FROM sagas") == "3");
  CHECK(pg.query(database, "SELECT indexdef FROM pg_indexes WHERE indexname = 'sagas_by_correlation'") ==
        "CREATE INDEX sagas_by_correlation ON public.sagas USING btree (correlation_id, id) WHERE (correlation_id IS "
        "NOT NULL)");
  auto reader = open_postgres_reader(uri);
  REQUIRE(reader.is_ok());
  auto row = (*reader)->saga(saga_id(2));
  REQUIRE(row.is_ok());
  REQUIRE(row->has_value());
  CHECK((*row)->idempotency_key == "key-2");
  CHECK((*row)->correlation_id == "corr-2");
  CHECK((*row)->created_at == 1'700'000'000'000'002);
  CHECK((*row)->last_error == "boom");

  pg.query(database, "UPDATE sagas SET status = 'terminated' WHERE id = '" + saga_id(3) + "'");
  CHECK(pg.query(database, "SELECT status FROM sagas WHERE id = '" + saga_id(3) + "'") == "terminated");
  CHECK_THROWS(pg.query(database, "UPDATE sagas SET status = 'lost' WHERE id = '" + saga_id(1) + "'"));
  std::vector<std::string> unfinished;
  REQUIRE((*reader)->for_each_unfinished([&](const SagaRow& r, std::vector<Event>&&) { unfinished.push_back(r.id); })
              .is_ok());
  CHECK(unfinished == std::vector<std::string>{saga_id(2)});
  CHECK(pg.query(database, "SELECT count(*) FROM sagas WHERE status IN ('running', 'compensating', 'stuck')") == "1");
}

TEST_CASE("a SQLite log of schema version 2 is upgraded to 3 and gains publication positions") {
  test::TempDir dir;
  const std::string path = dir.file("v2.db");
  {
    test::RawDb raw(path);
    raw.exec("BEGIN");
    raw.exec(schema::kSagaLogSql);
    raw.exec(schema::kSagaLogSql2);
    raw.exec("PRAGMA user_version = 2");
    raw.exec(v1_saga_insert(1, "terminated"));
    raw.exec("INSERT INTO saga_events (saga_id, seq, type, step, data, occurred_at) VALUES ('" + saga_id(1) +
             "', 1, 'SagaStarted', NULL, '{}', 1)");
    raw.exec("COMMIT");
  }
  CHECK(open_publication_store(path).status().code() == StatusCode::kFailedPrecondition);

  test::open_sqlite_log(path)->close();  // the writer migrates

  test::RawDb raw(path);
  CHECK(raw.integer("PRAGMA user_version") == 3);
  CHECK(raw.integer("SELECT count(*) FROM sagas") == 1);
  CHECK(raw.integer("SELECT count(*) FROM saga_events") == 1);
  CHECK(raw.integer("SELECT count(*) FROM usher_publications") == 0);
  CHECK(raw.text("PRAGMA integrity_check") == "ok");
  // Positions are never negative.
  CHECK(sqlite_refuses(path, "INSERT INTO usher_publications VALUES ('kafka:x', -1, 0)"));

  auto publications = open_publication_store(path);
  INFO(publications.status().to_string());
  REQUIRE(publications.is_ok());
  REQUIRE((*publications)->save("kafka:x", 1).is_ok());
  CHECK((*publications)->position("kafka:x").value() == 1);
}

TEST_CASE("a PostgreSQL log of schema version 3 is upgraded to 4 and gains publication positions") {
  const std::string database = "migrate_from_3";
  PgCluster& pg = PgCluster::shared();
  pg.create_database(database);
  const std::string uri = pg.uri(database);
  pg.query(database, std::string("BEGIN;") + schema::kSagaLogPostgresSql + ";" + schema::kSagaLogPostgresSql2 + ";" +
                         schema::kSagaLogPostgresSql3 + "; UPDATE usher_schema SET version = 3; COMMIT");
  pg.query(database, "INSERT INTO sagas (id, workflow, version, definition_hash, status, created_at, updated_at,"
                     " last_seq) VALUES ('" + saga_id(1) + "', 'book', 3, 'sha256:abc', 'terminated',"
                     " usher_time(1), usher_time(2), 1)");
  CHECK(open_publication_store(uri).status().code() == StatusCode::kFailedPrecondition);

  REQUIRE(migrate_store(uri).is_ok());

  CHECK(pg.query(database, "SELECT version FROM usher_schema") == "4");
  CHECK(pg.query(database, "SELECT count(*) FROM sagas") == "1");
  CHECK(pg.query(database, "SELECT count(*) FROM usher_publications") == "0");
  CHECK_THROWS(pg.query(database, "INSERT INTO usher_publications VALUES ('kafka:x', -1, now())"));

  auto publications = open_publication_store(uri);
  INFO(publications.status().to_string());
  REQUIRE(publications.is_ok());
  REQUIRE((*publications)->save("kafka:x", 1).is_ok());
  CHECK((*publications)->position("kafka:x").value() == 1);
}

}  // namespace
}  // namespace usher
