// Wakes readers of the event feed (a long-poll GET /v1/events, a Server-Sent
// Events stream) when the log may hold events they have not read, instead of
// having each poll the log.
//
// A reader takes mark() before it reads the feed; if the read found nothing
// new, watch(mark, …) calls it back as soon as this engine commits anything
// after the mark (at once if it already has), or after the timeout. In a
// cluster other nodes commit too, and this engine does not hear of it: there
// every watcher is also woken every poll_every() to read again.
//
// mark() and watch() may be called from any thread; the rest runs on the
// engine thread, which also runs the callbacks: they must not block (the API
// posts its next read to its own workers).
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>

#include "usher/duration.h"

namespace usher {

class FeedWatch {
 public:
  explicit FeedWatch(boost::asio::io_context& engine) : io_(engine) {}

  // Any thread.
  uint64_t mark() const { return commits_.load(std::memory_order_acquire); }
  void watch(uint64_t mark, Millis timeout, std::function<void()> ready);

  // ---- engine thread ----
  // Events of this engine are durable (and so readable): wakes every watcher.
  void committed();
  // Other engines write the same log: watchers are woken this often as well.
  void poll_every(Millis every) { poll_ = every; }
  // Wakes every watcher, and from now on answers each watch() at once: the
  // server is shutting down and its readers are answered with what they have.
  void release();

 private:
  struct Watcher {
    std::shared_ptr<boost::asio::steady_timer> timer;
    std::function<void()> ready;
  };
  void fire(uint64_t id);
  void fire_all();

  boost::asio::io_context& io_;
  std::atomic<uint64_t> commits_{0};
  Millis poll_{0};  // 0: this engine is the log's only writer
  bool released_ = false;
  uint64_t next_id_ = 0;
  std::unordered_map<uint64_t, Watcher> watchers_;
};

}  // namespace usher
