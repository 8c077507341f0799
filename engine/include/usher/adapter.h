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
  Millis timeout{5'000};             // this attempt's deadline, from now
};

// How one attempt ended, classified as DESIGN.md section 3's table says.
enum class Outcome {
  kOk,         // success; `output` holds the reply
  kFailed,     // definite business failure: do not retry, compensate
  kTransient,  // a definite answer that it did not happen now: retry per policy
  kTimeout,    // no answer in time: the outcome is unknown (it may have happened)
};
const char* outcome_name(Outcome o);

struct StepResult {
  Outcome outcome = Outcome::kOk;
  Json output = Json::object();     // kOk: the service's reply
  std::string error;                // otherwise: what went wrong, for people
  std::optional<Millis> retry_after;  // a service's Retry-After, honoured by the retry timer

  static StepResult ok(Json out) { return {Outcome::kOk, std::move(out), {}, {}}; }
  static StepResult failed(std::string e) { return {Outcome::kFailed, Json::object(), std::move(e), {}}; }
  static StepResult transient(std::string e, std::optional<Millis> after = {}) {
    return {Outcome::kTransient, Json::object(), std::move(e), after};
  }
  static StepResult timeout(std::string e) { return {Outcome::kTimeout, Json::object(), std::move(e), {}}; }
};

using StepCallback = std::function<void(StepResult)>;

// Thread-safety: dispatch() is called from the engine thread and must not block;
// `done` must be called exactly once, from any thread. The engine also enforces
// the attempt's timeout itself and ignores a result that arrives after it.
class StepAdapter {
 public:
  virtual ~StepAdapter() = default;
  virtual void dispatch(StepCall call, StepCallback done) = 0;
  // Stops background work; pending callbacks may be dropped. Called before destruction.
  virtual void shutdown() {}
};

using StepAdapterPtr = std::shared_ptr<StepAdapter>;

}  // namespace usher
