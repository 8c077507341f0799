// Several nodes on one PostgreSQL log, at the store's level (docs/cluster.md):
// leases, the ownership checks of every group commit, and claims. The
// engine's side and whole clusters of `usher serve` are in tests/cluster.
#include <doctest/doctest.h>

#include <chrono>
#include <future>
#include <set>
#include <thread>

#include "store/open_store.h"
#include "store_test_util.h"

namespace usher {
namespace {

using namespace std::chrono_literals;
using test::append_and_wait;
using test::event;
using test::PgCluster;
using test::row;
using test::saga_id;

struct Log {
  std::string database;
  std::string uri;
  std::unique_ptr<SagaStore> store;
  std::unique_ptr<NodeRegistry> registry;

  explicit Log(const std::string& name) : database(name) {
    PgCluster::shared().create_database(name);
    uri = PgCluster::shared().uri(name);
    auto opened = open_postgres_store(uri);
    INFO(opened.status().to_string());
    REQUIRE(opened.is_ok());
    store = std::move(opened).value();
    registry = this->open_registry();
  }

  std::unique_ptr<NodeRegistry> open_registry() {
    auto r = store->open_registry();
    INFO(r.status().to_string());
    REQUIRE(r.is_ok());
    REQUIRE(r.value() != nullptr);
    return std::move(r).value();
  }

  int64_t join(std::chrono::milliseconds lease = 60s) {
    auto node = registry->join("test:1", lease);
    REQUIRE(node.is_ok());
    return node.value();
  }

  std::string query(const std::string& sql) { return PgCluster::shared().query(database, sql); }
  void end_lease(int64_t node) {
    query("UPDATE usher_nodes SET lease_until = clock_timestamp() - interval '1 ms' WHERE id = " +
          std::to_string(node));
  }
};

SagaRow owned(const std::string& id, int64_t owner, int64_t fence, int64_t prior, int64_t last) {
  SagaRow r = row(id, SagaStatus::kRunning, "book-ticket", last);
  r.prior_seq = prior;
  r.owner = owner;
  r.fence = fence;
  return r;
}

// Starts a saga owned by `node` under fence 1, with events 1..2.
void start_saga(Log& log, const std::string& id, int64_t node) {
  Status s = append_and_wait(
      *log.store, {event(id, 1, EventType::kSagaStarted), event(id, 2, EventType::kStepScheduled, "reserve")},
      {owned(id, node, 1, 0, 2)});
  INFO(s.to_string());
  REQUIRE(s.is_ok());
}

TEST_CASE("an append under a fence the saga no longer has writes nothing, and the rest of its batch commits") {
  Log log("fence_refuses");
  const int64_t a = log.join();
  const int64_t b = log.join();
  CHECK(a != b);
  const std::string taken = saga_id(1), kept = saga_id(2);
  start_saga(log, taken, a);
  start_saga(log, kept, a);
  CHECK(log.query("SELECT owner || '/' || fence FROM sagas WHERE id = '" + taken + "'") == std::to_string(a) + "/1");

  // b takes `taken` over (an operator acted on it there): fence 2.
  auto claimed = log.registry->claim(b, taken);
  REQUIRE(claimed.is_ok());
  REQUIRE(claimed.value());
  CHECK(claimed.value()->fence == 2);

  // a's next appends of both sagas go in one batch: the fenced one alone fails.
  std::promise<Status> fenced_done, kept_done;
  log.store->append({event(taken, 3, EventType::kStepSucceeded, "reserve")}, {owned(taken, a, 1, 2, 3)},
                    [&](Status s) { fenced_done.set_value(s); });
  log.store->append({event(kept, 3, EventType::kStepSucceeded, "reserve")}, {owned(kept, a, 1, 2, 3)},
                    [&](Status s) { kept_done.set_value(s); });
  Status fenced = fenced_done.get_future().get();
  CHECK(fenced.code() == StatusCode::kNotOwner);
  CHECK(kept_done.get_future().get().is_ok());
  CHECK(log.query("SELECT max(seq) FROM saga_events WHERE saga_id = '" + taken + "'") == "2");
  CHECK(log.query("SELECT max(seq) FROM saga_events WHERE saga_id = '" + kept + "'") == "3");

  // b writes under its fence, and its events say so.
  CHECK(append_and_wait(*log.store, {event(taken, 3, EventType::kStepSucceeded, "reserve")},
                        {owned(taken, b, 2, 2, 3)})
            .is_ok());
  CHECK(log.query("SELECT string_agg(seq || ':' || node || '/' || fence, ' ' ORDER BY seq) FROM saga_events "
                  "WHERE saga_id = '" + taken + "'") ==
        "1:" + std::to_string(a) + "/1 2:" + std::to_string(a) + "/1 3:" + std::to_string(b) + "/2");
}

TEST_CASE("a node whose lease ended writes nothing: neither new sagas nor events, and other nodes' groups commit") {
  Log log("lease_refuses");
  const int64_t a = log.join();
  const int64_t b = log.join();
  const std::string of_a = saga_id(1), of_b = saga_id(2), new_of_a = saga_id(3);
  start_saga(log, of_a, a);
  start_saga(log, of_b, b);
  log.end_lease(a);

  std::promise<Status> a_done, b_done, new_done;
  log.store->append({event(of_a, 3, EventType::kStepSucceeded, "reserve")}, {owned(of_a, a, 1, 2, 3)},
                    [&](Status s) { a_done.set_value(s); });
  log.store->append({event(of_b, 3, EventType::kStepSucceeded, "reserve")}, {owned(of_b, b, 1, 2, 3)},
                    [&](Status s) { b_done.set_value(s); });
  log.store->append({event(new_of_a, 1, EventType::kSagaStarted)}, {owned(new_of_a, a, 1, 0, 1)},
                    [&](Status s) { new_done.set_value(s); });
  CHECK(a_done.get_future().get().code() == StatusCode::kNotOwner);
  CHECK(new_done.get_future().get().code() == StatusCode::kNotOwner);
  CHECK(b_done.get_future().get().is_ok());
  CHECK(log.query("SELECT count(*) FROM sagas WHERE id = '" + new_of_a + "'") == "0");
  CHECK(log.query("SELECT max(seq) FROM saga_events WHERE saga_id = '" + of_a + "'") == "2");

  // Its renewal is refused too: it must join again as a new node.
  auto renewed = log.registry->renew(a, 60s);
  REQUIRE(renewed.is_ok());
  CHECK_FALSE(renewed.value());
  auto b_renewed = log.registry->renew(b, 60s);
  REQUIRE(b_renewed.is_ok());
  CHECK(b_renewed.value());
}

TEST_CASE("claims take only the running sagas of nodes whose lease ended, each once, under a new fence") {
  Log log("claims");
  const int64_t dead = log.join();
  const int64_t live = log.join();
  const int64_t c1 = log.join();
  const int64_t c2 = log.join();
  constexpr int kOrphans = 300;
  for (int i = 1; i <= kOrphans; ++i) start_saga(log, saga_id(i), dead);
  start_saga(log, saga_id(1000), live);
  // A settled saga of the dead node stays where it is.
  const std::string done = saga_id(2000);
  start_saga(log, done, dead);
  SagaRow finished = owned(done, dead, 1, 2, 3);
  finished.status = SagaStatus::kCompleted;
  REQUIRE(append_and_wait(*log.store, {event(done, 3, EventType::kSagaCompleted)}, {finished}).is_ok());

  // Nothing while the lease holds.
  auto early = log.registry->claim_orphans(c1, 1000);
  REQUIRE(early.is_ok());
  CHECK(early->empty());

  log.end_lease(dead);
  // Two claimers at once, in batches of 50: disjoint, and together all of them.
  std::set<std::string> got1, got2;
  auto claim_all = [&](int64_t node, std::set<std::string>& got) {
    auto registry = log.open_registry();
    for (;;) {
      auto batch = registry->claim_orphans(node, 50);
      REQUIRE(batch.is_ok());
      if (batch->empty()) return;
      for (const ClaimedSaga& c : batch.value()) {
        CHECK(c.fence == 2);
        got.insert(c.id);
      }
    }
  };
  std::thread t1([&] { claim_all(c1, got1); });
  std::thread t2([&] { claim_all(c2, got2); });
  t1.join();
  t2.join();
  CHECK(got1.size() + got2.size() == kOrphans);
  for (const std::string& id : got1) CHECK(got2.count(id) == 0);
  CHECK(log.query("SELECT count(*) FROM sagas WHERE owner = " + std::to_string(dead)) == "1");  // the settled one
  CHECK(log.query("SELECT owner FROM sagas WHERE id = '" + saga_id(1000) + "'") == std::to_string(live));

  // A node that left hands its sagas over at once.
  REQUIRE(log.registry->leave(live).is_ok());
  auto handed = log.registry->claim_orphans(c1, 10);
  REQUIRE(handed.is_ok());
  REQUIRE(handed->size() == 1);
  CHECK(handed->front().id == saga_id(1000));
}

}  // namespace
}  // namespace usher
