// A step callback that keeps every result an adapter gives, and a bounded
// wait for them: for the HTTP and Kafka adapter tests.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <vector>

#include <doctest/doctest.h>

#include "usher/adapter.h"

namespace usher::test {

// A step callback and a bounded wait for its results (every one is kept, so
// a test can check that there was exactly one, or none yet).
class Results {
 public:
  StepCallback callback() {
    return [this](StepResult r) {
      std::lock_guard lock(mu_);
      results_.push_back(std::move(r));
      cv_.notify_all();
    };
  }
  // The first result, waiting up to `wait` for it.
  StepResult first(std::chrono::milliseconds wait = std::chrono::seconds(15)) {
    std::unique_lock lock(mu_);
    const bool got = cv_.wait_for(lock, wait, [&] { return !results_.empty(); });
    REQUIRE_MESSAGE(got, "no result within the wait");
    return results_.front();
  }
  size_t count() const {
    std::lock_guard lock(mu_);
    return results_.size();
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<StepResult> results_;
};

}  // namespace usher::test
