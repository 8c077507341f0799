// Engine, the embedding API (usher/engine.h): a facade over the executor's
// parts, each in its own file —
//   definition_registry  the workflows by name; the one check of a start's input
//   saga_runner          sagas in memory: decide, append, then act (+ saga_starts,
//                        recovery, waiters, operator_actions)
//   dispatcher           calls to services, routed to adapters, paced per service
//   background_reads     reads of the log off the engine thread
//   feed_publisher       the event feed published to a sink (Kafka), on its own thread
//
// Threads:
//   - the engine thread runs io_: every saga's state, its timers, decide(),
//     the in-memory indexes, and the commands once their events are durable;
//   - the store's writer thread commits appends in groups and posts each
//     group's completion back to io_;
//   - adapters run their own I/O threads and post results back to io_;
//   - one read thread serves reads the engine thread must not wait for;
//   - a publisher thread, when the feed is published.
// So saga state is only ever touched by the engine thread and needs no lock.
// Calls from other threads (start, cancel, ...) are posted to io_.

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <future>
#include <thread>

#include <unistd.h>

#include "exec/background_reads.h"
#include "exec/cluster_member.h"
#include "exec/definition_registry.h"
#include "exec/engine_factory.h"
#include "exec/feed_publisher.h"
#include "exec/saga_runner.h"
#include "store/open_store.h"
#include "usher/engine.h"
#include "view/cluster_view.h"

namespace usher {

namespace asio = boost::asio;

namespace {

class EngineImpl final : public Engine {
 public:
  EngineImpl(EngineOptions options, std::unique_ptr<SagaStore> store, std::unique_ptr<SagaStoreReader> engine_reader,
             std::unique_ptr<SagaStoreReader> query_reader)
      : options_(std::move(options)),
        clock_(options_.clock ? *options_.clock : system_clock()),
        store_(std::move(store)),
        engine_reader_(std::move(engine_reader)),
        reads_(io_, std::make_unique<LogInspectorImpl>(std::move(query_reader))),
        registry_(*store_),
        runner_(options_, clock_, io_, *store_, engine_reader_, reads_) {
    thread_ = std::thread([this] { io_.run(); });
  }

  ~EngineImpl() override { shutdown(); }

  // ---- definitions and adapters ----

  Status load(DefinitionPtr def) override {
    if (Status loaded = registry_.load(def); !loaded.is_ok()) return loaded;
    on_engine([this, def] { engine_reader_.remember(def); });
    reads_.now([&](LogInspectorImpl& r) { r.remember(def); });
    return Status::ok();
  }

  std::vector<DefinitionPtr> definitions() const override { return registry_.all(); }
  DefinitionPtr definition(const std::string& workflow) const override { return registry_.find(workflow); }

  void bind_service(const std::string& service, StepAdapterPtr adapter) override {
    runner_.dispatcher().bind_service(service, std::move(adapter));
  }
  void bind_transport(Transport transport, StepAdapterPtr adapter) override {
    runner_.dispatcher().bind_transport(transport, std::move(adapter));
  }
  void register_handler(const std::string& call, LocalHandler handler) override {
    runner_.dispatcher().register_handler(call, std::move(handler));
  }

  // ---- sagas ----

  Status resume() override {
    if (Status joined = join_cluster(); !joined.is_ok()) return joined;
    return on_engine([this] { return runner_.recover(); });
  }

  Result<StartResponse> start(StartRequest request) override {
    // Shared: a reply dropped at shutdown breaks the promise instead of hanging.
    auto promise = std::make_shared<std::promise<Result<StartResponse>>>();
    auto future = promise->get_future();
    start_async(std::move(request), [promise](Result<StartResponse> r) { promise->set_value(std::move(r)); });
    return future.get();
  }

  void start_async(StartRequest request, std::function<void(Result<StartResponse>)> done) override {
    // Checked on the caller's thread: it needs no saga state, and keeps the
    // engine thread free for sagas.
    Result<DefinitionPtr> def = registry_.admit(request.workflow, request.input);
    if (!def.is_ok()) {
      asio::post(io_, [done = std::move(done), refusal = def.status()] { done(refusal); });
      return;
    }
    asio::post(io_,
               [this, def = std::move(def.value()), request = std::move(request), done = std::move(done)]() mutable {
                 runner_.start(std::move(def), std::move(request), std::move(done));
               });
  }

  Result<Json> get(const std::string& saga_id) override {
    // In memory: from the engine thread. Otherwise read here, on the caller's
    // thread, so the engine thread never waits for the disk.
    if (auto held = on_engine([this, saga_id] { return runner_.held_view(saga_id); })) return std::move(*held);
    return reads_.now([&](LogInspectorImpl& r) { return r.saga(saga_id, std::nullopt); });
  }

  Result<Json> get_at(const std::string& saga_id, int64_t at_us) override {
    return reads_.now([&](LogInspectorImpl& r) { return r.saga(saga_id, at_us); });
  }

  std::future<Json> wait(const std::string& saga_id) override {
    auto promise = std::make_shared<std::promise<Json>>();
    auto future = promise->get_future();
    on_settled(saga_id, Millis::max(), [promise](Json j) { promise->set_value(std::move(j)); });
    return future;
  }

  void on_settled(const std::string& saga_id, Millis timeout, std::function<void(Json)> done) override {
    asio::post(io_, [this, saga_id, timeout, done = std::move(done)]() mutable {
      runner_.on_settled(saga_id, timeout, std::move(done));
    });
  }

  Result<Json> cancel(const std::string& saga_id, OperatorNote by) override {
    return operate(saga_id, CancelInput{std::move(by)});
  }
  Result<Json> retry(const std::string& saga_id, OperatorNote by) override {
    return operate(saga_id, OperatorRetryInput{std::move(by)});
  }
  Result<Json> resolve(const std::string& saga_id, ResolveRequest r) override {
    return operate(saga_id,
                   OperatorResolveInput{std::move(r.step), r.succeeded, std::move(r.output), std::move(r.by)});
  }
  Result<Json> terminate(const std::string& saga_id, std::string reason, std::string actor) override {
    return operate(saga_id, TerminateInput{std::move(reason), std::move(actor)});
  }

  Result<Json> list(const SagaFilter& filter) override {
    return reads_.now([&](LogInspectorImpl& r) { return r.list(filter); });
  }

  Result<Json> events(const std::string& saga_id) override {
    return reads_.now([&](LogInspectorImpl& r) { return r.events(saga_id); });
  }

  Result<Json> feed(const std::string& after, size_t limit) override {
    return reads_.now([&](LogInspectorImpl& r) { return r.feed(after, limit); });
  }
  uint64_t feed_mark() const override { return runner_.feed().mark(); }
  void on_feed_moved(uint64_t mark, Millis timeout, std::function<void()> ready) override {
    runner_.feed().watch(mark, timeout, std::move(ready));
  }

  Status publish_feed(std::shared_ptr<FeedSink> sink) override {
    if (publisher_) return Status::failed_precondition("the feed is already published to " + publisher_->stats().name);
    if (options_.db_path.empty()) return Status::failed_precondition("publishing the feed needs the log's location");
    auto reader = store_->open_reader();
    if (!reader.is_ok()) return reader.status();
    publisher_ = std::make_unique<FeedPublisher>(options_.db_path, std::move(reader.value()), std::move(sink),
                                                 runner_.feed());
    publisher_->start();
    return Status::ok();
  }
  std::optional<PublicationStats> publication() const override {
    if (!publisher_) return std::nullopt;
    return publisher_->stats();
  }

  Result<Json> saga_counts() override {
    return reads_.now([](LogInspectorImpl& r) { return r.stats(); });
  }

  Result<Json> unfinished_by_definition() override {
    auto pinned = reads_.now([](LogInspectorImpl& r) { return r.reader().unfinished_by_definition(); });
    if (!pinned.is_ok()) return pinned.status();
    Json definitions = Json::array();
    for (const PinnedVersion& p : pinned.value()) {
      definitions.push_back(
          {{"workflow", p.workflow}, {"version", p.version}, {"hash", p.definition_hash}, {"unfinished", p.unfinished}});
    }
    return Json{{"definitions", std::move(definitions)}};
  }

  Result<Json> cluster() override {
    auto nodes = reads_.now([](LogInspectorImpl& r) { return r.reader().nodes(); });
    if (!nodes.is_ok()) return nodes.status();
    return cluster_to_json(member_ ? member_->node() : 0, nodes.value());
  }

  void advertise(const std::string& address) override {
    if (member_) member_->advertise(address);
  }

  EngineStats stats() const override {
    SagaStoreStats ls = store_->stats();
    EngineStats s;
    s.commits = ls.commits;
    s.events_committed = ls.events;
    s.commit_micros_total = ls.commit_micros_total;
    s.sagas_in_flight = runner_.sagas_in_memory();
    s.node = runner_.node();
    return s;
  }

  bool drain(Millis grace) override {
    if (shut_down_) return true;
    runner_.begin_drain();
    runner_.dispatcher().hold();
    on_engine([this] { runner_.answer_waiters(); });
    const bool idle = runner_.dispatcher().wait_until_idle(grace);
    store_->flush();  // the answers that came in are logged now
    return idle;
  }

  void shutdown() override {
    if (shut_down_.exchange(true)) return;
    runner_.begin_stop();
    if (publisher_) publisher_->stop();  // a batch in flight is published again by whoever publishes next
    reads_.stop();  // reads in progress finish; their answers see the runner stopping
    // Adapters next: after this no result can arrive.
    runner_.dispatcher().stop();
    store_->flush();
    // Every append is settled: the sagas can go to the other nodes now.
    if (member_) member_->stop(/*hand_over=*/true);
    // Let the engine thread run what the flush posted, then stop it.
    on_engine([this] { runner_.stop_sagas(); });
    work_.reset();
    io_.stop();
    if (thread_.joinable()) thread_.join();
    member_.reset();
    runner_.clear();
    store_->close();
  }

 private:
  // On a log shared by several engines (PostgreSQL), this engine is a node:
  // it joins before recovering, and recovery is taking sagas over.
  Status join_cluster() {
    auto registry = store_->open_registry();
    if (!registry.is_ok()) return registry.status();
    if (!registry.value()) return Status::ok();
    auto claims = store_->open_registry();
    if (!claims.is_ok()) return claims.status();
    auto reader = store_->open_reader();
    if (!reader.is_ok()) return reader.status();
    ClusterMember::Timing timing;
    timing.lease = options_.node_lease;
    timing.renew_every = timing.sweep_every = std::max(std::chrono::milliseconds(1), options_.node_lease / 6);
    ClusterMember::Hooks hooks{
        .joined = [this](int64_t node) { runner_.on_joined(node); },
        .lapsed = [this](int64_t node) { runner_.on_lapsed(node); },
        .taken = [this](std::vector<TakenSaga> taken) { runner_.take_over(std::move(taken)); }};
    member_ = std::make_unique<ClusterMember>(std::move(registry.value()), std::move(reader.value()), timing, io_,
                                              std::move(hooks));
    on_engine([this, claims = std::move(claims.value())]() mutable {
      runner_.join_cluster(*member_, std::move(claims));
    });
    return member_->start(node_name());
  }

  static std::string node_name() {
    char host[256] = {};
    if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
    return std::string(host[0] ? host : "localhost") + ":" + std::to_string(getpid());
  }

  Result<Json> operate(const std::string& saga_id, OperatorAction action) {
    auto promise = std::make_shared<std::promise<Result<Json>>>();
    auto future = promise->get_future();
    asio::post(io_, [this, saga_id, action, promise] {
      runner_.operate(saga_id, action, [promise](Result<Json> r) { promise->set_value(std::move(r)); });
    });
    return future.get();
  }

  // Runs `f` on the engine thread and returns its result.
  template <typename F>
  auto on_engine(F f) -> decltype(f()) {
    using R = decltype(f());
    if (std::this_thread::get_id() == thread_.get_id()) return f();
    std::promise<R> promise;
    auto future = promise.get_future();
    asio::post(io_, [&] {
      if constexpr (std::is_void_v<R>) {
        f();
        promise.set_value();
      } else {
        promise.set_value(f());
      }
    });
    return future.get();
  }

  EngineOptions options_;
  Clock& clock_;
  std::unique_ptr<SagaStore> store_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_{asio::make_work_guard(io_)};
  LogInspectorImpl engine_reader_;  // engine thread only
  BackgroundReads reads_;
  DefinitionRegistry registry_;
  SagaRunner runner_;
  std::unique_ptr<ClusterMember> member_;  // null: the engine has its log alone
  std::unique_ptr<FeedPublisher> publisher_;  // null: the feed is not published
  std::atomic<bool> shut_down_{false};
  std::thread thread_;
};

}  // namespace

Result<std::unique_ptr<Engine>> open_engine_with_store(EngineOptions options, std::unique_ptr<SagaStore> store) {
  auto engine_reader = store->open_reader();
  if (!engine_reader.is_ok()) return engine_reader.status();
  auto query_reader = store->open_reader();
  if (!query_reader.is_ok()) return query_reader.status();
  return std::unique_ptr<Engine>(new EngineImpl(std::move(options), std::move(store), std::move(engine_reader.value()),
                                                std::move(query_reader.value())));
}

Result<std::unique_ptr<Engine>> Engine::open(EngineOptions options) {
  if (options.db_path.empty() || options.db_path == ":memory:")
    return Status::invalid_argument("the saga log needs a file: \"" + options.db_path + "\" is not durable");
  auto store = open_store(options.db_path, {.durability = options.durability,
                                            .max_batch_events = options.max_batch_events,
                                            .migrate = options.migrate_schema,
                                            .sqlite_vfs = options.sqlite_vfs});
  if (!store.is_ok()) return store.status();
  return open_engine_with_store(std::move(options), std::move(store.value()));
}

}  // namespace usher
