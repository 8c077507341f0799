#include "exec/local_adapter.h"

#include <exception>
#include <mutex>

namespace usher {

void LocalAdapter::add(const std::string& call, LocalHandler handler) {
  std::unique_lock lock(mu_);
  handlers_[call] = std::make_shared<const LocalHandler>(std::move(handler));
}

void LocalAdapter::dispatch(StepCall call, StepCallback done) {
  std::shared_ptr<const LocalHandler> handler;
  {
    std::shared_lock lock(mu_);
    auto it = handlers_.find(call.service.name + "." + call.operation);
    if (it != handlers_.end()) handler = it->second;
  }
  if (handler == nullptr) {
    done(StepResult::failed("no local handler for " + call.service.name + "." + call.operation));
    return;
  }
  StepResult result;
  try {
    result = (*handler)(call);
  } catch (const std::exception& e) {
    result = StepResult::transient(std::string("handler threw: ") + e.what());
  } catch (...) {
    result = StepResult::transient("handler threw a non-standard exception");
  }
  done(std::move(result));
}

}  // namespace usher
