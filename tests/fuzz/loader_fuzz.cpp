// Fuzz target: the YAML workflow loader (usher::load_definition). Any text
// must come back as a definition or as diagnostics; never a crash, a hang or
// an exception. A definition that loads must also satisfy what the engine
// relies on without re-checking.
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>

#include "usher/definition.h"

namespace {

// A fixed environment, so `${env.X}` resolves the same on every run and the
// process environment cannot change what the fuzzer sees.
std::optional<std::string> fixed_env(const std::string& name) {
  if (name == "SEATS_URL") return std::string("http://127.0.0.1:8081");
  if (name == "EMPTY") return std::string();
  return std::nullopt;
}

// Invariants a loaded definition promises (usher/definition.h); a breach is a
// loader bug that would surface later as a crash in the engine.
void check(const usher::Definition& def) {
  if (def.steps.empty()) std::abort();
  if (def.pivot && *def.pivot >= def.steps.size()) std::abort();
  for (size_t i = 0; i < def.steps.size(); ++i) {
    const auto& step = def.steps[i];
    if (def.step_index(step.name) != i) std::abort();  // names are unique
    if (def.services.find(step.action.service) == def.services.end()) std::abort();
    if (step.compensate && def.services.find(step.compensate->service) == def.services.end()) std::abort();
  }
  if (def.hash.size() != 64) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string source(reinterpret_cast<const char*>(data), size);
  usher::LoadResult r = usher::load_definition(source, "fuzz.yaml", &fixed_env);
  if (r.ok()) {
    if (!r.diagnostics.empty()) std::abort();  // a definition is only set without diagnostics
    check(*r.definition);
  } else {
    if (r.diagnostics.empty()) std::abort();  // a refusal must say why
    for (const auto& d : r.diagnostics) (void)d.to_string();
  }
  return 0;
}
