// Measurements, not assertions: skipped by default, run with
//   usher_store_tests --no-skip --test-case='measures*'
// They print figures with MESSAGE for the design's performance budget.
#include <doctest/doctest.h>

#include <chrono>
#include <future>
#include <thread>

#include "store/open_store.h"
#include "store_test_util.h"

namespace usher {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// A 10-event saga as the engine logs it: started, then scheduled/succeeded per step.
std::vector<Event> ten_events(const std::string& id) {
  std::vector<Event> events;
  events.push_back(test::event(id, 1, EventType::kSagaStarted, "",
                               {{"input", {{"event", "concert-42"}, {"seats", {"A1", "A2"}}, {"user", "u-1001"}}}}));
  const char* steps[] = {"reserve", "pay", "issue", "notify"};
  int64_t seq = 2;
  for (const char* step : steps) {
    events.push_back(test::event(id, seq++, EventType::kStepScheduled, step, {{"attempt", 1}}));
    events.push_back(test::event(id, seq++, EventType::kStepSucceeded, step, {{"result", {{"ref", "r-123456"}}}}));
  }
  events.push_back(test::event(id, seq, EventType::kSagaCompleted));
  return events;
}

TEST_CASE("measures group commit throughput with 64 threads, synchronous=FULL" * doctest::skip()) {
  test::TempDir dir;
  auto opened = open_sqlite_store(dir.file("perf.db"), Durability::kFull);
  REQUIRE(opened.is_ok());
  SagaStore& log = **opened;
  constexpr int kThreads = 64;
  constexpr int kSagasPerThread = 300;
  // Each thread keeps one saga in flight: append it, wait until durable, repeat.
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kSagasPerThread; ++i) {
        const std::string id = test::saga_id(t * kSagasPerThread + i);
        Status s = test::append_and_wait(log, ten_events(id), {test::row(id, SagaStatus::kCompleted, "book", 10)});
        CHECK(s.is_ok());
      }
    });
  }
  for (auto& t : threads) t.join();
  const double secs = seconds_since(start);
  const SagaStoreStats stats = log.stats();
  MESSAGE((kThreads * kSagasPerThread) << " sagas, " << stats.events << " events in " << secs << " s: "
                                     << stats.events / secs << " events/s, " << stats.commits << " commits ("
                                     << stats.commits / secs << "/s), "
                                     << static_cast<double>(stats.events) / static_cast<double>(stats.commits)
                                     << " events/commit, mean COMMIT "
                                     << static_cast<double>(stats.commit_micros_total) /
                                            static_cast<double>(stats.commits)
                                     << " µs");
}

TEST_CASE("measures one saga at a time, synchronous=FULL" * doctest::skip()) {
  test::TempDir dir;
  auto opened = open_sqlite_store(dir.file("perf.db"), Durability::kFull);
  REQUIRE(opened.is_ok());
  SagaStore& log = **opened;
  constexpr int kAppends = 2000;
  const auto start = Clock::now();
  for (int i = 0; i < kAppends; ++i) {
    const std::string id = test::saga_id(i);
    REQUIRE(test::append_and_wait(log, {test::event(id, 1, EventType::kSagaStarted)}, {test::row(id)}).is_ok());
  }
  const double secs = seconds_since(start);
  MESSAGE(kAppends << " sequential appends in " << secs << " s: " << kAppends / secs << " durable appends/s, "
                   << secs / kAppends * 1e6 << " µs each");
}

TEST_CASE("measures recovery input: 100,000 unfinished sagas" * doctest::skip()) {
  test::TempDir dir;
  const std::string path = dir.file("recovery.db");
  constexpr int kUnfinished = 100'000;
  constexpr int kFinished = 100'000;
  {
    auto opened = open_sqlite_store(path, Durability::kNormal);
    REQUIRE(opened.is_ok());
    SagaStore& log = **opened;
    const auto start = Clock::now();
    // Finished and unfinished interleaved; 4 events each (started, 3 step events).
    for (int base = 0; base < kUnfinished + kFinished; base += 1000) {
      std::vector<Event> events;
      std::vector<SagaRow> rows;
      for (int n = base; n < base + 1000; ++n) {
        const std::string id = test::saga_id(n);
        auto ten = ten_events(id);
        events.insert(events.end(), ten.begin(), ten.begin() + 4);
        rows.push_back(test::row(id, n % 2 == 0 ? SagaStatus::kRunning : SagaStatus::kCompleted, "book", 4));
      }
      log.append(std::move(events), std::move(rows), [](Status s) { CHECK(s.is_ok()); });
    }
    log.flush();
    MESSAGE("wrote " << (kUnfinished + kFinished) << " sagas (" << log.stats().events << " events) in "
                     << seconds_since(start) << " s");
  }
  auto reader = open_sqlite_reader(path, true);
  REQUIRE(reader.is_ok());
  const auto start = Clock::now();
  int sagas = 0;
  size_t events = 0;
  Status s = (*reader)->for_each_unfinished([&](const SagaRow&, std::vector<Event>&& e) {
    ++sagas;
    events += e.size();
  });
  const double secs = seconds_since(start);
  REQUIRE(s.is_ok());
  CHECK(sagas == kUnfinished);
  MESSAGE("for_each_unfinished: " << sagas << " sagas, " << events << " events in " << secs << " s");
}

}  // namespace
}  // namespace usher
