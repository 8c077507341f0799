// Fuzz target: the YAML workflow loader (usher::load_definition). Any text
// must come back as a definition or as diagnostics; never a crash, a hang or
// an exception. A definition that loads must also satisfy what the engine
// relies on without re-checking.
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>

#include "model/redaction.h"
#include "usher/definition.h"

namespace {

// A fixed environment, so `${env.X}` resolves the same on every run and the
// process environment cannot change what the fuzzer sees.
std::optional<std::string> fixed_env(const std::string& name) {
  if (name == "SEATS_URL") return std::string("http://127.0.0.1:8081");
  if (name == "EMPTY") return std::string();
  return std::nullopt;
}

constexpr const char* kSecret = "\x01secret\x01";

size_t secrets_in(const usher::Json& v) {
  if (v.is_string()) return v.get_ref<const std::string&>() == kSecret ? 1 : 0;
  size_t n = 0;
  if (v.is_structured())
    for (const auto& child : v) n += secrets_in(child);
  return n;
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
  // Redaction indexes point into def.redact, and redacting a payload that
  // holds a secret at every pointer (objects all the way, "0" included as a
  // key) leaves no secret behind.
  for (const auto& step : def.steps)
    for (const auto* call : {&step.action, step.compensate ? &*step.compensate : nullptr})
      if (call)
        for (size_t i : call->reads_redacted)
          if (i >= def.redact.size()) std::abort();
  usher::Json payload = usher::Json::object();
  for (const auto& r : def.redact) {
    if (r.tokens.empty()) std::abort();
    usher::Json* at = &payload;
    for (const auto& token : r.tokens) {
      if (!at->is_object() && !at->is_null()) break;
      at = &(*at)[token];
    }
    if (at->is_null()) *at = kSecret;
  }
  if (secrets_in(usher::redact_input(def, payload)) != 0) std::abort();
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
