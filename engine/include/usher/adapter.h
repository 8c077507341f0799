// The step adapter interface: how the engine reaches a service. HTTP, Kafka and
// local (in-process) adapters implement it; an embedding application may bind
// its own.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "usher/definition.h"

namespace usher {

enum class CallKind { kAction, kCompensate };
const char* call_kind_name(CallKind k);  // "action" | "compensate"

// Everything an adapter needs to make one attempt. Owned values only, so an
// adapter may keep the call after dispatch() returns.
struct StepCall {
  std::string saga_id;
  std::string workflow;
  std::string step;
  CallKind kind = CallKind::kAction;
  uint32_t attempt = 1;              // 1-based
  Service service;                   // where to send it (copied from the definition)
  std::string operation;             // e.g. "hold"
  Json body;                         // the rendered `with`
  std::optional<std::string> http_method;  // from the step's `http:` override
  std::optional<std::string> http_path;    // rendered, starts with '/'
  std::string idempotency_key;       // "{sagaId}:{step}:{action|compensate}", same on every attempt
  std::string correlation_id;        // from the start request, may be empty
  std::string traceparent;           // from the start request, may be empty
  Millis timeout{5'000};             // this attempt's deadline, from when it is sent
  int64_t node = 0;                  // the cluster node sending it (X-Usher-Node); 0: not in a cluster
  // Called once, from any thread, when an adapter that reports_sending() is
  // about to send the request, after any wait for a connection or a slot in
  // its queue: the attempt's timeout runs from here, for the adapter and the
  // engine alike. Waiting is not an attempt (docs/semantics.md). May be empty.
  std::function<void()> on_sending;
  // Asked, from any thread, by an adapter that holds a call after
  // dispatch() returned (a connection pool, a queue) right before the request
  // leaves: false when the engine may no longer send it (a cluster node no
  // longer sure of its lease, docs/cluster.md). The adapter then answers
  // StepResult::not_sent without sending. May be empty: always true.
  std::function<bool()> may_send;
};

// How one attempt ended, classified as docs/semantics.md's table says.
enum class Outcome {
  kOk,         // success; `output` holds the reply
  kFailed,     // definite business failure: do not retry, compensate
  kTransient,  // a definite answer that it did not happen now: retry per policy
  kTimeout,    // no answer in time, or the connection broke after the request
               // was sent: the outcome is unknown (it may have happened)
};
const char* outcome_name(Outcome o);

struct StepResult {
  Outcome outcome = Outcome::kOk;
  Json output = Json::object();     // kOk: the service's reply
  std::string error;                // otherwise: what went wrong, for people
  std::optional<Millis> retry_after;  // a service's Retry-After, honoured by the retry timer
  // False when the attempt provably never reached the service: connection
  // refused, name not resolved, TLS handshake failed, the adapter's queue was
  // full, the request could not be built. Such an attempt did not happen
  // (docs/semantics.md, "What never left did not happen"). Only with
  // kTransient or kFailed.
  bool sent = true;
  // kOk only: why `output` is {} although the service answered, e.g. "the
  // reply is not JSON" or "the reply was cut off"; logged with the event.
  std::string note;

  static StepResult ok(Json out) { return make(Outcome::kOk, std::move(out), {}); }
  // A success whose output is unknown: {} and the reason.
  static StepResult ok_without_output(std::string why) {
    StepResult r = make(Outcome::kOk, Json::object(), {});
    r.note = std::move(why);
    return r;
  }
  static StepResult failed(std::string e) { return make(Outcome::kFailed, Json::object(), std::move(e)); }
  static StepResult transient(std::string e, std::optional<Millis> after = {}) {
    StepResult r = make(Outcome::kTransient, Json::object(), std::move(e));
    r.retry_after = after;
    return r;
  }
  static StepResult timeout(std::string e) { return make(Outcome::kTimeout, Json::object(), std::move(e)); }
  // The attempt never reached the service: retried per policy like a
  // transient failure, but it did not happen.
  static StepResult not_sent(std::string e) {
    StepResult r = make(Outcome::kTransient, Json::object(), std::move(e));
    r.sent = false;
    return r;
  }

 private:
  static StepResult make(Outcome o, Json out, std::string e) {
    StepResult r;
    r.outcome = o;
    r.output = std::move(out);
    r.error = std::move(e);
    return r;
  }
};

using StepCallback = std::function<void(StepResult)>;

// Thread-safety: dispatch() is called from the engine thread and must not block;
// `done` must be called exactly once, from any thread. The engine also enforces
// the attempt's timeout itself and ignores a result that arrives after it.
class StepAdapter {
 public:
  virtual ~StepAdapter() = default;
  virtual void dispatch(StepCall call, StepCallback done) = 0;
  // True when the adapter may hold a call before sending it (a connection
  // pool, a queue) and calls StepCall::on_sending when it leaves. The engine
  // then starts the attempt's timeout there instead of at dispatch(); such an
  // adapter must still answer every call, waiting or not.
  virtual bool reports_sending() const { return false; }
  // Stops background work; pending callbacks may be dropped. Called before destruction.
  virtual void shutdown() {}
};

using StepAdapterPtr = std::shared_ptr<StepAdapter>;

}  // namespace usher
