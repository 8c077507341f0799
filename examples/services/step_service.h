// One example step service (seats, payments, tickets or notifier) as a pure
// request → reply function, in the manner of the Beast examples: it never
// touches a socket, so http_server.cpp is the only network code and the
// behaviour can be reasoned about (and tested) without one.
//
// What every service does, besides its own operations:
//   - Idempotency: a request whose Idempotency-Key was seen with a final
//     answer (2xx or 4xx other than 408/425/429) gets that answer again, status
//     and body, and nothing is done twice. Retryable answers (5xx, 408, 425,
//     429, hang) are not remembered: usher re-sends with the same key, and the
//     retry must get a real chance to succeed.
//   - Faults (`POST /_control` or --fail): make an operation decline (422),
//     answer 503 (transient) or never answer (hang), for the next `count`
//     calls or until set back to "ok".
//   - A request log (`GET /_requests`, `POST /_requests/reset`) in arrival order,
//     so tests can check which calls came and in which order.
//
// Threading: none. The server calls handle() from its single I/O thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

namespace usher::examples {

using Json = nlohmann::json;

struct ServiceRequest {
  std::string method;  // "POST", "GET", …
  std::string target;  // "/hold", "/_requests"
  std::string body;
  std::string idempotency_key;  // "" when absent
  std::string saga_id;
  std::string step;
  std::string attempt;
};

struct ServiceReply {
  unsigned status = 200;
  Json body = Json::object();
  bool hang = false;  // do not answer at all; the connection waits for the client to give up
  std::chrono::milliseconds delay{0};  // answer this much later: the service's working time
};

enum class FaultMode { kOk, kDecline, kTransient, kHang };
std::optional<FaultMode> parse_fault_mode(const std::string& name);

// What an operation gives back: status and body. `body` becomes the JSON reply.
using OperationFn = std::function<ServiceReply(const Json& input)>;

class StepService {
 public:
  explicit StepService(std::string name) : name_(std::move(name)) {}

  const std::string& name() const { return name_; }
  void add_operation(std::string operation, OperationFn fn);
  bool has_operation(const std::string& operation) const { return ops_.contains(operation); }

  // count < 0: until changed. Fails (returns an error text) for an unknown operation.
  std::optional<std::string> set_fault(const std::string& operation, FaultMode mode, int64_t count);

  ServiceReply handle(const ServiceRequest& req);

  // Every operation's answer (not /_control or /_requests) is delayed by a
  // time drawn uniformly from [min, max], as a real service takes time to work.
  // The effect is immediate: only the answer waits.
  void set_latency(std::chrono::milliseconds min, std::chrono::milliseconds max, uint32_t seed);

 private:
  struct Fault {
    FaultMode mode = FaultMode::kOk;
    int64_t remaining = -1;  // < 0: no limit
  };
  struct Stored {
    std::string operation;
    ServiceReply reply;
  };

  ServiceReply control(const ServiceRequest& req);
  ServiceReply call_operation(const std::string& operation, const ServiceRequest& req);
  std::optional<ServiceReply> injected_fault(const std::string& operation);

  std::string name_;
  std::map<std::string, OperationFn> ops_;
  std::map<std::string, Fault> faults_;
  std::unordered_map<std::string, Stored> answers_;  // by Idempotency-Key
  std::vector<Json> log_;
  std::chrono::milliseconds latency_min_{0}, latency_max_{0};
  std::mt19937 rng_;
};

// The four ticketing services with their operations (see step_service.cpp for
// what each takes and returns). They share nothing: each has its own state.
void add_seats_operations(StepService& s);
void add_payments_operations(StepService& s);
void add_tickets_operations(StepService& s);
void add_notifier_operations(StepService& s);

}  // namespace usher::examples
