// Internals of the workflow loader, shared by definition_loader.cpp (the file
// as a whole: top level, services, defaults, directories) and step_loader.cpp
// (steps: calls, templates, references and the pivot rules).
#pragma once

#include <optional>
#include <string>

#include "model/yaml_reader.h"
#include "usher/definition.h"

namespace usher::loader {

// A `retry:` block as written: each field is optional and is merged over a
// base policy field by field (docs/semantics.md).
struct RetrySpec {
  std::optional<uint32_t> attempts;
  std::optional<Millis> backoff;
  std::optional<double> multiplier;
  std::optional<Millis> max_backoff;
  RetryPolicy over(RetryPolicy base) const;
};

// Reads `retry: {attempts, backoff, multiplier, max_backoff}`; fields with
// errors are reported and left unset.
RetrySpec read_retry(yaml::Reader& reader, const yaml::Field& field, const yaml::Where& where);

// Replaces `${env.X}` parts of a template by their text. An unset (or empty)
// variable takes the expression's default; without one it is an error.
// When `env_only`, any other expression is an error too (service settings are
// fixed at load time). Adjacent text parts are merged.
std::optional<StringTemplate> resolve_env(yaml::Reader& reader, StringTemplate tmpl, SourcePos pos,
                                          const yaml::Where& where, EnvLookup env, bool env_only);

// A service setting: text with `${env…}` substituted now (any other
// expression is an error). nullopt after reporting.
std::optional<std::string> service_text(yaml::Reader& reader, const yaml::Field& f, const yaml::Where& where,
                                        EnvLookup env);

// Reads a service's `http: { url, tls }` block into svc.url and svc.tls
// (http_service_loader.cpp).
void load_http_service(yaml::Reader& reader, const yaml::Field& block, const yaml::Where& where, EnvLookup env,
                       Service& svc);

// Reads `steps:` into def.steps and def.pivot, using def.services, the
// definition-wide defaults (default_timeout, default_retry,
// compensation_retry) and def.input_schema (which `${input.…}` references
// are checked against, see input_references.h) already stored in def.
void load_steps(yaml::Reader& reader, const yaml::Field& steps, Definition& def, EnvLookup env);

}  // namespace usher::loader
