// Secrets in the start payload (`redact:` in a workflow): which parts of the
// input are never written to the saga log nor shown by the API and CLI, and
// which calls need them. The state machine keeps the unredacted input in
// memory only; see docs/semantics.md, "Secrets".
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "usher/definition.h"

namespace usher {

// What the log and every view hold in place of a redacted value.
inline constexpr const char* kRedactedText = "[redacted]";

// The reference tokens of an RFC 6901 JSON pointer ("/card/number" ->
// {"card", "number"}), or nullopt when `pointer` is not one. The root pointer
// "" is refused: redacting the whole input would leave nothing to show.
std::optional<std::vector<std::string>> parse_redact_pointer(std::string_view pointer);

// A copy of `input` with the value at every pointer of `def.redact` that is
// present replaced by kRedactedText.
Json redact_input(const Definition& def, const Json& input);

// Whether `redacted_input` (as logged) had a value at `r`'s pointer.
bool had_value(const Json& redacted_input, const Redaction& r);

// Whether a call's templates read `r`'s value: some `${input…}` path of its
// `with` or `http.path` is the pointer, lies under it or above it.
bool call_reads(const CallSpec& call, const Redaction& r);

}  // namespace usher
