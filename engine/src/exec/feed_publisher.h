// The publisher of the event feed (usher/feed_sink.h): a thread of its own,
// on its own connections to the log, that claims the publication (one
// publisher per publication, whichever node of a cluster claims it first:
// publication_store.h), reads the log after the stored position in batches,
// hands each to the sink and stores the new position once the sink says the
// batch was acknowledged.
//
// A sink that fails (a broker outage) stalls the publication, never the
// sagas: the batch is tried again with a growing pause (1 s up to 30 s), one
// log line when it stalls and one when it goes on. When it is current it
// waits for the engine's next commit (FeedWatch) rather than polling.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "exec/feed_watch.h"
#include "store/publication_store.h"
#include "store/saga_store.h"
#include "usher/feed_sink.h"

namespace usher {

class FeedPublisher {
 public:
  // `location`: the log (for the publication store's connection); `reader`
  // a read connection of the publisher's own.
  FeedPublisher(std::string location, std::unique_ptr<SagaStoreReader> reader, std::shared_ptr<FeedSink> sink,
                FeedWatch& feed);
  ~FeedPublisher();  // stop()

  void start();
  // Stops the thread; a batch in flight is cancelled (and published again
  // by whoever publishes next). Idempotent.
  void stop();

  PublicationStats stats() const;  // any thread

 private:
  void run();
  // One claimed stretch: publishes until stopping or a store failure.
  void publish_claimed(PublicationStore& store);
  // Waits until `deadline`, the feed moving past `mark` (with `mark`), or stop().
  void wait(std::chrono::milliseconds at_most, const uint64_t* mark = nullptr);
  void fail(const std::string& state, const std::string& error);

  const std::string location_;
  std::unique_ptr<SagaStoreReader> reader_;
  std::shared_ptr<FeedSink> sink_;
  FeedWatch& feed_;

  // Shared with the FeedWatch callbacks, which the engine thread may run
  // after the publisher is gone.
  struct Wakeup {
    std::mutex mu;
    std::condition_variable cv;
    bool stopping = false;
    bool moved = false;  // the feed moved since the last wait began
  };
  bool stopping() const;

  std::shared_ptr<Wakeup> wakeup_ = std::make_shared<Wakeup>();
  mutable std::mutex stats_mu_;
  PublicationStats stats_;  // under stats_mu_
  std::thread thread_;
};

}  // namespace usher
