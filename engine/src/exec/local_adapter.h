// The `local` adapter: steps handled by C++ functions in the same process.
// Used by embedding applications, by tests and by the `local` benchmark.
#pragma once

#include <memory>
#include <shared_mutex>
#include <string>
#include <unordered_map>

#include "usher/engine.h"

namespace usher {

class LocalAdapter final : public StepAdapter {
 public:
  // `call` is "service.operation". A later add() of the same call replaces it.
  void add(const std::string& call, LocalHandler handler);

  // Runs the handler inline, on the calling (engine) thread, and calls `done`
  // before returning. A handler that throws is a transient failure; a call with
  // no handler is a business failure naming the call.
  void dispatch(StepCall call, StepCallback done) override;

 private:
  std::shared_mutex mu_;
  // shared_ptr so a handler replaced by add() stays alive while it runs.
  std::unordered_map<std::string, std::shared_ptr<const LocalHandler>> handlers_;
};

}  // namespace usher
