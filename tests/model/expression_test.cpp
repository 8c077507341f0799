// Parsing and rendering of `${…}` templates (engine/src/model/expression.h).
#include <doctest/doctest.h>

#include "model/expression.h"

using usher::Json;
using usher::RenderContext;
using usher::StringTemplate;
using usher::ValueTemplate;

namespace {

StringTemplate parse(const std::string& text) {
  auto r = usher::parse_string_template(text);
  REQUIRE_MESSAGE(std::holds_alternative<StringTemplate>(r), std::get<usher::TemplateError>(r).message);
  return std::get<StringTemplate>(r);
}

std::string parse_error(const std::string& text) {
  auto r = usher::parse_string_template(text);
  REQUIRE(std::holds_alternative<usher::TemplateError>(r));
  return std::get<usher::TemplateError>(r).message;
}

ValueTemplate str(const std::string& text) {
  ValueTemplate v;
  v.kind = ValueTemplate::Kind::kString;
  v.string = parse(text);
  return v;
}

struct Fixture {
  Json input = Json::parse(R"({"qty": 3, "seat": "A7", "user": {"id": "u1"}, "items": [{"sku": "x"}, {"sku": "y"}],
                              "flag": false, "none": null})");
  Json reserve = Json::parse(R"({"holdId": "h-9", "price": 12.5})");
  RenderContext ctx() const {
    RenderContext c;
    c.input = &input;
    c.step_output = [this](std::string_view step) -> const Json* {
      return step == "reserve" ? &reserve : nullptr;
    };
    c.saga_id = "0190-abc";
    c.workflow = "concert-booking";
    return c;
  }
};

Json rendered(const ValueTemplate& v, const RenderContext& ctx) {
  auto r = usher::render(v, ctx);
  REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
  return r.value();
}

}  // namespace

TEST_CASE("parses each kind of expression") {
  auto t = parse("a ${input.user.id} b ${steps.reserve.output.holdId:-none} ${saga.id}${saga.workflow} $ $$ c");
  REQUIRE(t.parts.size() == 8);
  const auto& in = std::get<usher::Expression>(t.parts[1]);
  CHECK(in.root == usher::Expression::Root::kInput);
  CHECK(in.path == std::vector<std::string>{"user", "id"});
  CHECK(in.text == "${input.user.id}");
  const auto& step = std::get<usher::Expression>(t.parts[3]);
  CHECK(step.root == usher::Expression::Root::kStepOutput);
  CHECK(step.step == "reserve");
  CHECK(step.fallback == std::optional<std::string>("none"));
  CHECK(std::get<usher::Expression>(t.parts[5]).root == usher::Expression::Root::kSagaId);
  CHECK(std::get<usher::Expression>(t.parts[6]).root == usher::Expression::Root::kSagaWorkflow);
  CHECK(std::get<std::string>(t.parts[7]) == " $ $$ c");
  CHECK(parse("plain text").is_literal());
  CHECK(parse("").is_literal());
  CHECK(parse("${input}").whole_value());
  CHECK(parse("${env.HOME:-/root}").whole_value());
  CHECK(std::get<usher::Expression>(parse("${input.x:-{}}").parts[0]).fallback == std::optional<std::string>("{}"));
}

TEST_CASE("rejects malformed expressions with a message naming them") {
  CHECK(parse_error("${input.}") == "empty path segment in \"${input.}\"");
  CHECK(parse_error("${input..a}") == "empty path segment in \"${input..a}\"");
  CHECK(parse_error("${}") == "empty expression \"${}\" (expected e.g. \"${input.seat}\")");
  CHECK(parse_error("${steps.pay}") ==
        "\"${steps.pay}\" must refer to the step's output, e.g. \"${steps.pay.output}\"");
  CHECK(parse_error("${steps}") == "\"${steps}\" needs a step name, e.g. \"${steps.reserve.output}\"");
  CHECK(parse_error("${steps.pay.result.id}") ==
        "expected \"output\" after the step name in \"${steps.pay.result.id}\", e.g. \"${steps.pay.output.result}\"");
  CHECK(parse_error("x ${inputs.seat}") ==
        "unknown root \"inputs\" in \"${inputs.seat}\" (expected input, steps, saga or env)");
  CHECK(parse_error("${saga.name}") == "unknown saga field in \"${saga.name}\" (expected ${saga.id} or ${saga.workflow})");
  CHECK(parse_error("${env}") == "\"${env}\" must name one variable, e.g. \"${env.SEATS_URL}\"");
  CHECK(parse_error("${input.a b}") ==
        "invalid character \" \" in \"${input.a b}\" (names are letters, digits, '_' and '-', separated by '.')");
  CHECK(parse_error("ok ${input.a") == "unterminated expression: \"${\" at offset 3 has no closing '}'");
  CHECK(parse_error("${input.a:-${input.b}}") ==
        "the default in \"${input.a:-${input.b}}\" cannot hold an expression (defaults are plain text)");
  auto r = usher::parse_string_template("abc ${bad}");
  CHECK(std::get<usher::TemplateError>(r).offset == 4);
}

TEST_CASE("renders a whole-value expression with its JSON type") {
  Fixture f;
  auto ctx = f.ctx();
  CHECK(rendered(str("${input.qty}"), ctx) == 3);
  CHECK(rendered(str("${input.user}"), ctx) == Json{{"id", "u1"}});
  CHECK(rendered(str("${input.flag}"), ctx) == false);
  CHECK(rendered(str("${input.none}"), ctx) == nullptr);
  CHECK(rendered(str("${input}"), ctx) == f.input);
  CHECK(rendered(str("${steps.reserve.output.price}"), ctx) == 12.5);
  CHECK(rendered(str("${steps.reserve.output}"), ctx) == f.reserve);
  CHECK(rendered(str("${saga.id}"), ctx) == "0190-abc");
  CHECK(rendered(str("${saga.workflow}"), ctx) == "concert-booking");
}

TEST_CASE("interpolates embedded expressions as text") {
  Fixture f;
  auto ctx = f.ctx();
  CHECK(rendered(str("seat ${input.seat} x${input.qty}"), ctx) == "seat A7 x3");
  CHECK(rendered(str("user=${input.user}"), ctx) == R"(user={"id":"u1"})");
  CHECK(rendered(str("${input.flag}/${input.none}/${steps.reserve.output.price}"), ctx) == "false/null/12.5");
  auto s = usher::render_string(parse("/holds/${steps.reserve.output.holdId}"), ctx);
  REQUIRE(s.is_ok());
  CHECK(s.value() == "/holds/h-9");
}

TEST_CASE("uses the default when the path is missing") {
  Fixture f;
  auto ctx = f.ctx();
  CHECK(rendered(str("${input.count:-1}"), ctx) == 1);
  CHECK(rendered(str("${input.x:-abc}"), ctx) == "abc");
  CHECK(rendered(str("${input.x:-true}"), ctx) == true);
  CHECK(rendered(str("${input.x:-null}"), ctx) == nullptr);
  CHECK(rendered(str("${input.x:-}"), ctx) == "");
  CHECK(rendered(str("${input.x:-[1]}"), ctx) == "[1]");  // only scalars are typed
  CHECK(rendered(str("n=${input.x:-1}"), ctx) == "n=1");
  CHECK(rendered(str("${steps.later.output.id:-none}"), ctx) == "none");
  CHECK(rendered(str("${input.qty:-9}"), ctx) == 3);  // present: the default is not used
}

TEST_CASE("indexes arrays with numeric path segments") {
  Fixture f;
  auto ctx = f.ctx();
  CHECK(rendered(str("${input.items.1.sku}"), ctx) == "y");
  CHECK(rendered(str("${input.items.0}"), ctx) == Json{{"sku", "x"}});
  auto out_of_range = usher::render(str("${input.items.2.sku}"), ctx);
  CHECK(out_of_range.status().message() == "${input.items.2.sku}: input.items has no element 2 (it has 2)");
  auto not_index = usher::render(str("${input.items.first}"), ctx);
  CHECK(not_index.status().message() == "${input.items.first}: input.items is an array; \"first\" is not an index");
}

TEST_CASE("fails with the expression's name when a path is missing and has no default") {
  Fixture f;
  auto ctx = f.ctx();
  auto missing = usher::render(str("${steps.reserve.output.holdID}"), ctx);
  CHECK(missing.status().code() == usher::StatusCode::kInvalidArgument);
  CHECK(missing.status().message() == "${steps.reserve.output.holdID}: step \"reserve\" output has no \"holdID\"");
  CHECK(usher::render(str("id ${input.user.name}"), ctx).status().message() ==
        "${input.user.name}: input.user has no \"name\"");
  CHECK(usher::render(str("${input.seat.row}"), ctx).status().message() ==
        "${input.seat.row}: input.seat is a string, so it has no \"row\"");
  CHECK(usher::render(str("${steps.pay.output.id}"), ctx).status().message() ==
        "${steps.pay.output.id}: step \"pay\" has no output");

  ValueTemplate obj;
  obj.kind = ValueTemplate::Kind::kObject;
  obj.members.emplace_back("ok", str("${input.seat}"));
  obj.members.emplace_back("bad", str("${input.nope}"));
  CHECK(usher::render(obj, ctx).status().message() == "${input.nope}: input has no \"nope\"");
  RenderContext empty;
  CHECK(usher::render(str("${input.a}"), empty).status().message() == "${input.a}: the saga has no input");
}

TEST_CASE("renders objects and arrays of templates") {
  Fixture f;
  ValueTemplate arr;
  arr.kind = ValueTemplate::Kind::kArray;
  arr.elements.push_back(str("${input.qty}"));
  ValueTemplate lit;
  lit.literal = Json{{"k", 1}};
  arr.elements.push_back(lit);
  ValueTemplate obj;
  obj.kind = ValueTemplate::Kind::kObject;
  obj.members.emplace_back("list", arr);
  obj.members.emplace_back("who", str("${input.user.id}"));
  CHECK(rendered(obj, f.ctx()) == Json::parse(R"({"list": [3, {"k": 1}], "who": "u1"})"));
}

TEST_CASE("interpolates strings holding invalid UTF-8 without throwing") {
  Json input = {{"bad", std::string("\xff\xfe")}, {"obj", {{"s", std::string("\xc3")}}}};
  RenderContext ctx;
  ctx.input = &input;
  auto r = usher::render_string(parse("x${input.obj}"), ctx);
  CHECK(r.is_ok());
}

TEST_CASE("renders the output of a step with an unknown outcome as null or its default") {
  Fixture f;
  auto ctx = f.ctx();
  ctx.unknown_output_step = "pay";
  CHECK(rendered(str("${steps.pay.output.paymentId}"), ctx) == nullptr);
  CHECK(rendered(str("${steps.pay.output.paymentId:-none}"), ctx) == "none");
  CHECK(rendered(str("id=${steps.pay.output.paymentId}"), ctx) == "id=null");
  // Other steps are not affected.
  CHECK(usher::render(str("${steps.other.output}"), ctx).status().message() ==
        "${steps.other.output}: step \"other\" has no output");
}

TEST_CASE("an http.path keeps its own text and percent-encodes every value in it: no value can bend the request line") {
  Json input = {{"x", " HTTP/1.1\r\nHost: a\r\n\r\n{}POST /hold"},
                {"up", ".."},
                {"q", "a?b=c#d"},
                {"slash", "//evil.example/x"},
                {"ok", "h-9_A.b~"}};
  RenderContext ctx;
  ctx.input = &input;
  ctx.step_output = [](std::string_view) -> const Json* { return nullptr; };
  auto path = [&](const std::string& t) {
    auto r = usher::render_path(parse(t), ctx);
    REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
    return r.value();
  };
  CHECK(path("/holds/${input.x}") == "/holds/%20HTTP%2F1.1%0D%0AHost%3A%20a%0D%0A%0D%0A%7B%7DPOST%20%2Fhold");
  CHECK(path("/holds/${input.up}/release") == "/holds/%2E%2E/release");
  CHECK(path("/holds/${input.q}") == "/holds/a%3Fb%3Dc%23d");
  CHECK(path("${input.slash}") == "%2F%2Fevil.example%2Fx");
  CHECK(path("/holds/${input.ok}") == "/holds/h-9_A.b~");  // unreserved characters stay
  CHECK(path("/holds/${input.missing:-a b}") == "/holds/a%20b");  // a default is a value too
  // Bytes that are not UTF-8 are encoded byte by byte.
  CHECK(usher::encode_path_segment("\xff\xe9") == "%FF%E9");
}
