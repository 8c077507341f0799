// Fuzz target: the Kafka reply parser (adapters/kafka/kafka_reply.h). Any
// bytes a service or a broken producer puts on the reply topic must classify
// as ok, failed or transient, never crash or throw. What the parser accepts
// as ok must survive the round trip through the reply the helper would build.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "kafka/kafka_reply.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view value(reinterpret_cast<const char*>(data), size);
  const std::string label = "step \"pay\" (payments.charge)";
  usher::StepResult r = usher::kafka_wire::parse_reply(value, label);
  switch (r.outcome) {
    case usher::Outcome::kOk: {
      if (!r.output.is_object()) std::abort();  // the contract: output is an object
      usher::StepResult again = usher::kafka_wire::parse_reply(usher::kafka_wire::ok_reply(r.output), label);
      if (again.outcome != usher::Outcome::kOk || again.output != r.output) std::abort();
      break;
    }
    case usher::Outcome::kFailed:
    case usher::Outcome::kTransient:
      if (r.error.empty()) std::abort();  // a refusal or a malformed reply says why
      break;
    default:
      std::abort();  // a reply is never classified as a timeout
  }
  // The excerpt quoted in logs stays bounded and printable.
  std::string short_text = usher::kafka_wire::excerpt(value, 40);
  if (short_text.size() > 43) std::abort();
  for (char c : short_text)
    if (c == '\n' || c == '\r' || c == '\0') std::abort();
  return 0;
}
