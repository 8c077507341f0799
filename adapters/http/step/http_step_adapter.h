// The HTTP step adapter: sends each step attempt to its service as one HTTP/1.1
// request over a keep-alive connection pool (Boost.Beast) and classifies the
// reply as docs/semantics.md says (see step_reply.h for the table).
//
// An attempt starts when it has a connection, not at dispatch(): waiting for
// a pooled connection is not part of it. From then, one deadline (now +
// StepCall::timeout) bounds connecting, writing and reading, and
// StepCall::on_sending() is called at that moment (reports_sending() is
// true), so the engine's timer for the attempt starts there as well. What
// each failure means (never sent, unknown, or decided by the status) is
// described at the top of http_step_adapter.cpp.
//
// Threading: the adapter owns an io_context run by `io_threads` threads (1 by
// default). Each endpoint (host:port; for https:// with its tls settings) has
// a strand; its pool, its wait queue
// and every call to it run on that strand, so the pool has no lock
// (connection_pool.h). dispatch()
// may be called from any thread: it looks up the endpoint under a short mutex
// and posts a coroutine; it never blocks on I/O. `done` runs on an I/O thread,
// exactly once per dispatch (until shutdown, see there).
//
// http:// and https://. An https:// service is called over TLS 1.2 or later,
// its certificate chain, dates and host name (or IP address) verified against
// its `tls.ca_file` or the system's CAs, with SNI, and with the client
// certificate of `tls.cert_file`/`key_file` when it has one (tls_client.h).
// TLS connections are pooled and kept alive like plain ones; a handshake that
// fails verification is a definite failure that never left (kFailed,
// sent=false, http_step_adapter.cpp says why), never retried.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "usher/adapter.h"
#include "usher/status.h"

namespace usher {

struct HttpStepAdapterOptions {
  // Threads running the adapter's io_context. One handles thousands of calls/s;
  // more help only with many endpoints (an endpoint's calls share a strand).
  unsigned io_threads = 1;
  // Open connections (idle + busy + connecting) per host:port. Calls beyond it
  // wait, in arrival order, for a connection to come back.
  size_t max_connections_per_endpoint = 64;
  // Calls allowed to wait for a connection per host:port. One more is answered
  // at once with StepResult::not_sent "too many calls waiting" (it never
  // left), so a dead service cannot make the queue (and memory) grow without
  // end. A waiting call has no deadline: its attempt, and its timeout, start
  // when it gets a connection. It waits until a connection is released (each
  // busy one belongs to an attempt that has a deadline) or shutdown.
  size_t max_waiting_per_endpoint = 10'000;
  // Largest reply body accepted; the connection of a bigger one is closed.
  // After a 2xx status the attempt is still a success, with output {} and the
  // note "the reply is larger than 1 MiB"; after another status, that status
  // decides (kTransient or kFailed) and the error says the reply was too large.
  size_t max_response_bytes = 1 << 20;
  // Largest reply header block accepted. A bigger one ends the attempt
  // kTimeout: the request was sent and no status could be read.
  size_t max_response_header_bytes = 64 << 10;
  // An idle connection older than this is closed instead of reused, checked
  // when a call looks for one (no background sweep). Servers drop idle
  // connections themselves (Node: after 5 s); the liveness check and the one
  // retry described in http_step_adapter.cpp cover that race, this bounds the rest.
  Millis max_idle{30'000};
  std::string user_agent = "usher/0.1";
};

class HttpStepAdapter : public StepAdapter {
 public:
  explicit HttpStepAdapter(HttpStepAdapterOptions options = {});
  ~HttpStepAdapter() override;  // shuts down if not done yet
  HttpStepAdapter(const HttpStepAdapter&) = delete;
  HttpStepAdapter& operator=(const HttpStepAdapter&) = delete;

  // Posts the attempt and returns. Answers kFailed with sent=false for a
  // service URL that is not http[s]://host[:port][/path], tls files that
  // cannot be used, or an unknown HTTP method (configuration errors no retry
  // can fix; nothing was sent).
  void dispatch(StepCall call, StepCallback done) override;

  // True: a call may wait for a connection, and StepCall::on_sending marks
  // the start of its attempt.
  bool reports_sending() const override { return true; }

  // Closes every connection, wakes every waiting call and joins the I/O
  // threads. Calls in progress are NOT dropped: their `done` runs, on an I/O
  // thread, with kTransient "adapter shut down" — sent=false for a call that
  // had not written its request yet, sent=true for one that had (the request
  // may have reached the service; the engine re-sends with the same
  // Idempotency-Key after recovery). dispatch() after shutdown calls `done` at
  // once on the calling thread with "adapter shut down", sent=false. Must not
  // be called from inside `done`.
  void shutdown() override;

  // Checks a service's URL and, for https://, reads its tls files as a call
  // would (PEM, a key matching its certificate), when a definition is bound
  // to the adapter: a bad URL or file is refused at start rather than at the
  // first call.
  static Status check_service(const Service& service);

  struct Stats {
    uint64_t connections_opened = 0;  // TCP connections established
    uint64_t requests_sent = 0;       // requests written (a stale-connection retry counts twice)
    uint64_t stale_retries = 0;       // requests re-sent once because a reused connection was closed
    uint64_t tls_handshakes = 0;      // TLS handshakes completed (one per new https:// connection)
  };
  Stats stats() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace usher
