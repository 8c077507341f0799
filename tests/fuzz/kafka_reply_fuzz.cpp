// Fuzz target: the Kafka reply parser (adapters/kafka/kafka_reply.h). Any
// bytes a service or a broken producer puts on the reply topic must classify
// as ok, failed, transient or (malformed) unknown, never crash or throw, and
// every text it keeps must be storable: valid UTF-8 of at most 512 bytes.
// What the parser accepts as ok must survive the round trip through the reply
// the helper would build.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "kafka/kafka_reply.h"
#include "usher/service_text.h"

namespace {

void check_storable(const std::string& text) {
  if (!usher::is_valid_utf8(text) || text.size() > usher::kMaxServiceTextBytes) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view value(reinterpret_cast<const char*>(data), size);
  const std::string label = "step \"pay\" (payments.charge)";
  usher::StepResult r = usher::kafka_wire::parse_reply(value, label);
  check_storable(r.error);
  check_storable(r.note);
  switch (r.outcome) {
    case usher::Outcome::kOk: {
      if (!r.output.is_object()) std::abort();  // the contract: output is an object
      usher::StepResult again = usher::kafka_wire::parse_reply(usher::kafka_wire::ok_reply(r.output), label);
      if (again.outcome != usher::Outcome::kOk || again.output != r.output) std::abort();
      break;
    }
    case usher::Outcome::kFailed:
    case usher::Outcome::kTransient:
    case usher::Outcome::kTimeout:  // a malformed reply: the outcome is unknown
      if (r.error.empty()) std::abort();  // a refusal or a malformed reply says why
      break;
  }
  // The excerpt quoted in logs stays bounded, printable and valid UTF-8.
  std::string short_text = usher::kafka_wire::excerpt(value, 40);
  if (short_text.size() > 40 || !usher::is_valid_utf8(short_text)) std::abort();
  for (char c : short_text)
    if (c == '\n' || c == '\r' || c == '\0') std::abort();
  return 0;
}
