#include "exec/feed_publisher.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "view/feed_view.h"

namespace usher {

namespace {

constexpr size_t kBatch = 5000;
constexpr std::chrono::milliseconds kFirstPause{1000};
constexpr std::chrono::milliseconds kLongestPause{30'000};
// How often a node that does not hold the publication tries to claim it.
constexpr std::chrono::milliseconds kClaimEvery{2000};
// The longest wait for the next commit before the log is read again anyway.
constexpr std::chrono::milliseconds kIdleRead{1000};

double seconds_since(int64_t micros) {
  const auto now = std::chrono::duration_cast<std::chrono::microseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  return std::max<double>(0, static_cast<double>(now - micros) / 1e6);
}

}  // namespace

FeedPublisher::FeedPublisher(std::string location, std::unique_ptr<SagaStoreReader> reader,
                             std::shared_ptr<FeedSink> sink, FeedWatch& feed)
    : location_(std::move(location)), reader_(std::move(reader)), sink_(std::move(sink)), feed_(feed) {
  stats_.name = sink_->name();
}

FeedPublisher::~FeedPublisher() { stop(); }

void FeedPublisher::start() {
  thread_ = std::thread([this] { run(); });
}

void FeedPublisher::stop() {
  {
    std::lock_guard lock(wakeup_->mu);
    wakeup_->stopping = true;
    wakeup_->cv.notify_all();
  }
  sink_->cancel();
  if (thread_.joinable()) thread_.join();
}

bool FeedPublisher::stopping() const {
  std::lock_guard lock(wakeup_->mu);
  return wakeup_->stopping;
}

PublicationStats FeedPublisher::stats() const {
  std::lock_guard lock(stats_mu_);
  return stats_;
}

void FeedPublisher::wait(std::chrono::milliseconds at_most, const uint64_t* mark) {
  {
    std::lock_guard lock(wakeup_->mu);
    wakeup_->moved = false;
  }
  if (mark) {
    feed_.watch(*mark, at_most, [w = wakeup_] {
      std::lock_guard lock(w->mu);
      w->moved = true;
      w->cv.notify_all();
    });
  }
  std::unique_lock lock(wakeup_->mu);
  wakeup_->cv.wait_for(lock, at_most, [this] { return wakeup_->stopping || wakeup_->moved; });
}

void FeedPublisher::fail(const std::string& state, const std::string& error) {
  std::lock_guard lock(stats_mu_);
  if (stats_.state != state || stats_.last_error != error)
    spdlog::warn("publication {}: {}; trying again", stats_.name, error);
  stats_.state = state;
  stats_.last_error = error;
  ++stats_.failures;
}

void FeedPublisher::run() {
  auto pause = kFirstPause;
  for (;;) {
    if (stopping()) return;
    auto store = open_publication_store(location_);
    if (!store.is_ok()) {
      fail("stalled", "cannot open the log: " + store.status().message());
      wait(pause);
      pause = std::min(pause * 2, kLongestPause);
      continue;
    }
    for (;;) {
      auto claimed = store.value()->claim(stats_.name);
      if (!claimed.is_ok()) {
        fail("stalled", "cannot claim the publication: " + claimed.status().message());
        break;
      }
      if (claimed.value()) break;
      {
        std::lock_guard lock(stats_mu_);
        if (stats_.state != "standby") spdlog::info("publication {}: another node publishes; standing by", stats_.name);
        stats_.state = "standby";
      }
      wait(kClaimEvery);
      if (stopping()) return;
    }
    publish_claimed(*store.value());
    wait(pause);
    pause = std::min(pause * 2, kLongestPause);
  }
}

void FeedPublisher::publish_claimed(PublicationStore& store) {
  auto stored = store.position(stats_.name);
  if (!stored.is_ok()) return fail("stalled", "cannot read the publication's position: " + stored.status().message());
  int64_t position = stored.value();
  {
    std::lock_guard lock(stats_mu_);
    spdlog::info("publication {}: publishing from position {}", stats_.name, position);
    stats_.state = "publishing";
    stats_.position = position;
  }
  auto pause = kFirstPause;
  for (;;) {
    if (stopping()) return;
    const uint64_t mark = feed_.mark();  // before the read: a commit after it wakes the wait below
    auto batch = reader_->events_after(position, kBatch);
    if (!batch.is_ok()) return fail("stalled", "cannot read the log: " + batch.status().message());
    auto last = reader_->last_position();
    {
      std::lock_guard lock(stats_mu_);
      if (last.is_ok()) stats_.lag_events = std::max<int64_t>(0, last.value() - position);
      stats_.lag_seconds = batch->empty() ? 0 : seconds_since(batch->front().event.occurred_at);
    }
    if (batch->empty()) {
      wait(kIdleRead, &mark);
      continue;
    }
    std::vector<Json> events;
    events.reserve(batch->size());
    for (const CommittedEvent& c : batch.value()) events.push_back(feed_event_to_json(c));
    if (Status sent = sink_->publish(events); !sent.is_ok()) {
      if (stopping()) return;
      fail("stalled", sent.message());
      wait(pause);
      pause = std::min(pause * 2, kLongestPause);
      continue;
    }
    const int64_t next = batch->back().position;
    if (Status saved = store.save(stats_.name, next); !saved.is_ok())
      return fail("stalled", "cannot store the publication's position: " + saved.message());
    position = next;
    pause = kFirstPause;
    std::lock_guard lock(stats_mu_);
    if (stats_.state == "stalled") spdlog::info("publication {}: publishing again", stats_.name);
    stats_.state = "publishing";
    stats_.last_error.clear();
    stats_.position = position;
    stats_.published += events.size();
    stats_.lag_events = last.is_ok() ? std::max<int64_t>(0, last.value() - position) : stats_.lag_events;
  }
}

}  // namespace usher
