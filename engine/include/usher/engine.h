// The embedding API: open an engine on a SQLite file, load definitions, bind
// services to adapters, start sagas and watch them finish.
//
//   auto engine = usher::Engine::open({.db_path = "tickets.db"}).value();
//   engine->load(usher::load_definition_file("workflows/concert-booking.yaml").definition);
//   engine->register_handler("seats.hold", [](const usher::StepCall& c) { ... });
//   engine->resume();                      // recovers unfinished sagas, starts executing
//   auto started = engine->start({.workflow = "concert-booking", .input = {...}});
//   usher::Json saga = engine->wait(started->id).get();
//
// Threading: every method may be called from any thread. The state machine runs
// on one engine thread; one writer thread owns the SQLite write connection and
// commits appends in groups. Adapter callbacks may come from any thread; they are
// posted to the engine thread. Local handlers run on the engine thread and must
// not block.
//
// Crash semantics: start() returns only after the SagaStarted event is durable
// (with Durability::kFull, even across power loss). A step is sent only after the
// event that decided it is durable, and its result is logged before anything that
// depends on it is sent. After a crash, open()+resume() folds every unfinished saga
// from its events and sends its pending calls again with the same idempotency keys,
// so services see each call at least once and can drop duplicates by key.
#pragma once

#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "usher/adapter.h"
#include "usher/definition.h"
#include "usher/event_data.h"
#include "usher/feed_sink.h"
#include "usher/options.h"
#include "usher/saga.h"
#include "usher/status.h"

namespace usher {

struct StartRequest {
  std::string workflow;
  Json input = Json::object();
  std::string idempotency_key;  // optional; a second start with the same key returns the first saga
  std::string correlation_id;   // optional; carried to every step as X-Correlation-Id
  std::string traceparent;      // optional; carried to every step
};

struct StartResponse {
  std::string id;
  bool created = false;  // false when the idempotency key was already used
  Json saga;             // the saga as the API shows it (docs/api.md)
};

// Engine::resolve(): what happened to the call a stuck saga is stuck on.
//   - An action that succeeded: `output` is its output, which later steps
//     read as `${steps.NAME.output…}`; the saga goes forward (or compensates,
//     if a cancel or the deadline was waiting).
//   - An action that failed: the saga compensates the steps before it; the
//     step itself is not undone. Refused for a step the saga cannot go back
//     from (retriable, or any once the pivot succeeded).
//   - A compensation that succeeded (undone by hand): compensation goes on.
//     "failed" is refused for a compensation: the saga would be stuck again.
struct ResolveRequest {
  std::string step;  // the stuck step's name, as a check that the operator means it
  bool succeeded = true;
  Json output = Json::object();
  OperatorNote by;
};

// One saga transition, reported to EngineOptions::on_transition.
struct TransitionInfo {
  std::string saga_id;
  std::string workflow;
  EventType event = EventType::kSagaStarted;
  std::string step;
  CallKind kind = CallKind::kAction;  // for step events: the action or its compensation
  std::string service;    // for step events: the called service (the kind's CallSpec)
  std::string operation;  // for step events: its operation
  std::string correlation_id;  // the saga's X-Correlation-Id, may be empty
  SagaStatus status = SagaStatus::kRunning;
  std::string detail;   // outcome or error, may be empty
  int64_t latency_us = 0;  // for step results: time since the attempt was sent
};

// An in-process step handler (the `local` adapter). Returns the step's result;
// a thrown exception counts as a transient failure.
using LocalHandler = std::function<StepResult(const StepCall&)>;

struct EngineStats {
  uint64_t commits = 0;          // durable transactions
  uint64_t events_committed = 0; // events in them
  uint64_t commit_micros_total = 0;  // time spent committing (the sync), summed
  uint64_t sagas_in_flight = 0;  // non-terminal sagas held in memory
  int64_t node = 0;              // this engine's node id on a shared PostgreSQL log; 0: not a node
};

class Engine {
 public:
  virtual ~Engine() = default;

  // Opens (or creates) the log. Does not start any saga until resume().
  static Result<std::unique_ptr<Engine>> open(EngineOptions options);

  // Makes a definition startable by name and stores its source in the log by
  // hash. A later load of the same name replaces it for new sagas only.
  virtual Status load(DefinitionPtr definition) = 0;
  virtual std::vector<DefinitionPtr> definitions() const = 0;
  virtual DefinitionPtr definition(const std::string& workflow) const = 0;

  // Routes a service (by name, as in the workflow's `services:`) to an adapter.
  // Services not bound by name use the adapter bound to their transport.
  virtual void bind_service(const std::string& service, StepAdapterPtr adapter) = 0;
  virtual void bind_transport(Transport transport, StepAdapterPtr adapter) = 0;
  // Registers an in-process handler for "service.operation" and routes that
  // service to the local adapter.
  virtual void register_handler(const std::string& call, LocalHandler handler) = 0;

  // Recovers every unfinished saga from the log and starts executing. Call once,
  // after binding adapters; start() before resume() fails with kFailedPrecondition.
  virtual Status resume() = 0;

  // Starts a saga; returns once SagaStarted is durable. Errors: kNotFound (no such
  // workflow), kInvalidArgument (input violates the schema; the message lists
  // every violation as "pointer: problem"), kUnavailable (the log cannot be written).
  virtual Result<StartResponse> start(StartRequest request) = 0;
  // Same, but calls `done` on the engine thread instead of blocking.
  virtual void start_async(StartRequest request, std::function<void(Result<StartResponse>)> done) = 0;

  // The saga as JSON (docs/api.md), or kNotFound.
  virtual Result<Json> get(const std::string& saga_id) = 0;
  // The saga as it stood at `at_us` (µs since epoch): folded from the events
  // that occurred at or before that moment (the API's ?at=, `usher show --at`).
  // kNotFound when the saga does not exist or had not started by then.
  virtual Result<Json> get_at(const std::string& saga_id, int64_t at_us) = 0;
  // Resolves with the saga once it is terminal or stuck. A saga that does not
  // exist resolves with null.
  virtual std::future<Json> wait(const std::string& saga_id) = 0;
  // Calls `done` when the saga is terminal or stuck, or with the current state
  // after `timeout` (whichever is first). Called on the engine thread.
  virtual void on_settled(const std::string& saga_id, Millis timeout, std::function<void(Json)> done) = 0;

  // Operator actions; each returns the saga once its event is durable, and
  // records `by` (who acted, and why) in that event. kNotFound for no such
  // saga; kFailedPrecondition when the saga is not in the state the action
  // needs (the message says why).
  // cancel: a running saga before its pivot compensates.
  virtual Result<Json> cancel(const std::string& saga_id, OperatorNote by = {}) = 0;
  // retry: a stuck saga resumes the call it gave up on, with a fresh retry
  // budget and the same idempotency keys.
  virtual Result<Json> retry(const std::string& saga_id, OperatorNote by = {}) = 0;
  // resolve: the operator states the outcome of a stuck saga's stuck call
  // (e.g. refunded by hand); the saga goes on as if the service had answered
  // so. Refused where that outcome cannot move the saga (see ResolveRequest).
  virtual Result<Json> resolve(const std::string& saga_id, ResolveRequest request) = 0;
  // terminate: a stuck saga ends as `terminated`; nothing more is sent.
  virtual Result<Json> terminate(const std::string& saga_id, std::string reason, std::string actor = {}) = 0;

  // Newest first. Reads a separate connection, so it never waits for the writer.
  virtual Result<Json> list(const SagaFilter& filter) = 0;  // {"sagas": [...], "next": cursor|null}
  virtual Result<Json> events(const std::string& saga_id) = 0;  // {"events": [...]}
  // The event feed (GET /v1/events; LogInspector::feed says what it holds):
  // every saga's events in commit order, after the cursor `after`.
  virtual Result<Json> feed(const std::string& after, size_t limit) = 0;
  // For a reader waiting for the feed to move: take feed_mark() before a
  // read; when the read found nothing new, on_feed_moved(mark, …) calls
  // `ready` once, on the engine thread (it must not block), as soon as
  // events may have been committed since the mark (by this engine, or in a
  // cluster by any node: read again every 100 ms), after `timeout`, or once
  // the engine drains or stops. Then read again.
  virtual uint64_t feed_mark() const = 0;
  virtual void on_feed_moved(uint64_t mark, Millis timeout, std::function<void()> ready) = 0;
  // Publishes the feed to `sink` (usher/feed_sink.h) from the position
  // stored for its name, on a thread of its own, until shutdown(). In a
  // cluster one node publishes and the others stand by. One sink per
  // engine; call after resume(). kFailedPrecondition when already publishing.
  virtual Status publish_feed(std::shared_ptr<FeedSink> sink) = 0;
  // How the publication stands; nullopt when the engine does not publish.
  virtual std::optional<PublicationStats> publication() const = 0;
  // Sagas counted by status from the log's indexes (GET /v1/stats), every
  // node's included when several share a PostgreSQL log:
  //   {"sagas": {"running": n, "compensating": n, "completed": n, "compensated": n,
  //              "stuck": n, "terminated": n},
  //    "total": n, "oldest_unfinished_created_at": RFC 3339 | null}
  // (the oldest running or compensating saga's start).
  virtual Result<Json> saga_counts() = 0;
  // The definitions unfinished (running, compensating or stuck) sagas are
  // pinned to, with how many run each, from the log's index of unfinished
  // sagas (GET /v1/workflows), every node's included:
  //   {"definitions": [{"workflow", "version", "hash", "unfinished"}…]}
  // by workflow, then newest version first. A definition no unfinished saga
  // runs is not listed, loaded or not.
  virtual Result<Json> unfinished_by_definition() = 0;

  virtual EngineStats stats() const = 0;

  // The nodes sharing this engine's log (several `usher serve` on one
  // PostgreSQL, README "Several nodes"):
  //   {"node": this node's id | null,
  //    "nodes": [{"id", "name", "address", "started_at", "lease_until",
  //               "status": "live"|"lapsed"|"stopped", "sagas_owned"}…]}
  // by id. A SQLite log has no nodes: {"node": null, "nodes": []}.
  virtual Result<Json> cluster() = 0;
  // The API address this node is reached at (`http://127.0.0.1:8080`), shown
  // in cluster(); set once the server listens.
  virtual void advertise(const std::string& address) = 0;

  // The first half of a graceful stop (usher serve on SIGTERM): from now on no
  // saga starts, no operator action is taken (both kUnavailable: nothing is
  // written) and no attempt is sent; an attempt decided from now on stays
  // scheduled in the log and is sent when the log is next opened. Waiters
  // get the saga as it stands, at once. Then waits up to `grace` for the
  // calls already out to answer, so that their results are logged and no
  // service did work that the log does not know of. True when every call
  // answered in time. shutdown() must still be called.
  virtual bool drain(Millis grace) = 0;

  // Stops taking new work, stops adapters, flushes pending commits. Calls in
  // flight are left as they are in the log: they are sent again (same
  // idempotency key) when the log is next opened. Waiters of on_settled()/wait()
  // get the saga as it stands. Idempotent.
  virtual void shutdown() = 0;
};

}  // namespace usher
