// The read side of the SagaStore contract: listing, recovery's input and the
// events in commit order. Every store runs these (store_test_util.h);
// SQLite's own (readers beside a writer, a killed writer) are in sqlite_saga_reader_test.cpp.
#include <doctest/doctest.h>

#include <map>

#include "store_test_util.h"

namespace usher {
namespace {

using test::append_and_wait;
using test::event;
using test::row;
using test::saga_id;

std::unique_ptr<SagaStore> open_log(const std::string& location) { return test::open_store(location); }

std::unique_ptr<SagaStoreReader> open_reader(const std::string& location) { return test::open_store_reader(location); }

std::vector<std::string> ids_of(const Result<std::vector<SagaRow>>& rows) {
  REQUIRE(rows.is_ok());
  std::vector<std::string> ids;
  for (const SagaRow& r : *rows) ids.push_back(r.id);
  return ids;
}

std::vector<std::string> ids(std::initializer_list<int> numbers) {
  std::vector<std::string> out;
  for (int n : numbers) out.push_back(saga_id(n));
  return out;
}

TEST_CASE("sagas are listed newest first, filtered and paged by cursor") {
  test::TempDir dir;
  const std::string path = dir.file("log.db");
  auto log = open_log(path);
  // 0..11: workflow "book" for even, "refund" for odd; every third completed.
  std::vector<SagaRow> rows;
  for (int i = 0; i < 12; ++i) {
    rows.push_back(row(saga_id(i), i % 3 == 0 ? SagaStatus::kCompleted : SagaStatus::kRunning,
                       i % 2 == 0 ? "book" : "refund"));
  }
  REQUIRE(append_and_wait(*log, {}, rows).is_ok());
  auto reader = open_reader(path);

  SUBCASE("pages follow the cursor until the end") {
    SagaFilter filter;
    filter.limit = 5;
    CHECK(ids_of(reader->list(filter)) == ids({11, 10, 9, 8, 7}));
    filter.after = saga_id(7);
    CHECK(ids_of(reader->list(filter)) == ids({6, 5, 4, 3, 2}));
    filter.after = saga_id(2);
    CHECK(ids_of(reader->list(filter)) == ids({1, 0}));
    filter.after = saga_id(0);
    CHECK(ids_of(reader->list(filter)).empty());
  }
  SUBCASE("by status") {
    SagaFilter filter;
    filter.status = SagaStatus::kCompleted;
    CHECK(ids_of(reader->list(filter)) == ids({9, 6, 3, 0}));
    filter.after = saga_id(6);
    CHECK(ids_of(reader->list(filter)) == ids({3, 0}));
  }
  SUBCASE("by workflow") {
    SagaFilter filter;
    filter.workflow = "refund";
    filter.limit = 3;
    CHECK(ids_of(reader->list(filter)) == ids({11, 9, 7}));
    filter.after = saga_id(7);
    CHECK(ids_of(reader->list(filter)) == ids({5, 3, 1}));
  }
  SUBCASE("by workflow and status") {
    SagaFilter filter;
    filter.workflow = "book";
    filter.status = SagaStatus::kRunning;
    CHECK(ids_of(reader->list(filter)) == ids({10, 8, 4, 2}));
    filter.workflow = "nothing";
    CHECK(ids_of(reader->list(filter)).empty());
  }
  SUBCASE("counts by status include every status") {
    auto counts = reader->count_by_status();
    REQUIRE(counts.is_ok());
    std::vector<std::pair<std::string, int64_t>> want = {
        {"running", 8}, {"compensating", 0}, {"completed", 4}, {"compensated", 0}, {"stuck", 0}, {"terminated", 0}};
    CHECK(*counts == want);
  }
}

TEST_CASE("for_each_unfinished skips finished sagas and groups events by saga in order") {
  test::TempDir dir;
  const std::string path = dir.file("log.db");
  auto log = open_log(path);
  const std::string running = saga_id(1), completed = saga_id(2), compensating = saga_id(3),
                    compensated = saga_id(4), stuck = saga_id(5);
  // Interleaved across groups, as concurrent sagas are logged.
  REQUIRE(append_and_wait(*log,
                          {event(running, 1, EventType::kSagaStarted), event(completed, 1, EventType::kSagaStarted),
                           event(compensating, 1, EventType::kSagaStarted),
                           event(compensated, 1, EventType::kSagaStarted), event(stuck, 1, EventType::kSagaStarted)},
                          {})
              .is_ok());
  REQUIRE(append_and_wait(*log,
                          {event(compensating, 2, EventType::kStepScheduled, "reserve"),
                           event(running, 2, EventType::kStepScheduled, "reserve"),
                           event(completed, 2, EventType::kSagaCompleted),
                           event(compensating, 3, EventType::kStepFailed, "reserve", {{"error", "no seats"}}),
                           event(compensated, 2, EventType::kSagaCompensated)},
                          {row(running, SagaStatus::kRunning, "book", 2), row(completed, SagaStatus::kCompleted),
                           row(compensating, SagaStatus::kCompensating, "book", 3),
                           row(compensated, SagaStatus::kCompensated), row(stuck, SagaStatus::kStuck)})
              .is_ok());
  auto reader = open_reader(path);

  std::vector<std::string> seen;
  std::map<std::string, std::vector<int64_t>> seqs;
  Status s = reader->for_each_unfinished([&](const SagaRow& r, std::vector<Event>&& events) {
    seen.push_back(r.id);
    // The callback may read through the same reader, as recovery does for
    // definitions, without cutting the iteration short.
    auto again = reader->saga(r.id);
    REQUIRE(again.is_ok());
    CHECK(again->has_value());
    for (const Event& e : events) {
      CHECK(e.saga_id == r.id);
      seqs[r.id].push_back(e.seq);
    }
    if (r.id == compensating) {
      CHECK(r.status == SagaStatus::kCompensating);
      CHECK(events.back().data == Json{{"error", "no seats"}});
      CHECK(events.back().step == "reserve");
    }
  });
  REQUIRE(s.is_ok());
  CHECK(seen == std::vector<std::string>{running, compensating, stuck});
  CHECK(seqs[running] == std::vector<int64_t>{1, 2});
  CHECK(seqs[compensating] == std::vector<int64_t>{1, 2, 3});
  CHECK(seqs[stuck] == std::vector<int64_t>{1});
}

TEST_CASE("events_after reads every saga's events in commit order, in pages") {
  test::TempDir dir;
  const std::string path = dir.file("log.db");
  auto log = open_log(path);
  const std::string a = saga_id(1), b = saga_id(2);
  // Interleaved across sagas, over three commits.
  REQUIRE(append_and_wait(*log, {event(b, 1, EventType::kSagaStarted)}, {row(b)}).is_ok());
  REQUIRE(append_and_wait(*log, {event(a, 1, EventType::kSagaStarted), event(a, 2, EventType::kStepScheduled, "pay")},
                          {row(a, SagaStatus::kRunning, "book-ticket", 2)})
              .is_ok());
  SagaRow b2 = row(b, SagaStatus::kRunning, "book-ticket", 2);
  b2.prior_seq = 1;
  REQUIRE(append_and_wait(*log, {event(b, 2, EventType::kStepScheduled, "hold")}, {b2}).is_ok());

  auto reader = open_reader(path);
  auto all = reader->events_after(0, 100);
  REQUIRE(all.is_ok());
  std::vector<std::pair<std::string, int64_t>> order;
  for (const CommittedEvent& c : *all) order.emplace_back(c.event.saga_id, c.event.seq);
  CHECK(order == std::vector<std::pair<std::string, int64_t>>{{b, 1}, {a, 1}, {a, 2}, {b, 2}});
  for (size_t i = 1; i < all->size(); ++i) CHECK((*all)[i - 1].position < (*all)[i].position);
  CHECK((*all)[2].event.step == "pay");
  for (const CommittedEvent& c : *all) CHECK(c.workflow == "book-ticket");  // the saga's, for the feed

  // A consumer resumes after the last position it saw.
  auto page = reader->events_after((*all)[1].position, 2);
  REQUIRE(page.is_ok());
  REQUIRE(page->size() == 2);
  CHECK(page->front().event.saga_id == a);
  CHECK(page->front().event.seq == 2);
  auto rest = reader->events_after(all->back().position, 100);
  REQUIRE(rest.is_ok());
  CHECK(rest->empty());
}

}  // namespace
}  // namespace usher
