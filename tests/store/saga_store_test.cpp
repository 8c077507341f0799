// The writer side of the SagaStore contract: what append() stores, group
// commit, how a failing group is isolated, definitions. Every store runs these
// (store_test_util.h, test::open_store); SQLite's own are in sqlite_saga_store_test.cpp.
#include <doctest/doctest.h>

#include <atomic>
#include <future>
#include <latch>
#include <map>
#include <mutex>
#include <thread>

#include "store_test_util.h"

namespace usher {
namespace {

using test::append_and_wait;
using test::event;
using test::row;
using test::saga_id;

std::unique_ptr<SagaStore> open_log(const std::string& location) { return test::open_store(location); }

std::unique_ptr<SagaStoreReader> open_reader(const std::string& location) { return test::open_store_reader(location); }

TEST_CASE("appended events and rows read back exactly") {
  test::TempDir dir;
  const std::string path = dir.file("log.db");
  auto log = open_log(path);

  const std::string a = saga_id(1);
  std::vector<Event> events = {
      event(a, 1, EventType::kSagaStarted, "", {{"input", {{"seats", {1, 2}}, {"name", "Zoë"}}}}),
      event(a, 2, EventType::kStepScheduled, "reserve", Json::object()),
      event(a, 3, EventType::kStepSucceeded, "reserve", {{"result", {{"ok", true}}}, {"n", 1.5}, {"none", nullptr}}),
  };
  SagaRow full = row(a, SagaStatus::kCompensating, "book-ticket", 3);
  full.current_step = "reserve";
  full.idempotency_key = "key-1";
  full.correlation_id = "corr-1";
  full.deadline = 1'700'000'060'000'000;
  full.last_error = "payment declined";
  SagaRow bare = row(saga_id(2), SagaStatus::kRunning, "refund", 0);

  REQUIRE(append_and_wait(*log, events, {full, bare}).is_ok());

  auto reader = open_reader(path);
  auto got_events = reader->events(a);
  REQUIRE(got_events.is_ok());
  REQUIRE(got_events->size() == events.size());
  for (size_t i = 0; i < events.size(); ++i) test::check_same((*got_events)[i], events[i]);

  auto got_full = reader->saga(a);
  REQUIRE(got_full.is_ok());
  REQUIRE(got_full->has_value());
  test::check_same(**got_full, full);

  auto got_bare = reader->saga(bare.id);
  REQUIRE(got_bare.is_ok());
  REQUIRE(got_bare->has_value());
  test::check_same(**got_bare, bare);
  CHECK_FALSE((*got_bare)->deadline.has_value());

  if (test::store_under_test() == test::StoreKind::kSqlite) SUBCASE("none is stored as NULL, not as an empty string") {
    test::RawDb raw(path);
    CHECK(raw.integer("SELECT count(*) FROM saga_events WHERE step IS NULL") == 1);
    CHECK(raw.integer("SELECT count(*) FROM sagas WHERE idempotency_key IS NULL AND current_step IS NULL "
                      "AND deadline IS NULL AND last_error IS NULL AND correlation_id IS NULL") == 1);
  }
  SUBCASE("events until a time stop at it, inclusive") {
    auto until = reader->events(a, events[1].occurred_at);
    REQUIRE(until.is_ok());
    REQUIRE(until->size() == 2);
    CHECK(until->back().seq == 2);
  }
  SUBCASE("unknown ids and keys are absent, not errors") {
    auto missing = reader->saga("nope");
    REQUIRE(missing.is_ok());
    CHECK_FALSE(missing->has_value());
    auto no_events = reader->events("nope");
    REQUIRE(no_events.is_ok());
    CHECK(no_events->empty());
    auto by_key = reader->saga_id_by_idempotency_key("key-1");
    REQUIRE(by_key.is_ok());
    CHECK(*by_key == std::optional<std::string>(a));
    auto no_key = reader->saga_id_by_idempotency_key("key-2");
    REQUIRE(no_key.is_ok());
    CHECK_FALSE(no_key->has_value());
  }
}

TEST_CASE("a later row for the same saga replaces the earlier one") {
  test::TempDir dir;
  const std::string path = dir.file("log.db");
  auto log = open_log(path);
  const std::string a = saga_id(1);
  SagaRow started = row(a, SagaStatus::kRunning, "book-ticket", 1);
  started.current_step = "reserve";
  started.deadline = 5;
  SagaRow done = row(a, SagaStatus::kCompleted, "book-ticket", 2);
  done.prior_seq = 1;

  // Two groups for one saga, most likely in one batch: the last one wins.
  log->append({event(a, 1, EventType::kSagaStarted)}, {started}, nullptr);
  REQUIRE(append_and_wait(*log, {event(a, 2, EventType::kSagaCompleted)}, {done}).is_ok());

  auto reader = open_reader(path);
  auto got = reader->saga(a);
  REQUIRE(got.is_ok());
  REQUIRE(got->has_value());
  test::check_same(**got, done);
}

TEST_CASE("concurrent appends share commits") {
  test::TempDir dir;
  const std::string path = dir.file("log.db");
  auto log = open_log(path);
  constexpr int kThreads = 8;
  constexpr int kPerThread = 125;
  std::atomic<int> ok{0};
  std::atomic<int> failed{0};
  auto on_done = [&](Status s) { (s.is_ok() ? ok : failed).fetch_add(1); };
  auto append_all = [&](int thread) {
    for (int i = 0; i < kPerThread; ++i) {
      const std::string id = saga_id(thread * kPerThread + i);
      log->append({event(id, 1, EventType::kSagaStarted)}, {row(id)}, on_done);
    }
  };

  SUBCASE("every group waiting is taken by the next commit") {
    // The writer is held in the first group's callback until every thread has
    // appended, so all 1,000 appends are waiting when it next looks: this checks
    // the batching without depending on how fast the disk is.
    std::latch all_appended(kThreads);
    log->append({}, {}, [&](Status) { all_appended.wait(); });
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        append_all(t);
        all_appended.count_down();
      });
    }
    for (auto& t : threads) t.join();
    log->flush();
    const int appends = kThreads * kPerThread + 1;
    CHECK(ok.load() == kThreads * kPerThread);
    CHECK(failed.load() == 0);
    const SagaStoreStats stats = log->stats();
    CHECK(stats.commits < static_cast<uint64_t>(appends / 5));
    CHECK(stats.events == static_cast<uint64_t>(kThreads * kPerThread));
    MESSAGE("held writer: " << appends << " appends in " << stats.commits << " commits");
  }
  SUBCASE("free running") {
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) threads.emplace_back(append_all, t);
    for (auto& t : threads) t.join();
    log->flush();
    CHECK(ok.load() == kThreads * kPerThread);
    CHECK(failed.load() == 0);
    const SagaStoreStats stats = log->stats();
    CHECK(stats.events == static_cast<uint64_t>(kThreads * kPerThread));
    MESSAGE("free running: " << kThreads * kPerThread << " appends in " << stats.commits << " commits");
  }

  auto reader = open_reader(path);
  auto counts = reader->count_by_status();
  REQUIRE(counts.is_ok());
  CHECK(counts->front() == std::pair<std::string, int64_t>("running", kThreads * kPerThread));
}

TEST_CASE("a failing group fails alone and its batch-mates are committed") {
  test::TempDir dir;
  const std::string path = dir.file("log.db");
  auto log = open_log(path);
  const std::string taken = saga_id(1);
  SagaRow taken_row = row(taken);
  taken_row.idempotency_key = "key-1";
  REQUIRE(append_and_wait(*log, {event(taken, 1, EventType::kSagaStarted)}, {taken_row}).is_ok());

  // Hold the writer in a callback while the groups below queue up, so they are
  // one batch.
  std::promise<void> entered;
  std::promise<void> release;
  log->append({}, {}, [&, wait = release.get_future().share()](Status) {
    entered.set_value();
    wait.wait();
  });
  entered.get_future().wait();
  const uint64_t commits_before = log->stats().commits;

  std::map<std::string, Status> outcome;
  std::mutex outcome_mu;
  auto record = [&](std::string name) {
    return [&, name](Status s) {
      std::lock_guard lock(outcome_mu);
      outcome[name] = std::move(s);
    };
  };
  const std::string b = saga_id(2), c = saga_id(3), d = saga_id(4), e = saga_id(5), f = saga_id(6);
  log->append({event(b, 1, EventType::kSagaStarted)}, {row(b)}, record("b"));
  // A new saga, then a duplicate (saga_id, seq): neither part may be written.
  log->append({event(c, 1, EventType::kSagaStarted), event(taken, 1, EventType::kSagaStarted)}, {row(c)},
              record("duplicate seq"));
  SagaRow same_key = row(d);
  same_key.idempotency_key = "key-1";
  log->append({event(d, 1, EventType::kSagaStarted)}, {same_key}, record("duplicate key"));
  log->append({event(e, 1, EventType::kSagaStarted)}, {row(e)}, record("e"));
  // Two groups in one batch claim the same event: the first one wins.
  log->append({event(f, 1, EventType::kSagaStarted)}, {row(f)}, record("f first"));
  log->append({event(f, 1, EventType::kStepScheduled, "reserve")}, {}, record("f again"));
  release.set_value();
  log->flush();

  REQUIRE(outcome.size() == 6);
  CHECK(outcome["b"].is_ok());
  CHECK(outcome["e"].is_ok());
  CHECK(outcome["f first"].is_ok());
  CHECK(outcome["duplicate seq"].code() == StatusCode::kAlreadyExists);
  CHECK(outcome["duplicate key"].code() == StatusCode::kAlreadyExists);
  CHECK(outcome["f again"].code() == StatusCode::kAlreadyExists);
  MESSAGE("duplicate key: " << outcome["duplicate key"].message());
  // The good groups still shared one commit (the failing ones were excluded
  // from the batch, not written one by one).
  CHECK(log->stats().commits == commits_before + 1);

  auto reader = open_reader(path);
  for (const std::string& id : {b, e, f}) {
    auto got = reader->saga(id);
    REQUIRE(got.is_ok());
    CHECK(got->has_value());
  }
  for (const std::string& id : {c, d}) {
    auto got = reader->saga(id);
    REQUIRE(got.is_ok());
    CHECK_FALSE(got->has_value());
    auto events = reader->events(id);
    REQUIRE(events.is_ok());
    CHECK(events->empty());
  }
  auto f_events = reader->events(f);
  REQUIRE(f_events.is_ok());
  REQUIRE(f_events->size() == 1);
  CHECK(f_events->front().type == EventType::kSagaStarted);
}

TEST_CASE("storing a definition twice is a no-op") {
  test::TempDir dir;
  const std::string path = dir.file("log.db");
  auto log = open_log(path);
  const std::string source = "name: book-ticket\nversion: 3\nsteps: []\n";
  REQUIRE(log->store_definition("sha256:abc", "book-ticket", 3, source).is_ok());
  REQUIRE(log->store_definition("sha256:abc", "book-ticket", 3, source).is_ok());
  REQUIRE(log->store_definition("sha256:def", "book-ticket", 4, source + "# v4\n").is_ok());

  auto reader = open_reader(path);
  auto got = reader->definition_source("sha256:abc");
  REQUIRE(got.is_ok());
  CHECK(*got == std::optional<std::string>(source));
  auto missing = reader->definition_source("sha256:000");
  REQUIRE(missing.is_ok());
  CHECK_FALSE(missing->has_value());
  if (test::store_under_test() == test::StoreKind::kSqlite) {
    test::RawDb raw(path);
    CHECK(raw.integer("SELECT count(*) FROM definitions") == 2);
  }
}

TEST_CASE("a closed log refuses appends as unavailable") {
  test::TempDir dir;
  auto log = open_log(dir.file("log.db"));
  log->close();
  log->close();  // idempotent
  std::optional<Status> outcome;
  log->append({event(saga_id(1), 1, EventType::kSagaStarted)}, {row(saga_id(1))},
              [&](Status s) { outcome = std::move(s); });
  REQUIRE(outcome.has_value());
  CHECK(outcome->code() == StatusCode::kUnavailable);
  CHECK(log->store_definition("h", "w", 1, "src").code() == StatusCode::kUnavailable);
  log->flush();  // returns at once
}

TEST_CASE("a string that is not UTF-8 is written with U+FFFD, never refused") {
  test::TempDir dir;
  const std::string path = dir.file("log.db");
  auto log = open_log(path);
  REQUIRE(append_and_wait(*log, {event(saga_id(1), 1, EventType::kSagaStarted, "", {{"name", std::string("a\xff")}})},
                          {row(saga_id(1))})
              .is_ok());
  auto reader = open_reader(path);
  auto events = reader->events(saga_id(1)).value();
  REQUIRE(events.size() == 1);
  CHECK(events[0].data["name"] == "a\xef\xbf\xbd");
}

TEST_CASE("a group that does not continue the saga's last seq is refused alone: the log never has a gap") {
  test::TempDir dir;
  const std::string path = dir.file("log.db");
  auto log = open_log(path);
  const std::string a = saga_id(1);
  REQUIRE(append_and_wait(*log, {event(a, 1, EventType::kSagaStarted)}, {row(a)}).is_ok());
  // Events 2 and 3 were lost in a failed append; 4 must not follow 1.
  SagaRow late = row(a, SagaStatus::kRunning, "book-ticket", 4);
  late.prior_seq = 3;
  Status refused = append_and_wait(*log, {event(a, 4, EventType::kStepScheduled, "reserve")}, {late});
  CHECK(refused.code() == StatusCode::kAborted);
  // The saga goes on from what the log holds, and others are not affected.
  SagaRow next = row(a, SagaStatus::kRunning, "book-ticket", 2);
  next.prior_seq = 1;
  CHECK(append_and_wait(*log, {event(a, 2, EventType::kStepScheduled, "reserve")}, {next}).is_ok());
  auto reader = open_reader(path);
  auto events = reader->events(a).value();
  REQUIRE(events.size() == 2);
  CHECK(events[1].seq == 2);
}

TEST_CASE("close writes everything queued before it") {
  test::TempDir dir;
  const std::string path = dir.file("log.db");
  std::atomic<int> ok{0};
  {
    auto log = open_log(path);
    for (int i = 0; i < 100; ++i) {
      log->append({event(saga_id(i), 1, EventType::kSagaStarted)}, {row(saga_id(i))}, [&](Status s) {
        if (s.is_ok()) ++ok;
      });
    }
  }  // the destructor closes
  CHECK(ok.load() == 100);
  auto reader = open_reader(path);
  auto counts = reader->count_by_status();
  REQUIRE(counts.is_ok());
  CHECK(counts->front().second == 100);
}

}  // namespace
}  // namespace usher
