#include "exec/feed_watch.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <utility>
#include <vector>

namespace usher {

namespace asio = boost::asio;

void FeedWatch::watch(uint64_t mark, Millis timeout, std::function<void()> ready) {
  asio::post(io_, [this, mark, timeout, ready = std::move(ready)]() mutable {
    if (released_ || commits_.load(std::memory_order_acquire) != mark) return ready();
    const uint64_t id = next_id_++;
    // Woken early is harmless (the reader reads again and watches again), so
    // an hour bounds the timer's arithmetic.
    Millis wait = std::min(timeout, Millis{3'600'000});
    if (poll_.count() > 0) wait = std::min(wait, poll_);
    auto timer = std::make_shared<asio::steady_timer>(io_, wait);
    timer->async_wait([this, id, timer](const boost::system::error_code&) { fire(id); });
    watchers_.emplace(id, Watcher{std::move(timer), std::move(ready)});
  });
}

void FeedWatch::committed() {
  commits_.fetch_add(1, std::memory_order_acq_rel);
  if (!watchers_.empty()) fire_all();
}

void FeedWatch::release() {
  released_ = true;
  fire_all();
}

void FeedWatch::fire(uint64_t id) {
  auto it = watchers_.find(id);
  if (it == watchers_.end()) return;  // already woken
  auto ready = std::move(it->second.ready);
  watchers_.erase(it);
  ready();
}

void FeedWatch::fire_all() {
  // Taken out first: a callback may watch again.
  std::vector<Watcher> woken;
  woken.reserve(watchers_.size());
  for (auto& [id, w] : watchers_) woken.push_back(std::move(w));
  watchers_.clear();
  for (Watcher& w : woken) {
    w.timer->cancel();  // its handler finds nothing to fire
    w.ready();
  }
}

}  // namespace usher
