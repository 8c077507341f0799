// The trigger API (docs/api.md) as a function from request to
// response: it never touches a socket, so every route is tested without a
// network and api_server.cpp is the only network code.
//
// Routes:
//   POST /v1/workflows/{name}/sagas[?wait=10s]   start (201 new, 200 same Idempotency-Key,
//                                                202 when a shutdown cut the wait short)
//   GET  /v1/sagas[?status=&workflow=&limit=&after=]
//   GET  /v1/sagas/{id}[?at=RFC3339]             ?at folds the log up to that moment
//   GET  /v1/sagas/{id}/events
//   POST /v1/sagas/{id}/cancel | /retry | /resolve | /terminate
//                                                202 with the saga (operator_action.h)
//   GET  /v1/workflows, /v1/workflows/{name}
//   GET  /v1/cluster                             the nodes sharing the log (Engine::cluster())
//   GET  /v1/events[?after=&limit=&wait=]        the event feed, a long poll (feed_query.h)
//   GET  /v1/events/stream[?after=]              the same as Server-Sent Events (Last-Event-ID)
//   GET  /healthz (never needs the token; with the publication's state when
//        the feed is published), GET /metrics
//   GET  /, /ui/, /ui/{file}                     the web console (console_assets.h; no token)
//
// Threading: handle() may be called from any thread and never blocks on the
// engine. Cheap routes (health, workflows, every refusal) answer
// inline, on the caller's thread. A start answers from the engine thread
// (Engine::start_async, then Engine::on_settled for ?wait). Routes that call
// blocking engine methods (get, list, events, the feed, the operator actions, the ?at read,
// cluster, and metrics, which reads this node's id from cluster()) run
// on the handler's own small worker pool, so an I/O thread never waits for a
// commit. The pool's queue holds at most one job per server connection, as a
// connection sends its next request only after its response. A reader of
// the feed waiting for events holds no thread: Engine::on_feed_moved wakes
// it to read again.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "http/api/api_metrics.h"
#include "http/api/api_problem.h"
#include "usher/engine.h"

namespace usher::api {

struct ApiHandlerOptions {
  // Bearer token every route but /healthz requires; empty: no authentication.
  std::string token;
  // A second token that opens only the GET routes (and so /metrics): for
  // scrapers and dashboards. An action presented with it is refused 403.
  std::string read_token;
  // The longest ?wait= honoured; longer values are capped to it.
  Millis max_wait{60'000};
  // Threads for the routes that call blocking engine methods.
  unsigned worker_threads = 2;
};

class ApiHandler {
 public:
  using Respond = std::function<void(ApiResponse)>;
  // A response whose body goes on for as long as the client listens (the
  // Server-Sent Events of GET /v1/events/stream): `head` is its status and
  // header; the server then calls `next` for each further piece of the body,
  // one at a time, and `next` answers through its argument, once, from any
  // thread: the text to send, or nullopt when the stream has ended (the
  // server then ends the response and closes the connection).
  using Deliver = std::function<void(std::optional<std::string>)>;
  struct Stream {
    ApiResponse head;
    std::function<void(Deliver)> next;
  };
  using OpenStream = std::function<void(Stream)>;

  // `engine` and `metrics` (may be null: /metrics then shows only the engine's
  // stats and the counts from the log, and requests are not counted) must
  // outlive the handler. Every answer is counted in `metrics` by route and
  // code, and a refused one logged (request_observer.h).
  ApiHandler(Engine& engine, ApiMetrics* metrics, ApiHandlerOptions options);
  ~ApiHandler();  // calls shutdown()
  ApiHandler(const ApiHandler&) = delete;
  ApiHandler& operator=(const ApiHandler&) = delete;

  // Answers one request by calling `respond` exactly once, on the calling
  // thread, the engine thread or a worker thread. A ?wait pending when the
  // engine shuts down is answered with the saga as it stands. A streaming
  // route calls `open_stream` instead when it is given (and answers 503
  // without it).
  void handle(ApiRequest request, Respond respond, OpenStream open_stream = {});

  // The server is shutting down (before Engine::drain()): a ?wait start cut
  // short from now on is answered 202 Accepted with the saga as it stands
  // and its Location, so the client has its id and can follow it, rather
  // than 201/200 that would read as "the wait ran its course".
  void drain();

  // Finishes the worker pool's queued jobs and joins it. Requests handled
  // afterwards that need the pool are answered 503. Idempotent.
  void shutdown();

  // The longest time handle() may take to respond (the ?wait cap plus slack
  // for a commit): the server's deadline for a response.
  Millis response_deadline() const { return options_.max_wait + Millis{30'000}; }

 private:
  struct Impl;
  ApiHandlerOptions options_;
  // Shared with the callbacks of readers waiting on the feed, which the
  // engine may run after the handler is gone: they hold it weakly.
  std::shared_ptr<Impl> impl_;
};

// Parses a ?wait= duration as workflow files write them ("250ms", "5s", "1m",
// "1.5s"); nullopt for anything else.
std::optional<Millis> parse_wait(std::string_view text);

// Compares a presented token with the configured one in time that depends only
// on their lengths, never on where they first differ.
bool token_matches(std::string_view presented, std::string_view expected);

}  // namespace usher::api
