// A saga definition: the parsed, validated, immutable form of one workflow
// YAML file (docs/workflow-format.md). Definitions are shared between sagas with
// std::shared_ptr<const Definition>; a running saga keeps the definition it
// started with even after a newer one is loaded, found by its content hash.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "usher/status.h"

namespace usher {

using Json = nlohmann::json;
using Millis = std::chrono::milliseconds;

// 1-based position in the YAML source; {0,0} when unknown.
struct SourcePos {
  int line = 0;
  int col = 0;
};

// ---- Expressions ------------------------------------------------------------
// `${input.a.b}`, `${steps.NAME.output.x}`, `${saga.id}`, `${saga.workflow}`,
// `${env.X}`, each with an optional `:-default`. Parsed at load time; `env`
// references are resolved at load time too, so rendering is a pure function of
// the saga context.
struct Expression {
  enum class Root { kInput, kStepOutput, kSagaId, kSagaWorkflow, kEnv };
  Root root = Root::kInput;
  std::string step;               // for kStepOutput: the step's name
  std::vector<std::string> path;  // keys (or array indexes as text) below the root
  std::optional<std::string> fallback;  // the text after `:-`, if any
  std::string text;               // the source text, e.g. "${steps.pay.output.paymentId}"
};

// A string that may hold expressions. When the whole string is exactly one
// expression (`whole_value`), rendering keeps the referenced JSON value's type;
// otherwise the parts are concatenated as text.
struct StringTemplate {
  std::vector<std::variant<std::string, Expression>> parts;
  bool whole_value() const { return parts.size() == 1 && std::holds_alternative<Expression>(parts[0]); }
  bool is_literal() const {
    for (const auto& p : parts)
      if (std::holds_alternative<Expression>(p)) return false;
    return true;
  }
};

// A JSON value whose string leaves (not keys) are templates. Subtrees without
// expressions are kept as plain JSON so rendering them is a copy.
struct ValueTemplate {
  enum class Kind { kLiteral, kString, kObject, kArray };
  // Declared, and defaulted below where the type is complete: with an implicit
  // one, clang (with libstdc++) checks whether `members` can be default
  // constructed while ValueTemplate, its own element type, is still incomplete,
  // and refuses the header.
  ValueTemplate();
  Kind kind = Kind::kLiteral;
  Json literal;                                            // kLiteral
  StringTemplate string;                                   // kString
  std::vector<std::pair<std::string, ValueTemplate>> members;  // kObject (in source order)
  std::vector<ValueTemplate> elements;                     // kArray
};
inline ValueTemplate::ValueTemplate() = default;

// ---- Services ---------------------------------------------------------------
enum class Transport { kHttp, kKafka, kLocal };
const char* transport_name(Transport t);

// An https:// service's `tls:` block (docs/workflow-format.md). Paths are as
// the loader resolved them: a relative one is taken from the workflow file's
// directory. The adapter verifies the service's certificate and host name
// against ca_file, or the system's CAs when it is empty.
struct ServiceTls {
  std::string ca_file;    // PEM CA certificates to trust instead of the system's; "" for the system's
  std::string cert_file;  // PEM client certificate (chain) for mutual TLS; "" for none
  std::string key_file;   // PEM private key of cert_file; set exactly when cert_file is
  bool operator==(const ServiceTls&) const = default;
};

struct Service {
  std::string name;
  Transport transport = Transport::kHttp;
  std::string url;          // http: base URL, e.g. "http://127.0.0.1:7101" (env already substituted)
  ServiceTls tls;           // http with an https:// url: how to verify it (empty: the system's CAs)
  std::string brokers;      // kafka: bootstrap servers
  std::string topic;        // kafka: request topic
  std::string reply_topic;  // kafka: reply topic ("usher.replies" when not set)
  SourcePos pos;
};

// ---- Steps ------------------------------------------------------------------
struct RetryPolicy {
  static constexpr uint32_t kUnlimited = 0;
  uint32_t attempts = 3;  // every try counts, the first included; kUnlimited never gives up
  Millis backoff{200};
  double multiplier = 2.0;
  Millis max_backoff{10'000};
  bool unlimited() const { return attempts == kUnlimited; }
};

struct HttpOverride {
  std::string method;   // upper case, e.g. "DELETE"
  StringTemplate path;  // e.g. "/holds/${steps.reserve.output.holdId}"
};

// One call to a service: a step's action or its compensation.
struct CallSpec {
  std::string service;    // key of Definition::services
  std::string operation;  // the part after the dot in `call: service.operation`
  ValueTemplate with;     // the request body ({} when absent)
  std::optional<HttpOverride> http;
  Millis timeout{5'000};  // per attempt, defaults applied
  RetryPolicy retry;      // defaults applied (compensation_retry for compensations)
  // Indexes into Definition::redact of the secrets this call's templates read:
  // after a restart those values are gone, and the call cannot be sent.
  std::vector<size_t> reads_redacted;
  SourcePos pos;
};

enum class StepType { kCompensatable, kPivot, kRetriable };
const char* step_type_name(StepType t);

struct Step {
  std::string name;
  StepType type = StepType::kCompensatable;
  CallSpec action;
  std::optional<CallSpec> compensate;  // only compensatable steps have one
  SourcePos pos;
};

// ---- Secrets -----------------------------------------------------------------
// One `redact:` entry: a JSON pointer into the start payload whose value is held
// in memory only, never written to the saga log nor shown by the API and CLI.
struct Redaction {
  std::string pointer;              // as written, e.g. "/card/number"
  std::vector<std::string> tokens;  // unescaped reference tokens: {"card", "number"}
  SourcePos pos;
};

// ---- The definition ---------------------------------------------------------
struct Definition {
  std::string name;  // `saga:`
  int64_t version = 1;
  std::string description;
  std::map<std::string, Service> services;
  std::optional<Json> input_schema;   // JSON Schema of the start payload
  std::vector<Redaction> redact;      // secrets in the start payload
  std::optional<Millis> timeout;      // whole-saga deadline; applies until the pivot succeeds
  Millis default_timeout{5'000};
  RetryPolicy default_retry;          // {3, 200ms, x2, 10s}
  RetryPolicy compensation_retry{10, Millis{1'000}, 2.0, Millis{60'000}};
  std::vector<Step> steps;
  std::optional<size_t> pivot;        // index into steps

  std::string file;    // where it was read from ("<string>" when not from a file)
  std::string source;  // the YAML text, stored in the log so a saga can be replayed
  std::string hash;    // hex SHA-256 of `source`

  // Index of the step with this name, or nullopt.
  std::optional<size_t> step_index(std::string_view step_name) const;
};

using DefinitionPtr = std::shared_ptr<const Definition>;

// ---- Loading ----------------------------------------------------------------
// One problem found while loading: "file:line:col: message".
struct Diagnostic {
  std::string file;
  SourcePos pos;
  std::string message;
  std::string to_string() const;
};

struct LoadResult {
  DefinitionPtr definition;          // set when diagnostics is empty
  std::vector<Diagnostic> diagnostics;
  bool ok() const { return definition != nullptr; }
};

// Environment lookup used for `${env.X}`; the default reads the process environment.
using EnvLookup = std::optional<std::string> (*)(const std::string& name);
std::optional<std::string> process_env(const std::string& name);

// Parses and validates one workflow. Never throws: every problem is a Diagnostic.
LoadResult load_definition(const std::string& source, const std::string& file_name,
                           EnvLookup env = &process_env);
LoadResult load_definition_file(const std::string& path, EnvLookup env = &process_env);

// Loads every *.yaml / *.yml file in a directory (sorted by name), reporting
// every bad file rather than stopping at the first.
struct DirectoryLoad {
  std::vector<DefinitionPtr> definitions;
  std::vector<Diagnostic> diagnostics;
};
DirectoryLoad load_definition_dir(const std::string& dir, EnvLookup env = &process_env);

}  // namespace usher
