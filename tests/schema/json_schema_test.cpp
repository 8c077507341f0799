// Behaviour of the JSON Schema validator: exact pointers and messages, the
// draft-7 details that are easy to get wrong, and hostile input.
#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "model/json_schema.h"

// Shows violation lists in failed CHECKs.
namespace doctest {
template <>
struct StringMaker<std::vector<std::pair<std::string, std::string>>> {
  static String convert(const std::vector<std::pair<std::string, std::string>>& violations) {
    std::string out = "[";
    for (const auto& [pointer, message] : violations) out += "{\"" + pointer + "\", \"" + message + "\"} ";
    return (out + "]").c_str();
  }
};
}  // namespace doctest

namespace usher {
namespace {

using Violations = std::vector<std::pair<std::string, std::string>>;

JsonSchema compile_ok(const Json& schema) {
  auto r = JsonSchema::compile(schema);
  REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
  return std::move(r).value();
}

Violations check(const JsonSchema& schema, const Json& instance) {
  Violations out;
  for (const auto& v : schema.validate(instance)) out.emplace_back(v.pointer, v.message);
  return out;
}

Violations check(const Json& schema, const Json& instance) { return check(compile_ok(schema), instance); }

// The message of a schema that must be refused.
std::string refusal(const Json& schema) {
  auto r = JsonSchema::compile(schema);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().code() == StatusCode::kInvalidArgument);
  return r.status().message();
}

const Json kBooking = Json::parse(R"({
  "type": "object",
  "required": ["userId", "concertId", "seat", "amount"],
  "properties": {
    "userId": {"type": "string", "minLength": 1},
    "concertId": {"type": "string"},
    "seat": {"type": "integer", "minimum": 1, "maximum": 500},
    "amount": {"type": "integer", "minimum": 1}
  }
})");

TEST_CASE("accepts a valid instance with no violations") {
  CHECK(check(kBooking, Json::parse(R"({"userId":"u1","concertId":"c1","seat":12,"amount":50})")).empty());
}

TEST_CASE("reports every violation with its JSON pointer") {
  const Violations expected = {
      {"", "required property \"userId\" is missing"},
      {"", "required property \"concertId\" is missing"},
      {"/amount", "must be >= 1"},
      {"/seat", "must be of type integer, not string"},
  };
  CHECK(check(kBooking, Json::parse(R"({"seat":"A12","amount":0})")) == expected);
}

TEST_CASE("orders violations parent first and array items by index") {
  const Json schema = Json::parse(R"({"type":"array","maxItems":1,"items":{"type":"integer"}})");
  const Violations expected = {
      {"", "must have at most 1 items"},
      {"/2", "must be of type integer, not string"},
      {"/10", "must be of type integer, not null"},
  };
  CHECK(check(schema, Json::parse(R"([1, 2, "x", 4, 5, 6, 7, 8, 9, 10, null])")) == expected);
}

TEST_CASE("escapes ~ and / in instance pointers") {
  const Json schema = Json::parse(R"({"additionalProperties": {"type": "string"}})");
  const Violations expected = {{"/a~1b", "must be of type string, not integer"},
                               {"/m~0n", "must be of type string, not boolean"}};
  CHECK(check(schema, Json::parse(R"({"a/b": 1, "m~n": true, "ok": "x"})")) == expected);
  CHECK(SchemaViolation{"", "must be >= 1"}.to_string() == "/: must be >= 1");
  CHECK(SchemaViolation{"/amount", "must be >= 1"}.to_string() == "/amount: must be >= 1");
}

TEST_CASE("names every type of a type array and the instance's type") {
  const Json schema = Json::parse(R"({"type": ["integer", "string", "null"]})");
  CHECK(check(schema, Json(1.5)) == Violations{{"", "must be of type integer, string or null, not number"}});
  CHECK(check(schema, Json::object()) == Violations{{"", "must be of type integer, string or null, not object"}});
  CHECK(check(schema, Json(3)).empty());
}

TEST_CASE("treats 1.0 as an integer and 1 as equal to 1.0") {
  CHECK(check(Json::parse(R"({"type":"integer"})"), Json::parse("1.0")).empty());
  CHECK(check(Json::parse(R"({"type":"integer"})"), Json::parse("1e300")).empty());
  CHECK(check(Json::parse(R"({"const": 1})"), Json::parse("1.0")).empty());
  CHECK(check(Json::parse(R"({"const": {"a": [1, -2]}})"), Json::parse(R"({"a": [1.0, -2.0]})")).empty());
  CHECK(check(Json::parse(R"({"enum": [1, "one"]})"), Json::parse("2")) ==
        Violations{{"", "must be one of [1,\"one\"]"}});
  CHECK(check(Json::parse(R"({"const": {"a": 1}})"), Json::parse(R"({"a": 1, "b": 2})")) ==
        Violations{{"", "must be equal to {\"a\":1}"}});
  CHECK(check(Json::parse(R"({"const": false})"), Json(0)) == Violations{{"", "must be equal to false"}});
}

TEST_CASE("compares numbers exactly across integer and floating point") {
  // 2^53 + 1 is not representable as a double; a cast would make it equal to 2^53.
  CHECK(check(Json::parse(R"({"maximum": 9007199254740992.0})"), Json(std::int64_t{9007199254740993})) ==
        Violations{{"", "must be <= 9.007199254740992e+15"}});
  CHECK(check(Json::parse(R"({"exclusiveMaximum": 18446744073709551616.0})"),
              Json(std::uint64_t{18446744073709551615u}))
            .empty());
  CHECK(check(Json::parse(R"({"minimum": -1})"), Json(std::uint64_t{18446744073709551615u})).empty());
  CHECK(check(Json::parse(R"({"exclusiveMinimum": 0})"), Json(0.0)) == Violations{{"", "must be > 0"}});
  CHECK(check(Json::parse(R"({"exclusiveMaximum": 1.5})"), Json(1.5)) == Violations{{"", "must be < 1.5"}});
  CHECK(check(Json::parse(R"({"minimum": 1e308})"), Json::parse("1e308")).empty());
}

TEST_CASE("counts string length in code points, not bytes") {
  CHECK(check(Json::parse(R"({"maxLength": 5})"), Json("h\u00e9llo")).empty());
  CHECK(check(Json::parse(R"({"maxLength": 1})"), Json("\U0001F3AB")).empty());
  CHECK(check(Json::parse(R"({"minLength": 3})"), Json("\u65e5\u672c")) ==
        Violations{{"", "must be at least 3 characters long"}});
  CHECK(check(Json::parse(R"({"maxLength": 2})"), Json("abc")) ==
        Violations{{"", "must be at most 2 characters long"}});
}

TEST_CASE("matches patterns anywhere in the string, on code points") {
  CHECK(check(Json::parse(R"({"pattern": "b+"})"), Json("abba")).empty());
  CHECK(check(Json::parse(R"({"pattern": "^[A-Z]\\d{2}$"})"), Json("A123")) ==
        Violations{{"", "must match the pattern \"^[A-Z]\\\\d{2}$\""}});
  CHECK(check(Json::parse(R"({"pattern": "^.$"})"), Json("\u00e9")).empty());
}

TEST_CASE("refuses properties not allowed by additionalProperties at the object") {
  const Json schema = Json::parse(R"({
    "properties": {"seat": {}},
    "patternProperties": {"^x-": {"type": "string"}},
    "additionalProperties": false
  })");
  const Violations expected = {{"", "property \"price\" is not allowed"},
                               {"", "property \"zone\" is not allowed"},
                               {"/x-b", "must be of type string, not integer"}};
  CHECK(check(schema, Json::parse(R"({"seat": 1, "x-a": "ok", "x-b": 2, "price": 3, "zone": "A"})")) == expected);
}

TEST_CASE("checks tuple items and refuses extra items once when additionalItems is false") {
  const Json schema = Json::parse(R"({"items": [{"type": "string"}, {"type": "integer"}], "additionalItems": false})");
  CHECK(check(schema, Json::parse(R"(["a", 1])")).empty());
  const Violations expected = {{"", "must have at most 2 items (additionalItems is false)"},
                               {"/1", "must be of type integer, not string"}};
  CHECK(check(schema, Json::parse(R"(["a", "b", 3, 4])")) == expected);
  const Json rest = Json::parse(R"({"items": [{}], "additionalItems": {"type": "integer"}})");
  CHECK(check(rest, Json::parse(R"(["a", 1, "c"])")) == Violations{{"/2", "must be of type integer, not string"}});
}

TEST_CASE("summarises anyOf, oneOf and not failures at their location") {
  const Json schema = Json::parse(R"({"properties": {
    "any": {"anyOf": [{"type": "string"}, {"minimum": 10}]},
    "one": {"oneOf": [{"type": "integer"}, {"minimum": 2}]},
    "none": {"oneOf": [{"type": "string"}, {"type": "null"}]},
    "not": {"not": {"type": "integer"}}
  }})");
  CHECK(check(schema, Json::parse(R"({"any": "x", "one": 1, "none": "s", "not": "s"})")).empty());
  const Violations expected = {
      {"/any", "must match at least one schema of anyOf"},
      {"/none", "must match exactly one schema of oneOf (matched 0)"},
      {"/not", "must not match the schema of not"},
      {"/one", "must match exactly one schema of oneOf (matched 2)"},
  };
  CHECK(check(schema, Json::parse(R"({"any": 3, "one": 3, "none": 1, "not": 1})")) == expected);
}

TEST_CASE("reports the violations of every allOf branch") {
  const Json schema = Json::parse(R"({"allOf": [{"required": ["a"]}, {"properties": {"b": {"maximum": 3}}}]})");
  const Violations expected = {{"", "required property \"a\" is missing"}, {"/b", "must be <= 3"}};
  CHECK(check(schema, Json::parse(R"({"b": 4})")) == expected);
}

TEST_CASE("applies boolean schemas") {
  CHECK(check(Json(true), Json::parse(R"({"anything": [1]})")).empty());
  CHECK(check(Json(false), Json(1)) == Violations{{"", "is not allowed here (the schema is false)"}});
  CHECK(check(Json::parse(R"({"properties": {"old": false}})"), Json::parse(R"({"old": 1})")) ==
        Violations{{"/old", "is not allowed here (the schema is false)"}});
}

TEST_CASE("resolves local refs, escaped and percent-encoded") {
  const Json schema = Json::parse(R"({
    "definitions": {"positive": {"type": "integer", "minimum": 1}, "a/b~c d": {"type": "string"}},
    "properties": {
      "amount": {"$ref": "#/definitions/positive", "maximum": 0},
      "name": {"$ref": "#/definitions/a~1b~0c%20d"},
      "copy": {"$ref": "#/properties/amount"}
    }
  })");
  // "maximum" beside $ref is ignored, as draft 7 says.
  CHECK(check(schema, Json::parse(R"({"amount": 5, "name": "n", "copy": 2})")).empty());
  const Violations expected = {{"/amount", "must be >= 1"}, {"/copy", "must be of type integer, not string"},
                               {"/name", "must be of type string, not integer"}};
  CHECK(check(schema, Json::parse(R"({"amount": 0, "name": 1, "copy": "x"})")) == expected);
}

TEST_CASE("follows recursive refs as deep as the instance goes") {
  const Json tree = Json::parse(R"({
    "type": "object", "required": ["value"],
    "properties": {"value": {"type": "integer"}, "children": {"type": "array", "items": {"$ref": "#"}}}
  })");
  CHECK(check(tree, Json::parse(R"({"value": 1, "children": [{"value": 2, "children": [{"value": 3}]}]})")).empty());
  CHECK(check(tree, Json::parse(R"({"value": 1, "children": [{"value": 2, "children": [{}]}]})")) ==
        Violations{{"/children/0/children/0", "required property \"value\" is missing"}});
}

TEST_CASE("refuses a $ref cycle that never descends into the instance") {
  CHECK(refusal(Json::parse(R"({"$ref": "#"})")).find("$ref cycle") != std::string::npos);
  CHECK(refusal(Json::parse(R"({"definitions": {"a": {"$ref": "#/definitions/b"}, "b": {"$ref": "#/definitions/a"}},
                                "properties": {"x": {"$ref": "#/definitions/a"}}})"))
            .find("$ref cycle") != std::string::npos);
  CHECK(refusal(Json::parse(R"({"anyOf": [{"not": {"$ref": "#"}}]})")).find("$ref cycle") != std::string::npos);
  // Through `properties` the recursion consumes the instance, so it is fine.
  CHECK(JsonSchema::compile(Json::parse(R"({"properties": {"next": {"$ref": "#"}}})")).is_ok());
}

TEST_CASE("refuses schemas with keywords of the wrong type, naming where") {
  CHECK(refusal(Json(3)) == "schema at /: a schema must be an object or a boolean");
  CHECK(refusal(Json::parse(R"({"properties": {"a": {"minimum": "1"}}})")) ==
        "schema at /properties/a/minimum: must be a number");
  CHECK(refusal(Json::parse(R"({"type": "float"})")) ==
        "schema at /type: unknown type \"float\" (expected null, boolean, object, array, number, string or integer)");
  CHECK(refusal(Json::parse(R"({"maxLength": -1})")) == "schema at /maxLength: must be a non-negative integer");
  CHECK(refusal(Json::parse(R"({"minItems": 1.5})")) == "schema at /minItems: must be a non-negative integer");
  CHECK(refusal(Json::parse(R"({"required": ["a", 1]})")) == "schema at /required: must be an array of strings");
  CHECK(refusal(Json::parse(R"({"anyOf": []})")) == "schema at /anyOf: must be a non-empty array of schemas");
  CHECK(refusal(Json::parse(R"({"items": [{}, 2]})")) == "schema at /items/1: a schema must be an object or a boolean");
  CHECK(refusal(Json::parse(R"({"enum": 1})")) == "schema at /enum: must be an array");
  CHECK(refusal(Json::parse(R"({"definitions": {"x": {"not": 1}}})")) ==
        "schema at /definitions/x/not: a schema must be an object or a boolean");
  CHECK(JsonSchema::compile(Json::parse(R"({"minLength": 2.0, "format": 12, "title": []})")).is_ok());
}

TEST_CASE("refuses patterns that do not compile or are too large") {
  CHECK(refusal(Json::parse(R"({"pattern": "(a"})")).find("schema at /pattern: pattern \"(a\" is not a supported") == 0);
  CHECK(refusal(Json::parse(R"({"patternProperties": {"[": {}}})")).find("schema at /patternProperties") == 0);
  CHECK(refusal(Json::parse(R"({"pattern": "(a)\\1"})")).find("is not a supported") != std::string::npos);
  CHECK(refusal(Json::parse(R"({"pattern": "a{5000}"})")) == "schema at /pattern: pattern \"a{5000}\" repeats more than 1000 times");
  CHECK(refusal(Json::parse(R"j({"pattern": "((a{100}){100})"})j")).find("too large") != std::string::npos);
  CHECK(refusal(Json(Json::object({{"pattern", std::string(100, '(') + std::string(100, ')')}})))
            .find("nests groups more than 32 deep") != std::string::npos);
}

TEST_CASE("refuses refs it cannot resolve") {
  CHECK(refusal(Json::parse(R"({"$ref": "http://example.com/s.json"})")) ==
        "schema at /$ref: only local references starting with '#' are supported, not \"http://example.com/s.json\"");
  CHECK(refusal(Json::parse(R"({"$ref": "#/definitions/missing"})")) ==
        "schema at /$ref: cannot resolve \"#/definitions/missing\": no member \"definitions\"");
  CHECK(refusal(Json::parse(R"({"items": [{}], "properties": {"a": {"$ref": "#/items/01"}}})")).find("no item") !=
        std::string::npos);
  CHECK(refusal(Json::parse(R"({"properties": {"a": {"$ref": "#/x%2"}}})")).find("bad percent-encoding") !=
        std::string::npos);
  CHECK(refusal(Json::parse(R"({"properties": {"a": {"$ref": "#/required"}}, "required": []})"))
            .find("a schema must be an object or a boolean") != std::string::npos);
}

TEST_CASE("survives hostile instances without crashing") {
  SUBCASE("nesting deeper than the validator goes") {
    Json deep = Json::array();
    for (int i = 0; i < 100000; ++i) {
      Json outer = Json::array();
      outer.push_back(std::move(deep));
      deep = std::move(outer);
    }
    const auto violations = check(Json::parse(R"({"items": {"$ref": "#"}})"), deep);
    REQUIRE(violations.size() == 1);
    CHECK(violations[0].second.find("is nested too deeply for the validator") == 0);
    CHECK(check(Json::parse(R"({"type": "array"})"), deep).empty());
  }
  SUBCASE("strings that are not UTF-8") {
    const Json schema = Json::parse(R"({"maxLength": 2, "pattern": "^b", "enum": ["a"]})");
    const auto violations = check(schema, Json(std::string("a\xff\xc3", 3)));
    // Three code points: 'a' and two malformed bytes. Messages must not throw either.
    CHECK(violations.size() == 3);
    CHECK(check(Json::parse(R"({"additionalProperties": false})"), Json({{std::string("\xfe"), 1}})) ==
          Violations{{"", "property \"\xEF\xBF\xBD\" is not allowed"}});
  }
  SUBCASE("long strings against alternations") {
    const std::string text(200000, 'a');
    CHECK(check(Json::parse(R"({"pattern": "^(a|b)*$"})"), Json(text)).empty());
    CHECK(check(Json::parse(R"({"pattern": "^(a|aa)*c"})"), Json(text)).size() == 1);
  }
  SUBCASE("numbers at the edges") {
    const Json schema = Json::parse(R"({"type": "integer", "minimum": -1e308, "maximum": 1e308})");
    CHECK(check(schema, Json(std::numeric_limits<double>::quiet_NaN())).size() == 3);
    CHECK(check(schema, Json(std::numeric_limits<double>::infinity())).size() == 2);
    CHECK(check(schema, Json(std::numeric_limits<std::int64_t>::min())).empty());
  }
  SUBCASE("deep schemas are refused, not followed") {
    Json deep = Json::object();
    for (int i = 0; i < 10000; ++i) {
      Json outer = Json::object();
      outer["not"] = std::move(deep);
      deep = std::move(outer);
    }
    CHECK(refusal(deep).find("is nested more than 200 schemas deep") != std::string::npos);
    Json deep_const = Json::array();
    for (int i = 0; i < 10000; ++i) {
      Json outer = Json::array();
      outer.push_back(std::move(deep_const));
      deep_const = std::move(outer);
    }
    Json schema = Json::object();
    schema["const"] = std::move(deep_const);
    CHECK(refusal(schema) == "schema at /const: is nested too deeply");
  }
}

TEST_CASE("keeps working after a move") {
  JsonSchema a = compile_ok(Json::parse(R"({"type": "string"})"));
  JsonSchema b = std::move(a);
  CHECK(check(b, Json(1)) == Violations{{"", "must be of type string, not integer"}});
  JsonSchema c = compile_ok(Json(true));
  c = std::move(b);
  CHECK(check(c, Json("s")).empty());
}

}  // namespace
}  // namespace usher
