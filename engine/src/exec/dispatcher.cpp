#include "exec/dispatcher.h"

#include <boost/asio/post.hpp>
#include <mutex>

#include "machine/render.h"

namespace usher {

namespace asio = boost::asio;

Dispatcher::Dispatcher(asio::io_context& io, Clock& clock, size_t max_in_flight_per_service, DispatchSink& sink)
    : io_(io), clock_(clock), max_in_flight_(max_in_flight_per_service), sink_(sink) {}

void Dispatcher::bind_service(const std::string& service, StepAdapterPtr adapter) {
  std::unique_lock lock(routes_mu_);
  by_service_[service] = std::move(adapter);
}

void Dispatcher::bind_transport(Transport transport, StepAdapterPtr adapter) {
  std::unique_lock lock(routes_mu_);
  by_transport_[static_cast<int>(transport)] = std::move(adapter);
}

void Dispatcher::register_handler(const std::string& call, LocalHandler handler) {
  local_->add(call, std::move(handler));
  std::unique_lock lock(routes_mu_);
  by_service_[call.substr(0, call.find('.'))] = local_;
}

StepAdapterPtr Dispatcher::adapter_for(const Service& service) const {
  std::shared_lock lock(routes_mu_);
  if (auto it = by_service_.find(service.name); it != by_service_.end()) return it->second;
  if (service.transport == Transport::kLocal) return local_;
  if (auto it = by_transport_.find(static_cast<int>(service.transport)); it != by_transport_.end()) return it->second;
  return nullptr;
}

void Dispatcher::dispatch(Saga& saga, DispatchCommand cmd) {
  if (stopping_ || holding_) return;  // logged as scheduled: sent on the next start
  const Step& step = saga.def->steps[cmd.step];
  const CallSpec& spec = cmd.kind == CallKind::kAction ? step.action : *step.compensate;
  ServiceLane& lane = lanes_[spec.service];
  if (lane.in_flight >= max_in_flight_) {
    lane.waiting.push_back(WaitingCall{saga.state.id, saga.generation, std::move(cmd)});
    return;
  }
  ++lane.in_flight;
  send(saga, std::move(cmd));
}

void Dispatcher::release_slot(const std::string& service) {
  auto lane_it = lanes_.find(service);
  if (lane_it == lanes_.end()) return;
  ServiceLane& lane = lane_it->second;
  if (lane.in_flight > 0) --lane.in_flight;
  while (!stopping_ && !holding_ && lane.in_flight < max_in_flight_ && !lane.waiting.empty()) {
    WaitingCall next = std::move(lane.waiting.front());
    lane.waiting.pop_front();
    Saga* saga = sink_.still_wanted(next.saga_id, next.generation, next.cmd);
    if (!saga) continue;  // overtaken (a cancel, a timeout, a reload)
    ++lane.in_flight;
    send(*saga, std::move(next.cmd));
  }
}

void Dispatcher::send(Saga& saga, DispatchCommand cmd) {
  const Step& step = saga.def->steps[cmd.step];
  const CallSpec& spec = cmd.kind == CallKind::kAction ? step.action : *step.compensate;
  StepCall call;
  call.saga_id = saga.state.id;
  call.workflow = saga.def->name;
  call.step = step.name;
  call.kind = cmd.kind;
  call.attempt = cmd.attempt;
  call.service = saga.def->services.at(spec.service);
  call.operation = spec.operation;
  call.body = std::move(cmd.body);
  if (spec.http) {
    call.http_method = spec.http->method;
    call.http_path = std::move(cmd.http_path);
  }
  call.idempotency_key = idempotency_key(saga.state.id, step.name, cmd.kind);
  call.correlation_id = saga.state.correlation_id;
  call.traceparent = saga.state.traceparent;
  call.timeout = spec.timeout;
  call.node = sink_.node();
  // A call held by the adapter may leave long after this dispatch, after a
  // pause of the whole process even: the lease is asked again then.
  call.may_send = [this] { return sink_.may_send(); };

  StepAdapterPtr adapter = adapter_for(call.service);
  // The attempt's timeout runs from when the request leaves: now, or when an
  // adapter that may hold it first (a connection pool) says it is sent.
  TimerCommand timeout{TimerKind::kAttemptTimeout, cmd.step, cmd.kind, cmd.attempt, 0};
  const int64_t timeout_us = spec.timeout.count() * 1000;
  if (adapter && adapter->reports_sending()) {
    call.on_sending = [this, id = saga.state.id, generation = saga.generation, timeout, timeout_us]() mutable {
      asio::post(io_, [this, id, generation, timeout, timeout_us]() mutable {
        if (stopping_) return;
        timeout.at = clock_.now_us() + timeout_us;
        sink_.on_sending(id, generation, timeout);
      });
    };
  } else {
    timeout.at = clock_.now_us() + timeout_us;
    sink_.on_sending(saga.state.id, saga.generation, timeout);
  }
  {
    std::lock_guard lock(out_mu_);
    ++out_;
  }
  auto reply = [this, id = saga.state.id, generation = saga.generation, step = cmd.step, kind = cmd.kind,
                attempt = cmd.attempt, service = spec.service](StepResult r) {
    asio::post(io_, [this, id, generation, step, kind, attempt, service, r = std::move(r)]() mutable {
      release_slot(service);
      // While stopping, adapters answer their calls in flight with "shut
      // down"; that is not the service's answer. The call stays in flight in
      // the log and is sent again on the next start.
      if (!stopping_) sink_.on_result(id, generation, ResultInput{step, kind, attempt, std::move(r)});
      std::lock_guard lock(out_mu_);
      if (--out_ == 0) out_cv_.notify_all();
    });
  };
  if (!adapter) {
    reply(StepResult::not_sent("no adapter bound for service \"" + call.service.name + "\" (" +
                               transport_name(call.service.transport) + ")"));
    return;
  }
  if (!sink_.may_send()) {
    // This node's lease is in doubt: the saga may be another node's by now.
    // The attempt did not leave; if the lease did end, the saga is dropped
    // here (and its result never written), else it is retried as any
    // attempt that was not sent.
    reply(StepResult::not_sent("node " + std::to_string(call.node) + " is not sure it still holds its lease"));
    return;
  }
  adapter->dispatch(std::move(call), std::move(reply));
}

void Dispatcher::hold() { holding_ = true; }

bool Dispatcher::wait_until_idle(Millis timeout) {
  std::unique_lock lock(out_mu_);
  return out_cv_.wait_for(lock, timeout, [this] { return out_ == 0; });
}

void Dispatcher::stop() {
  stopping_ = true;
  std::vector<StepAdapterPtr> adapters;
  {
    std::shared_lock lock(routes_mu_);
    for (const auto& [name, a] : by_service_) adapters.push_back(a);
    for (const auto& [transport, a] : by_transport_) adapters.push_back(a);
  }
  for (auto& a : adapters) a->shutdown();
}

}  // namespace usher
