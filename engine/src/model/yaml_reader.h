// Reading yaml-cpp nodes for the workflow loader: every accessor reports what
// is wrong as a Diagnostic at the node's 1-based position and returns nullopt,
// so the loader can keep going and collect every problem in a file. Nothing
// here throws: yaml-cpp is only asked questions that cannot fail (type tests,
// Scalar(), Tag(), Mark(), iteration).
#pragma once

#include <yaml-cpp/yaml.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "usher/definition.h"

namespace usher::yaml {

// The node's position, 1-based; {0,0} for nodes yaml-cpp made up (e.g. missing values).
SourcePos position(const YAML::Node& node);

// Who a message is about and which field: `step "pay": invalid duration … for "compensate.timeout"`.
struct Where {
  std::string owner;  // `step "pay"`, `service "seats"`, "" for the top level
  std::string path;   // dotted path below the owner, "" for the owner itself

  Where field(std::string_view name) const;
  // `step "pay": ` (or "" at the top level).
  std::string prefix() const;
  // The path quoted for messages, e.g. "\"compensate.timeout\"".
  std::string quoted_path() const;
};

struct Field {
  std::string key;
  YAML::Node key_node;
  YAML::Node value;
  SourcePos key_pos;
  // Where to point at the value: yaml-cpp gives an empty value the position of
  // whatever follows it, so an empty value points at its key instead.
  SourcePos pos() const;
  bool empty() const { return value.IsNull(); }
};

// The fields of one mapping, in source order.
struct Fields {
  SourcePos pos;
  std::vector<Field> fields;
  const Field* get(std::string_view key) const;
};

class Reader {
 public:
  Reader(std::string file, std::vector<Diagnostic>& out) : file_(std::move(file)), out_(out) {}

  void error(SourcePos pos, const Where& where, const std::string& message);
  size_t error_count() const { return errors_; }
  const std::string& file() const { return file_; }

  // The fields of a mapping. Reports a node that is not a mapping ("expected
  // <expected>"), keys that are not plain strings, duplicate keys and, when
  // `allowed` is given, unknown keys with a did-you-mean; such fields are left out.
  std::optional<Fields> map(const YAML::Node& node, SourcePos pos, const Where& where, std::string_view expected,
                            const std::vector<std::string>* allowed);

  // A non-empty scalar's text, whatever its YAML type (names like `404` are text too).
  std::optional<std::string> text(const Field& f, const Where& where);
  // A plain integer in [min, max].
  std::optional<int64_t> integer(const Field& f, const Where& where, int64_t min, int64_t max);
  // A plain number >= min.
  std::optional<double> number(const Field& f, const Where& where, double min);
  // A duration ("5s"); zero only when allow_zero.
  std::optional<Millis> duration(const Field& f, const Where& where, bool allow_zero);

  // Any YAML value as JSON (core schema typing); nullopt after reporting.
  std::optional<Json> json(const YAML::Node& node, SourcePos pos, const Where& where);
  // One scalar as JSON.
  std::optional<Json> scalar(const YAML::Node& node, SourcePos pos, const Where& where);

  // Guards against documents that nest deeper than any workflow needs and
  // against aliases (which yaml-cpp shares, and may even make cyclic) that
  // expand exponentially: callers walking a tree use these.
  static constexpr int kMaxDepth = 64;
  bool enter(int depth, SourcePos pos, const Where& where);

 private:
  std::optional<Json> json_at(const YAML::Node& node, SourcePos pos, const Where& where, int depth);

  std::string file_;
  std::vector<Diagnostic>& out_;
  size_t errors_ = 0;
  size_t node_budget_ = 1'000'000;
  bool budget_reported_ = false;
};

// True for a plain (untagged, unquoted) scalar, the only kind the core schema types.
bool is_plain(const YAML::Node& node);

}  // namespace usher::yaml
