// Engine::publish_feed (usher/feed_sink.h) against a sink in the test: every
// event in feed order, a failing sink retried without touching the sagas, and
// the stored position carried across a restart.
#include <doctest/doctest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "engine_fixture.h"

using namespace usher;
using namespace usher::test;
using namespace std::chrono_literals;

namespace {

// Records what it is given; fails while `failing` is set.
class RecordingSink final : public FeedSink {
 public:
  std::string name() const override { return "test:events"; }
  Status publish(const std::vector<Json>& events) override {
    std::lock_guard lock(mu_);
    ++calls_;
    if (failing_) return Status::unavailable("the test's broker is down");
    for (const Json& e : events) got_.push_back(e);
    changed_.notify_all();
    return Status::ok();
  }
  void fail(bool on) {
    std::lock_guard lock(mu_);
    failing_ = on;
  }
  std::vector<Json> got() const {
    std::lock_guard lock(mu_);
    return got_;
  }
  size_t calls() const {
    std::lock_guard lock(mu_);
    return calls_;
  }
  // Waits until it holds `n` events.
  bool wait_for(size_t n, std::chrono::seconds within = 10s) {
    std::unique_lock lock(mu_);
    return changed_.wait_for(lock, within, [&] { return got_.size() >= n; });
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable changed_;
  bool failing_ = false;
  size_t calls_ = 0;
  std::vector<Json> got_;
};

// Every event of the log, as the feed gives it.
std::vector<Json> whole_feed(Engine& engine) {
  auto page = engine.feed("", 1000);
  REQUIRE(page.is_ok());
  return page.value()["events"].get<std::vector<Json>>();
}

bool eventually(const std::function<bool()>& holds, std::chrono::seconds within = 10s) {
  const auto until = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < until) {
    if (holds()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return holds();
}

std::string booking(Engine& engine, int seat, int amount) {
  auto r = engine.start({"booking", {{"seat", seat}, {"amount", amount}}, "", "", ""});
  REQUIRE(r.is_ok());
  CHECK(engine.wait(r->id).get()["status"].is_string());
  return r->id;
}

}  // namespace

TEST_CASE("the feed is published in order, a failing sink stalls only the publication, and a restart goes on from "
          "the stored position") {
  TempDir dir;
  CallLog calls;
  const std::string log = saga_log_at(dir.file("usher.db"));
  auto sink = std::make_shared<RecordingSink>();
  {
    auto engine = open_engine(log);
    REQUIRE(engine->load(load_or_fail(kLocalBookingYaml)).is_ok());
    register_booking_handlers(*engine, calls);
    REQUIRE(engine->resume().is_ok());
    CHECK_FALSE(engine->publication().has_value());
    REQUIRE(engine->publish_feed(sink).is_ok());
    CHECK(engine->publish_feed(sink).code() == StatusCode::kFailedPrecondition);  // one sink per engine

    booking(*engine, 1, 120);
    booking(*engine, 2, 5000);  // compensated
    auto all = whole_feed(*engine);
    REQUIRE(sink->wait_for(all.size()));
    CHECK(sink->got() == all);  // the feed's JSON, in feed order
    CHECK(eventually([&] { return engine->publication()->lag_events == 0; }));
    auto stats = engine->publication().value();
    CHECK(stats.name == "test:events");
    CHECK(stats.state == "publishing");
    CHECK(stats.position == std::stoll(all.back()["cursor"].get<std::string>()));
    CHECK(stats.published == all.size());

    // The broker goes down: sagas still run; the publication stalls, says
    // why, and catches up once it is back.
    sink->fail(true);
    booking(*engine, 3, 120);
    CHECK(eventually([&] { return engine->publication()->state == "stalled"; }));
    stats = engine->publication().value();
    CHECK(stats.last_error == "the test's broker is down");
    CHECK(stats.failures >= 1);
    CHECK(stats.lag_events > 0);
    sink->fail(false);
    all = whole_feed(*engine);
    REQUIRE(sink->wait_for(all.size(), 15s));  // the retry comes within the first pause
    CHECK(sink->got() == all);
    CHECK(eventually([&] { return engine->publication()->state == "publishing"; }));
    CHECK(engine->publication()->last_error.empty());
    engine->shutdown();
  }

  // A new engine on the same log publishes only what came after.
  auto again = std::make_shared<RecordingSink>();
  auto engine = open_engine(log);
  REQUIRE(engine->load(load_or_fail(kLocalBookingYaml)).is_ok());
  register_booking_handlers(*engine, calls);
  REQUIRE(engine->resume().is_ok());
  REQUIRE(engine->publish_feed(again).is_ok());
  const std::string id = booking(*engine, 4, 120);
  auto all = whole_feed(*engine);
  const size_t before = sink->got().size();
  REQUIRE(again->wait_for(all.size() - before));
  auto got = again->got();
  REQUIRE_FALSE(got.empty());
  CHECK(got.front()["saga_id"] == id);
  CHECK(got.front()["seq"] == 1);
  CHECK(got.size() == all.size() - before);
}
