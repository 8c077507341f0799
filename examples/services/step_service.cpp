#include "step_service.h"

#include <memory>

namespace usher::examples {

namespace {

ServiceReply error_reply(unsigned status, std::string message) {
  return {status, Json{{"error", std::move(message)}}, false};
}

// Whether a status is a final answer worth replaying for the same key
// (docs/semantics.md: these are the ones usher will not retry).
bool is_final(unsigned status) {
  if (status >= 200 && status < 300) return true;
  return status >= 400 && status < 500 && status != 408 && status != 425 && status != 429;
}

// A required scalar field, as text for messages and ids; nullopt when missing.
const Json* field(const Json& in, const char* name) {
  if (!in.is_object()) return nullptr;
  auto it = in.find(name);
  if (it == in.end() || it->is_null() || it->is_structured()) return nullptr;
  return &*it;
}

ServiceReply missing(const char* name) {
  return error_reply(400, std::string("field \"") + name + "\" is required");
}

std::string text_of(const Json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

std::string decline_message(const std::string& operation) {
  if (operation == "charge") return "card declined";
  if (operation == "hold") return "seat not available";
  return operation + " declined";
}

}  // namespace

std::optional<FaultMode> parse_fault_mode(const std::string& name) {
  if (name == "ok") return FaultMode::kOk;
  if (name == "decline") return FaultMode::kDecline;
  if (name == "transient") return FaultMode::kTransient;
  if (name == "hang") return FaultMode::kHang;
  return std::nullopt;
}

void StepService::add_operation(std::string operation, OperationFn fn) {
  ops_[std::move(operation)] = std::move(fn);
}

std::optional<std::string> StepService::set_fault(const std::string& operation, FaultMode mode,
                                                  int64_t count) {
  if (!ops_.contains(operation))
    return "service " + name_ + " has no operation \"" + operation + "\"";
  if (mode == FaultMode::kOk || count == 0)
    faults_.erase(operation);
  else
    faults_[operation] = Fault{mode, count};
  return std::nullopt;
}

std::optional<ServiceReply> StepService::injected_fault(const std::string& operation) {
  auto it = faults_.find(operation);
  if (it == faults_.end()) return std::nullopt;
  const FaultMode mode = it->second.mode;
  if (it->second.remaining > 0 && --it->second.remaining == 0) faults_.erase(it);
  switch (mode) {
    case FaultMode::kOk: return std::nullopt;
    case FaultMode::kDecline: return error_reply(422, decline_message(operation));
    case FaultMode::kTransient: return error_reply(503, name_ + " is temporarily unavailable");
    case FaultMode::kHang: return ServiceReply{0, Json(), true};
  }
  return std::nullopt;
}

ServiceReply StepService::control(const ServiceRequest& req) {
  Json in = Json::parse(req.body, nullptr, false);
  if (in.is_discarded() || !in.is_object()) return error_reply(400, "body must be a JSON object");
  const Json* op = field(in, "operation");
  const Json* mode_name = field(in, "mode");
  if (!op || !op->is_string()) return missing("operation");
  if (!mode_name || !mode_name->is_string()) return missing("mode");
  auto mode = parse_fault_mode(mode_name->get<std::string>());
  if (!mode) return error_reply(400, "mode must be ok, decline, transient or hang");
  int64_t count = -1;
  if (const Json* c = field(in, "count")) {
    if (!c->is_number_integer() || c->get<int64_t>() < 0)
      return error_reply(400, "count must be a non-negative integer");
    count = c->get<int64_t>();
  }
  if (auto error = set_fault(op->get<std::string>(), *mode, count)) return error_reply(404, *error);
  return {200, Json{{"operation", *op}, {"mode", *mode_name}, {"count", count < 0 ? Json() : Json(count)}}, false};
}

ServiceReply StepService::call_operation(const std::string& operation, const ServiceRequest& req) {
  Json entry = {{"operation", operation},
                {"idempotency_key", req.idempotency_key.empty() ? Json() : Json(req.idempotency_key)},
                {"saga_id", req.saga_id.empty() ? Json() : Json(req.saga_id)},
                {"step", req.step.empty() ? Json() : Json(req.step)},
                {"attempt", Json()},
                {"status", Json()},
                {"replayed", false}};
  if (!req.attempt.empty()) {
    try {
      entry["attempt"] = std::stoll(req.attempt);
    } catch (const std::exception&) {
      entry["attempt"] = req.attempt;
    }
  }
  const size_t at = log_.size();
  log_.push_back(std::move(entry));
  auto finish = [&](ServiceReply reply, bool replayed) {
    if (!reply.hang) log_[at]["status"] = reply.status;
    log_[at]["replayed"] = replayed;
    if (latency_max_.count() > 0)
      reply.delay = std::chrono::milliseconds(
          std::uniform_int_distribution<int64_t>(latency_min_.count(), latency_max_.count())(rng_));
    return reply;
  };

  if (!req.idempotency_key.empty()) {
    auto it = answers_.find(req.idempotency_key);
    if (it != answers_.end()) {
      if (it->second.operation != operation)
        return finish(error_reply(422, "Idempotency-Key \"" + req.idempotency_key +
                                           "\" was used for operation \"" + it->second.operation + "\""),
                      false);
      return finish(it->second.reply, true);
    }
  }
  ServiceReply reply;
  if (auto fault = injected_fault(operation)) {
    // An injected decline is a final answer like a real one and is replayed
    // as such; injected 503s and hangs are not remembered.
    reply = std::move(*fault);
  } else {
    Json in = req.body.empty() ? Json::object() : Json::parse(req.body, nullptr, false);
    if (in.is_discarded() || !in.is_object())
      reply = error_reply(400, "body must be a JSON object");
    else
      reply = ops_.at(operation)(in);
  }
  if (!req.idempotency_key.empty() && !reply.hang && is_final(reply.status))
    answers_.emplace(req.idempotency_key, Stored{operation, reply});
  return finish(std::move(reply), false);
}

void StepService::set_latency(std::chrono::milliseconds min, std::chrono::milliseconds max, uint32_t seed) {
  latency_min_ = min;
  latency_max_ = std::max(min, max);
  rng_.seed(seed);
}

ServiceReply StepService::handle(const ServiceRequest& req) {
  std::string_view path = req.target;
  if (auto q = path.find('?'); q != std::string_view::npos) path = path.substr(0, q);

  if (path == "/_control") {
    if (req.method != "POST") return error_reply(405, "use POST");
    return control(req);
  }
  if (path == "/_requests") {
    if (req.method != "GET") return error_reply(405, "use GET");
    return {200, Json(log_), false};
  }
  if (path == "/_requests/reset") {
    if (req.method != "POST") return error_reply(405, "use POST");
    log_.clear();
    return {200, Json::object(), false};
  }
  if (path == "/healthz") return {200, Json{{"service", name_}, {"status", "ok"}}, false};

  // Operations are "POST /{operation}". A step's `http:` override may use
  // another method or a longer path, e.g. "DELETE /release/H-1": the first
  // path segment names the operation, the rest is ignored.
  std::string_view rest = path.substr(path.empty() ? 0 : 1);
  std::string operation(rest.substr(0, rest.find('/')));
  if (!ops_.contains(operation))
    return error_reply(404, "service " + name_ + " has no operation \"" + operation + "\"");
  return call_operation(operation, req);
}

// ---- the four services ----------------------------------------------------------

void add_seats_operations(StepService& s) {
  struct Hold {
    std::string concert_id;
    std::string seat;
    bool released = false;
  };
  struct State {
    uint64_t next = 1;
    std::unordered_map<std::string, Hold> holds;
  };
  auto state = std::make_shared<State>();
  // hold {concertId, seat} → 200 {holdId, concertId, seat, status:"held"}
  s.add_operation("hold", [state](const Json& in) -> ServiceReply {
    const Json* concert = field(in, "concertId");
    const Json* seat = field(in, "seat");
    if (!concert) return missing("concertId");
    if (!seat) return missing("seat");
    std::string id = "H-" + std::to_string(state->next++);
    state->holds[id] = Hold{text_of(*concert), text_of(*seat)};
    return {200, Json{{"holdId", id}, {"concertId", *concert}, {"seat", *seat}, {"status", "held"}}, false};
  });
  // hold-block {concertId, seats:[…], groupName} → 200 {holdId, concertId, seats, status:"held"}
  // (group-booking.yaml): one hold for a block of seats.
  s.add_operation("hold-block", [state](const Json& in) -> ServiceReply {
    const Json* concert = field(in, "concertId");
    if (!concert) return missing("concertId");
    auto seats = in.find("seats");
    if (seats == in.end() || !seats->is_array() || seats->empty())
      return error_reply(400, "field \"seats\" must be a non-empty array");
    std::string id = "H-" + std::to_string(state->next++);
    state->holds[id] = Hold{text_of(*concert), seats->dump()};
    Json out = {{"holdId", id}, {"concertId", *concert}, {"seats", *seats}, {"status", "held"}};
    if (const Json* group = field(in, "groupName")) out["groupName"] = *group;
    return {200, std::move(out), false};
  });
  // hold-parking {concertId, spaces} → 200 {holdId, spaces, status:"held"}
  // (group-booking.yaml). spaces may be 0: an empty hold, still released later.
  s.add_operation("hold-parking", [state](const Json& in) -> ServiceReply {
    const Json* concert = field(in, "concertId");
    const Json* spaces = field(in, "spaces");
    if (!concert) return missing("concertId");
    if (!spaces) return missing("spaces");
    if (!spaces->is_number_integer() || spaces->get<int64_t>() < 0)
      return error_reply(400, "spaces must be a non-negative integer");
    std::string id = "H-" + std::to_string(state->next++);
    state->holds[id] = Hold{text_of(*concert), "parking"};
    return {200, Json{{"holdId", id}, {"concertId", *concert}, {"spaces", *spaces}, {"status", "held"}}, false};
  });
  // free {concertId, seat} → 200 {concertId, seat, status:"on sale"} (seat-exchange.yaml):
  // puts a sold seat back on sale. Repeatable.
  s.add_operation("free", [](const Json& in) -> ServiceReply {
    const Json* concert = field(in, "concertId");
    const Json* seat = field(in, "seat");
    if (!concert) return missing("concertId");
    if (!seat) return missing("seat");
    return {200, Json{{"concertId", *concert}, {"seat", *seat}, {"status", "on sale"}}, false};
  });
  // release {holdId} → 200 {holdId, status:"released"}. Releasing twice, or a
  // hold this process does not know (it restarted), succeeds: a compensation
  // must be safe to repeat.
  s.add_operation("release", [state](const Json& in) -> ServiceReply {
    const Json* hold = field(in, "holdId");
    if (!hold) return missing("holdId");
    auto it = state->holds.find(text_of(*hold));
    if (it != state->holds.end()) it->second.released = true;
    return {200, Json{{"holdId", *hold}, {"status", "released"}}, false};
  });
}

void add_payments_operations(StepService& s) {
  struct State {
    uint64_t next = 1;
    std::unordered_map<std::string, bool> refunded;  // by paymentId
  };
  auto state = std::make_shared<State>();
  // charge {userId, amount, reference[, card]} → 200 {paymentId, amount, status:"captured"[, cardLast4]}.
  // Data-driven decline for demos: an amount greater than 1000 is refused with
  // 422 {"error":"card declined"}, so a saga compensates without any switch.
  s.add_operation("charge", [state](const Json& in) -> ServiceReply {
    const Json* user = field(in, "userId");
    const Json* amount = field(in, "amount");
    if (!user) return missing("userId");
    if (!amount) return missing("amount");
    if (!amount->is_number() || amount->get<double>() <= 0)
      return error_reply(400, "amount must be a positive number");
    if (amount->get<double>() > 1000) return error_reply(422, "card declined");
    std::string id = "P-" + std::to_string(state->next++);
    state->refunded[id] = false;
    Json out = {{"paymentId", id}, {"amount", *amount}, {"status", "captured"}};
    if (const Json* ref = field(in, "reference")) out["reference"] = *ref;
    // Like a real processor, the reply names the card by its last digits only.
    if (auto card = in.find("card"); card != in.end() && card->is_object()) {
      const Json* number = field(*card, "number");
      if (number && number->is_string() && number->get_ref<const std::string&>().size() >= 4) {
        const std::string& digits = number->get_ref<const std::string&>();
        out["cardLast4"] = digits.substr(digits.size() - 4);
      }
    }
    return {200, std::move(out), false};
  });
  // adjust {userId, amount, reference} → 200 {adjustmentId, amount, status}
  // (seat-exchange.yaml): amount > 0 charges the fan, < 0 refunds, 0 moves no
  // money. Like charge, a charge above 1000 is declined (422 card declined).
  s.add_operation("adjust", [state](const Json& in) -> ServiceReply {
    const Json* user = field(in, "userId");
    const Json* amount = field(in, "amount");
    if (!user) return missing("userId");
    if (!amount) return missing("amount");
    if (!amount->is_number()) return error_reply(400, "amount must be a number");
    const double value = amount->get<double>();
    if (value > 1000) return error_reply(422, "card declined");
    std::string id = "A-" + std::to_string(state->next++);
    const char* status = value > 0 ? "charged" : value < 0 ? "refunded" : "no change";
    return {200, Json{{"adjustmentId", id}, {"amount", *amount}, {"status", status}}, false};
  });
  // reverse {adjustmentId} → 200 {adjustmentId, status:"reversed"}; repeatable.
  s.add_operation("reverse", [](const Json& in) -> ServiceReply {
    const Json* adjustment = field(in, "adjustmentId");
    if (!adjustment) return missing("adjustmentId");
    return {200, Json{{"adjustmentId", *adjustment}, {"status", "reversed"}}, false};
  });
  // refund {paymentId} → 200 {paymentId, refundId, status:"refunded"}; repeatable.
  s.add_operation("refund", [state](const Json& in) -> ServiceReply {
    const Json* payment = field(in, "paymentId");
    if (!payment) return missing("paymentId");
    const std::string id = text_of(*payment);
    state->refunded[id] = true;
    return {200, Json{{"paymentId", id}, {"refundId", "R-" + id}, {"status", "refunded"}}, false};
  });
}

void add_tickets_operations(StepService& s) {
  struct State {
    uint64_t next = 1;
    std::unordered_map<std::string, bool> voided;  // by ticketId
  };
  auto state = std::make_shared<State>();
  // issue {holdId, paymentId[, parkingHoldId][, replaces]} → 200 {ticketId, holdId, paymentId, status:"issued"}
  s.add_operation("issue", [state](const Json& in) -> ServiceReply {
    const Json* hold = field(in, "holdId");
    const Json* payment = field(in, "paymentId");
    if (!hold) return missing("holdId");
    if (!payment) return missing("paymentId");
    std::string id = "T-" + std::to_string(state->next++);
    state->voided[id] = false;
    Json out = {{"ticketId", id}, {"holdId", *hold}, {"paymentId", *payment}, {"status", "issued"}};
    // group-booking adds parkingHoldId, seat-exchange adds replaces: echoed back.
    if (const Json* parking = field(in, "parkingHoldId")) out["parkingHoldId"] = *parking;
    if (const Json* replaces = field(in, "replaces")) out["replaces"] = *replaces;
    return {200, std::move(out), false};
  });
  // reinstate {ticketId} → 200 {ticketId, status:"issued"} (compensates void); repeatable.
  s.add_operation("reinstate", [state](const Json& in) -> ServiceReply {
    const Json* ticket = field(in, "ticketId");
    if (!ticket) return missing("ticketId");
    state->voided[text_of(*ticket)] = false;
    return {200, Json{{"ticketId", *ticket}, {"status", "issued"}}, false};
  });
  // void {ticketId, reason} → 200 {ticketId, status:"void"}; repeatable, and a
  // ticket from before this process started is accepted (the demo's oldTicketId).
  s.add_operation("void", [state](const Json& in) -> ServiceReply {
    const Json* ticket = field(in, "ticketId");
    if (!ticket) return missing("ticketId");
    state->voided[text_of(*ticket)] = true;
    return {200, Json{{"ticketId", *ticket}, {"status", "void"}}, false};
  });
}

void add_notifier_operations(StepService& s) {
  // send {userId, ticketId[, template]} → 200 {}: the message is "sent" (nothing leaves
  // the process; the request log shows it).
  s.add_operation("send", [](const Json& in) -> ServiceReply {
    if (!field(in, "userId")) return missing("userId");
    return {200, Json::object(), false};
  });
}

}  // namespace usher::examples
