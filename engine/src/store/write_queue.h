// The queue between a store's callers and its one writer thread, shared by the
// SQLite and PostgreSQL stores: append() pushes a group, the writer takes
// every waiting group as one batch, commits it, runs the groups' callbacks and
// only then marks them finished, which is what flush() waits for.
//
// The queue is not bounded here: the engine bounds the sagas in flight, and a
// push that blocked could deadlock an engine thread that is also the consumer
// of the `done` callbacks.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <vector>

namespace usher {

// Group: anything with an `events` vector (its size is the group's weight).
template <class Group>
class WriteQueue {
 public:
  // False once close() was called: the group was not queued.
  bool push(Group& group) {
    bool wake = false;
    {
      std::lock_guard lock(mu_);
      if (closing_) return false;
      // The writer only sleeps on an empty queue; otherwise it will look again.
      wake = queue_.empty();
      queued_events_.fetch_add(group.events.size(), std::memory_order_relaxed);
      queue_.push_back(std::move(group));
      ++enqueued_;
    }
    if (wake) work_cv_.notify_one();
    return true;
  }

  // Writer: waits for groups, then moves every waiting group into `batch`, up
  // to `max_events` events but always at least one, however large, so a big
  // group cannot stall the queue. False when closed and drained.
  bool take(std::vector<Group>& batch, size_t max_events) {
    std::unique_lock lock(mu_);
    work_cv_.wait(lock, [&] { return !queue_.empty() || closing_; });
    if (queue_.empty()) return false;
    size_t events = 0;
    while (!queue_.empty()) {
      size_t n = queue_.front().events.size();
      if (!batch.empty() && events + n > max_events) break;
      events += n;
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    return true;
  }

  // Writer: moves every waiting group into `batch` without waiting.
  void take_all(std::vector<Group>& batch) {
    std::lock_guard lock(mu_);
    while (!queue_.empty()) {
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
  }

  // Writer: sleeps for `pause`, or less if close() is called. True if closing.
  bool pause(std::chrono::milliseconds pause) {
    std::unique_lock lock(mu_);
    return work_cv_.wait_for(lock, pause, [&] { return closing_; });
  }

  // Writer: the callbacks of `groups` groups holding `events` events have
  // run; releases flush() callers.
  void finished(size_t groups, size_t events) {
    queued_events_.fetch_sub(events, std::memory_order_relaxed);
    {
      std::lock_guard lock(mu_);
      finished_ += groups;
    }
    done_cv_.notify_all();
  }

  // Waits until every group queued before the call has finished.
  void flush() {
    std::unique_lock lock(mu_);
    const uint64_t target = enqueued_;
    done_cv_.wait(lock, [&] { return finished_ >= target; });
  }

  // No more pushes; the writer drains what is queued and then take() is false.
  void close() {
    {
      std::lock_guard lock(mu_);
      closing_ = true;
    }
    work_cv_.notify_all();
  }

  bool closing() {
    std::lock_guard lock(mu_);
    return closing_;
  }

  // Events pushed and not yet finished.
  uint64_t queued_events() const { return queued_events_.load(std::memory_order_relaxed); }

 private:
  std::mutex mu_;
  std::condition_variable work_cv_;  // the writer waits here for groups or for close()
  std::condition_variable done_cv_;  // flush() waits here for finished_
  std::deque<Group> queue_;          // guarded by mu_
  uint64_t enqueued_ = 0;            // groups ever queued; guarded by mu_
  uint64_t finished_ = 0;            // groups whose `done` has run; guarded by mu_
  bool closing_ = false;             // guarded by mu_
  std::atomic<uint64_t> queued_events_{0};
};

}  // namespace usher
