// Parsing and rendering of `${…}` expressions (docs/workflow-format.md).
// Parsing happens once, at load time; rendering is a pure function of the saga
// context and is what the state machine calls to build a step's request.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "usher/definition.h"

namespace usher {

// A parse error at byte `offset` of the parsed text.
struct TemplateError {
  size_t offset = 0;
  std::string message;  // e.g. `unknown root "inputs" in "${inputs.seat}" (expected input, steps, saga or env)`
};

// Parses text that may contain `${…}`; `$$` is no escape, a lone `$` is text.
// Expression roots: input[.path], steps.NAME.output[.path], saga.id, saga.workflow,
// env.NAME, each optionally followed by `:-default text`.
// Result: the template, or the first error.
std::variant<StringTemplate, TemplateError> parse_string_template(std::string_view text);

// Everything a template may refer to while a saga runs.
struct RenderContext {
  const Json* input = nullptr;
  // Output of the named step, or nullptr if it has none (not run yet).
  std::function<const Json*(std::string_view step)> step_output;
  std::string_view saga_id;
  std::string_view workflow;
  // When compensating a step whose outcome is unknown (it timed out or never
  // answered), that step's output cannot be known: references to it render as
  // null (the text "null" inside a longer string) instead of failing, or as their
  // `:-default` if they have one, so the compensation can still be sent.
  std::string_view unknown_output_step;
};

// Renders a value template. A whole-value expression keeps the JSON type of
// what it refers to; embedded expressions are interpolated as text (strings
// without quotes, other values as compact JSON). A missing path without a
// default fails with kInvalidArgument naming the expression, e.g.
// `${steps.reserve.output.holdId}: step "reserve" output has no "holdId"`.
Result<Json> render(const ValueTemplate& value, const RenderContext& ctx);
Result<std::string> render_string(const StringTemplate& text, const RenderContext& ctx);
// Renders an `http.path`: the template's own text is kept as written, and
// every interpolated value (or its `:-default`) is percent-encoded as
// path-segment text (RFC 3986: all but unreserved characters, so `/`, `?`,
// `#`, spaces and control characters too; a value "." or ".." has its dots
// encoded), so no input or step output can change the request line.
Result<std::string> render_path(const StringTemplate& text, const RenderContext& ctx);
// `value` percent-encoded as one path segment, as render_path does.
std::string encode_path_segment(std::string_view value);

}  // namespace usher
