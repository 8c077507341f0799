// The compiled form of a JSON Schema, shared by the compiler
// (json_schema_compiler.cpp), the value and pattern helpers
// (json_schema_values.cpp) and the validator (json_schema.cpp). Internal to
// usher_model; the public interface is json_schema.h.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "model/json_schema.h"

namespace usher::schema {


// Schema documents nested deeper than this are refused; the compiler recurses
// once per level.
constexpr int kMaxSchemaDepth = 200;
// Nested checks while validating (one per subschema applied); deeper instances
// get a violation instead of exhausting the stack.
constexpr int kMaxValidationDepth = 400;
// std::regex builds its automaton by recursion over group nesting, copies the
// operand of {n,m} n..m times and follows epsilon chains recursively while
// matching; these bounds keep all three far from the stack limit.
constexpr std::size_t kMaxPatternNesting = 32;
constexpr std::uint64_t kMaxPatternRepeat = 1000;
constexpr std::uint64_t kMaxPatternWeight = 4000;

static_assert(sizeof(wchar_t) == 4, "patterns are matched on code points held in wchar_t");

enum TypeBit : unsigned {
  kTypeNull = 1,
  kTypeBoolean = 2,
  kTypeObject = 4,
  kTypeArray = 8,
  kTypeNumber = 16,
  kTypeString = 32,
  kTypeInteger = 64,
};


struct Pattern {
  std::string source;
  std::wregex regex;
};

struct Node {
  bool reject_all = false;  // the boolean schema `false`
  int ref = -1;             // a $ref node has no other keywords
  unsigned types = 0;       // TypeBit set; 0 when there is no `type`
  std::string type_message;
  std::vector<std::pair<std::string, int>> properties;  // sorted by name
  std::vector<std::pair<Pattern, int>> pattern_properties;
  int additional_properties = -1;
  std::vector<std::string> required;
  std::optional<Json> const_value;
  std::string const_message;
  std::optional<std::vector<Json>> enum_values;
  std::string enum_message;
  int items = -1;                        // `items` as one schema for every item
  std::optional<std::vector<int>> tuple;  // `items` as an array of schemas
  int additional_items = -1;
  std::optional<Json> minimum, maximum, exclusive_minimum, exclusive_maximum;
  std::optional<std::uint64_t> min_length, max_length, min_items, max_items;
  std::optional<Pattern> pattern;
  std::vector<int> all_of, any_of, one_of;
  int not_schema = -1;
};


// Compiles `root` into `nodes` (node `root_index` is the whole schema).
// kInvalidArgument says where the schema is wrong.
Status compile_tree(const Json& root, std::vector<Node>& nodes, int& root_index);

// ---- Values (json_schema_values.cpp) ----------------------------------------------
// Decodes UTF-8 leniently: a malformed byte becomes one code point.
void decode_utf8(std::string_view s, std::wstring& out);
std::uint64_t count_code_points(std::string_view s);
// A finite double with no fractional part (an "integer" in draft 7).
bool is_integral(double d);
// Exact comparison across int64, uint64 and double.
std::partial_ordering compare_numbers(const Json& a, const Json& b);
// Deep equality in which 1 == 1.0.
bool json_equal(const Json& a, const Json& b);
bool deeper_than(const Json& v, int limit);
// JSON text for messages; never throws, even on strings that are not UTF-8.
std::string quote(const Json& v);
std::string quote(const std::string& s);
const char* type_name(const Json& v);
bool has_type(unsigned types, const Json& v);
// Appends a JSON pointer token, escaping '~' and '/'.
void append_escaped(std::string& out, std::string_view token);

// ---- Patterns (json_schema_values.cpp) --------------------------------------------
// Why a pattern would build too large an automaton, or nullopt.
std::optional<std::string> pattern_too_complex(std::wstring_view p);
bool pattern_matches(const Pattern& pattern, const std::wstring& text);

}  // namespace usher::schema
