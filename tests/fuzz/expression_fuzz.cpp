// Fuzz target: the `${…}` expression parser and renderer
// (engine/src/model/expression.h). The input is one template text; when it
// parses, it is rendered against a fixed saga context three ways: as a request
// value, as a path string, and as the compensation of a step whose outcome is
// unknown. Parsing and rendering must answer with a template, an error or a
// Status; never crash or throw.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include "model/expression.h"

namespace {

// The context of expression_test.cpp: nested objects, arrays, null and
// false values, one step with output and one without.
struct Context {
  usher::Json input = usher::Json::parse(
      R"({"qty": 3, "seat": "A7", "user": {"id": "u1"}, "items": [{"sku": "x"}, {"sku": "y"}],
          "flag": false, "none": null, "bad": "\u00ff", "0": {"1": [true]}})");
  usher::Json reserve = usher::Json::parse(R"({"holdId": "h-9", "price": 12.5, "list": [1, 2, 3]})");
  usher::Json bad_utf8 = usher::Json{{"s", std::string("\xc3\x28")}};

  usher::RenderContext render_context() const {
    usher::RenderContext c;
    c.input = &input;
    c.step_output = [this](std::string_view step) -> const usher::Json* {
      if (step == "reserve") return &reserve;
      if (step == "raw") return &bad_utf8;  // a service may answer bytes that are not UTF-8
      return nullptr;
    };
    c.saga_id = "0190-abc";
    c.workflow = "concert-booking";
    return c;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Context context;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = usher::parse_string_template(text);
  if (auto* error = std::get_if<usher::TemplateError>(&parsed)) {
    // The offset points into the text it was given.
    if (error->offset > size || error->message.empty()) std::abort();
    return 0;
  }
  const auto& tmpl = std::get<usher::StringTemplate>(parsed);
  usher::ValueTemplate value;
  value.kind = usher::ValueTemplate::Kind::kString;
  value.string = tmpl;

  usher::RenderContext ctx = context.render_context();
  auto as_value = usher::render(value, ctx);
  auto as_string = usher::render_string(tmpl, ctx);
  // A failure must name the problem (kInvalidArgument with the expression).
  if (!as_value.is_ok() && as_value.status().message().empty()) std::abort();
  if (!as_string.is_ok() && as_string.status().message().empty()) std::abort();
  // A literal text renders to itself, whatever the context.
  if (tmpl.is_literal() && as_string.is_ok() && as_string.value() != text) std::abort();

  ctx.unknown_output_step = "reserve";
  (void)usher::render(value, ctx);
  // No context at all: every reference is missing, never dereferenced.
  (void)usher::render_string(tmpl, usher::RenderContext{});
  return 0;
}
