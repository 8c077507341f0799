// Reads of the log for the engine, off the engine thread: a read can wait for
// the disk, and the engine thread must not. One read thread and one read
// connection, shared with the engine's get/list/events (under a lock).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <memory>
#include <mutex>
#include <utility>

#include "view/log_inspector.h"

namespace usher {

class BackgroundReads {
 public:
  BackgroundReads(boost::asio::io_context& engine, std::unique_ptr<LogInspectorImpl> reader)
      : engine_(engine), reader_(std::move(reader)) {}

  // Runs `read(reader)` on the read thread, then `then(result)` on the engine thread.
  template <typename Read, typename Then>
  void read_then(Read read, Then then) {
    boost::asio::post(pool_, [this, read = std::move(read), then = std::move(then)]() mutable {
      auto result = now(std::move(read));
      boost::asio::post(engine_, [result = std::move(result), then = std::move(then)]() mutable {
        then(std::move(result));
      });
    });
  }

  // Runs `read(reader)` on the calling thread.
  template <typename Read>
  auto now(Read read) {
    std::lock_guard lock(mu_);
    return read(*reader_);
  }

  // Lets reads still running finish; none start after.
  void stop() { pool_.join(); }

 private:
  boost::asio::io_context& engine_;
  std::mutex mu_;
  std::unique_ptr<LogInspectorImpl> reader_;  // under mu_
  boost::asio::thread_pool pool_{1};
};

}  // namespace usher
