// Expressions: `${root.path:-default}` inside strings. The parser is a single
// left-to-right scan with no recursion, so hostile input costs linear time.
#include "model/expression.h"

#include <charconv>

namespace usher {
namespace {

bool is_segment_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

bool is_index(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

std::string in_quotes(std::string_view s) { return "\"" + std::string(s) + "\""; }

// Parses the body of one `${…}` (between the braces). `text` is the whole
// expression, for messages.
std::variant<Expression, std::string> parse_body(std::string_view body, std::string_view text) {
  Expression expr;
  expr.text = std::string(text);
  std::string_view ref = body;
  if (auto sep = body.find(":-"); sep != std::string_view::npos) {
    ref = body.substr(0, sep);
    expr.fallback = std::string(body.substr(sep + 2));
    // Defaults are plain text; a nested expression would be sent verbatim.
    if (expr.fallback->find("${") != std::string::npos)
      return "the default in " + in_quotes(text) + " cannot hold an expression (defaults are plain text)";
  }
  if (ref.empty()) return "empty expression " + in_quotes(text) + " (expected e.g. \"${input.seat}\")";
  std::vector<std::string> segments;
  size_t start = 0;
  while (true) {
    size_t dot = ref.find('.', start);
    std::string_view seg = ref.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (seg.empty()) return "empty path segment in " + in_quotes(text);
    for (char c : seg)
      if (!is_segment_char(c))
        return "invalid character " + (static_cast<unsigned char>(c) < 0x80 ? in_quotes(std::string(1, c)) : std::string("(non-ASCII)")) +
               " in " + in_quotes(text) +
               " (names are letters, digits, '_' and '-', separated by '.')";
    segments.emplace_back(seg);
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  const std::string& root = segments[0];
  if (root == "input") {
    expr.root = Expression::Root::kInput;
    expr.path.assign(segments.begin() + 1, segments.end());
  } else if (root == "steps") {
    expr.root = Expression::Root::kStepOutput;
    if (segments.size() < 2) return in_quotes(text) + " needs a step name, e.g. \"${steps.reserve.output}\"";
    expr.step = segments[1];
    if (segments.size() < 3)
      return in_quotes(text) + " must refer to the step's output, e.g. \"${steps." + expr.step + ".output}\"";
    if (segments[2] != "output")
      return "expected \"output\" after the step name in " + in_quotes(text) + ", e.g. \"${steps." + expr.step +
             ".output." + segments[2] + "}\"";
    expr.path.assign(segments.begin() + 3, segments.end());
  } else if (root == "saga") {
    if (segments.size() != 2 || (segments[1] != "id" && segments[1] != "workflow"))
      return "unknown saga field in " + in_quotes(text) + " (expected ${saga.id} or ${saga.workflow})";
    expr.root = segments[1] == "id" ? Expression::Root::kSagaId : Expression::Root::kSagaWorkflow;
  } else if (root == "env") {
    if (segments.size() != 2) return in_quotes(text) + " must name one variable, e.g. \"${env.SEATS_URL}\"";
    expr.root = Expression::Root::kEnv;
    expr.path.push_back(segments[1]);
  } else {
    return "unknown root " + in_quotes(root) + " in " + in_quotes(text) + " (expected input, steps, saga or env)";
  }
  return expr;
}

// Where a lookup stopped, for messages: `step "reserve" output.seat`.
std::string describe(const Expression& e, size_t depth) {
  std::string out = e.root == Expression::Root::kStepOutput ? "step \"" + e.step + "\" output" : "input";
  for (size_t i = 0; i < depth; ++i) out += "." + e.path[i];
  return out;
}

const char* kind_of(const Json& j) {
  switch (j.type()) {
    case Json::value_t::object: return "an object";
    case Json::value_t::array: return "an array";
    case Json::value_t::string: return "a string";
    case Json::value_t::boolean: return "a boolean";
    case Json::value_t::null: return "null";
    default: return "a number";
  }
}

// The value an expression refers to: a pointer into the context (or into
// `scratch` for saga fields), or an error saying why there is none.
std::variant<const Json*, std::string> resolve(const Expression& e, const RenderContext& ctx, Json& scratch) {
  const Json* cur = nullptr;
  switch (e.root) {
    case Expression::Root::kSagaId:
      scratch = std::string(ctx.saga_id);
      return &scratch;
    case Expression::Root::kSagaWorkflow:
      scratch = std::string(ctx.workflow);
      return &scratch;
    case Expression::Root::kEnv:
      // The loader replaces env references by their text; one that reaches
      // rendering came from a template built by hand.
      return std::string("environment references are resolved when a workflow is loaded");
    case Expression::Root::kInput:
      cur = ctx.input;
      if (cur == nullptr) return std::string("the saga has no input");
      break;
    case Expression::Root::kStepOutput:
      if (!ctx.unknown_output_step.empty() && e.step == ctx.unknown_output_step) {
        if (e.fallback) return std::string("the output of step \"" + e.step + "\" is unknown");
        scratch = nullptr;
        return &scratch;
      }
      cur = ctx.step_output ? ctx.step_output(e.step) : nullptr;
      if (cur == nullptr && !e.step.empty() && e.step == ctx.unknown_output_step) {
        // The compensation of a step whose outcome is unknown must still be
        // sent: its output renders as its default or, without one, as null.
        if (e.fallback) return "step \"" + e.step + "\" has an unknown outcome";
        static const Json kNull;
        return &kNull;
      }
      if (cur == nullptr) return "step \"" + e.step + "\" has no output";
      break;
  }
  for (size_t i = 0; i < e.path.size(); ++i) {
    const std::string& seg = e.path[i];
    if (cur->is_object()) {
      auto it = cur->find(seg);
      if (it == cur->end()) return describe(e, i) + " has no \"" + seg + "\"";
      cur = &*it;
    } else if (cur->is_array()) {
      size_t index = 0;
      auto [end, ec] = std::from_chars(seg.data(), seg.data() + seg.size(), index);
      if (!is_index(seg) || ec != std::errc{} || end != seg.data() + seg.size())
        return describe(e, i) + " is an array; \"" + seg + "\" is not an index";
      if (index >= cur->size())
        return describe(e, i) + " has no element " + seg + " (it has " + std::to_string(cur->size()) + ")";
      cur = &(*cur)[index];
    } else {
      return describe(e, i) + " is " + kind_of(*cur) + ", so it has no \"" + seg + "\"";
    }
  }
  return cur;
}

std::string as_text(const Json& j) {
  if (j.is_string()) return j.get<std::string>();
  // replace: a string with invalid UTF-8 must not make rendering throw.
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// A whole-value default keeps a JSON type when it spells a scalar.
Json default_value(const std::string& text) {
  Json parsed = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || parsed.is_structured()) return text;
  return parsed;
}

Status missing(const Expression& e, const std::string& why) {
  return Status::invalid_argument(e.text + ": " + why);
}

}  // namespace

std::variant<StringTemplate, TemplateError> parse_string_template(std::string_view text) {
  StringTemplate out;
  std::string literal;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] != '$' || i + 1 >= text.size() || text[i + 1] != '{') {
      literal.push_back(text[i++]);
      continue;
    }
    // Find the matching '}'; braces inside a default ("${input.x:-{}}") nest.
    size_t depth = 0;
    size_t end = std::string_view::npos;
    for (size_t j = i + 2; j < text.size(); ++j) {
      if (text[j] == '{') {
        ++depth;
      } else if (text[j] == '}') {
        if (depth == 0) {
          end = j;
          break;
        }
        --depth;
      }
    }
    if (end == std::string_view::npos)
      return TemplateError{i, "unterminated expression: \"${\" at offset " + std::to_string(i) +
                                  " has no closing '}'"};
    auto parsed = parse_body(text.substr(i + 2, end - i - 2), text.substr(i, end - i + 1));
    if (auto* err = std::get_if<std::string>(&parsed)) return TemplateError{i, std::move(*err)};
    if (!literal.empty()) out.parts.emplace_back(std::move(literal));
    literal.clear();
    out.parts.emplace_back(std::get<Expression>(std::move(parsed)));
    i = end + 1;
  }
  if (!literal.empty() || out.parts.empty()) out.parts.emplace_back(std::move(literal));
  return out;
}

std::string encode_path_segment(std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  const bool dots_only = value == "." || value == "..";
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    const auto u = static_cast<unsigned char>(c);
    const bool unreserved = (u >= 'A' && u <= 'Z') || (u >= 'a' && u <= 'z') || (u >= '0' && u <= '9') ||
                            c == '-' || c == '_' || c == '~' || (c == '.' && !dots_only);
    if (unreserved) {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xF]);
    }
  }
  return out;
}

namespace {

// Renders `text`, passing each interpolated value through `encode`.
template <typename Encode>
Result<std::string> render_text(const StringTemplate& text, const RenderContext& ctx, Encode encode) {
  std::string out;
  Json scratch;
  for (const auto& part : text.parts) {
    if (const auto* s = std::get_if<std::string>(&part)) {
      out += *s;
      continue;
    }
    const auto& e = std::get<Expression>(part);
    auto value = resolve(e, ctx, scratch);
    if (const auto* found = std::get_if<const Json*>(&value)) {
      out += encode(as_text(**found));
    } else if (e.fallback) {
      out += encode(*e.fallback);
    } else {
      return missing(e, std::get<std::string>(value));
    }
  }
  return out;
}

}  // namespace

Result<std::string> render_path(const StringTemplate& text, const RenderContext& ctx) {
  return render_text(text, ctx, [](const std::string& v) { return encode_path_segment(v); });
}

Result<std::string> render_string(const StringTemplate& text, const RenderContext& ctx) {
  return render_text(text, ctx, [](const std::string& v) -> const std::string& { return v; });
}

Result<Json> render(const ValueTemplate& value, const RenderContext& ctx) {
  switch (value.kind) {
    case ValueTemplate::Kind::kLiteral:
      return value.literal;
    case ValueTemplate::Kind::kString: {
      if (!value.string.whole_value()) {
        auto s = render_string(value.string, ctx);
        if (!s) return s.status();
        return Json(std::move(s).value());
      }
      const auto& e = std::get<Expression>(value.string.parts[0]);
      Json scratch;
      auto found = resolve(e, ctx, scratch);
      if (const auto* j = std::get_if<const Json*>(&found)) return **j;
      if (e.fallback) return default_value(*e.fallback);
      return missing(e, std::get<std::string>(found));
    }
    case ValueTemplate::Kind::kObject: {
      Json out = Json::object();
      for (const auto& [key, member] : value.members) {
        auto v = render(member, ctx);
        if (!v) return v.status();
        out[key] = std::move(v).value();
      }
      return out;
    }
    case ValueTemplate::Kind::kArray: {
      Json out = Json::array();
      for (const auto& element : value.elements) {
        auto v = render(element, ctx);
        if (!v) return v.status();
        out.push_back(std::move(v).value());
      }
      return out;
    }
  }
  return Status::internal("unknown value template kind");
}

}  // namespace usher
