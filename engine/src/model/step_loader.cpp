// Steps of a workflow: their calls, request templates, references between
// steps and the ordering rules of a saga (compensatable steps, then at most
// one pivot, then retriable steps).
#include <algorithm>

#include "model/expression.h"
#include "model/input_references.h"
#include "model/loader.h"
#include "model/suggest.h"

namespace usher::loader {
namespace {

using yaml::Field;
using yaml::Fields;
using yaml::Reader;
using yaml::Where;

const std::vector<std::string> kStepFields = {"name", "type", "call", "with", "compensate", "http", "timeout", "retry"};
const std::vector<std::string> kCompensateFields = {"call", "with", "http", "timeout", "retry"};
const std::vector<std::string> kHttpFields = {"method", "path"};
const std::vector<std::string> kStepTypes = {"compensatable", "pivot", "retriable"};
const std::vector<std::string> kMethods = {"GET", "POST", "PUT", "PATCH", "DELETE"};

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

bool is_step_name(std::string_view s) {
  return !s.empty() && s.size() <= 128 && std::all_of(s.begin(), s.end(), is_name_char);
}

// An operation becomes a URL path segment and a Kafka header, so it is kept
// to characters that need no escaping in either.
bool is_operation(std::string_view s) {
  return !s.empty() && s.size() <= 256 &&
         std::all_of(s.begin(), s.end(), [](char c) { return is_name_char(c) || c == '.' || c == '/'; });
}

// Which steps an expression may name: those before the step being read and,
// inside its compensate block, the step itself.
struct Scope {
  const std::vector<std::string>& names;  // every step's name in order ("" when it has none)
  size_t step;
  bool include_self;
};

// A step action or compensation as written, before defaults are applied.
struct RawCall {
  CallSpec spec;
  std::optional<Millis> timeout;
  RetrySpec retry;
};

class StepReader {
 public:
  StepReader(Reader& reader, const Definition& def, EnvLookup env) : reader_(reader), def_(def), env_(env) {}

  std::optional<RawCall> call(const Fields& fields, const Where& where, const Scope& scope);

 private:
  std::optional<StringTemplate> string_template(const std::string& text, SourcePos pos, const Where& where,
                                                const Scope& scope);
  std::optional<ValueTemplate> value_template(const YAML::Node& node, SourcePos pos, const Where& where,
                                              const Scope& scope, int depth);
  bool check_references(const StringTemplate& tmpl, SourcePos pos, const Where& where, const Scope& scope);
  std::optional<HttpOverride> http(const Field& field, const Where& where, const Scope& scope,
                                   const CallSpec& spec);

  Reader& reader_;
  const Definition& def_;
  EnvLookup env_;
};

std::optional<StringTemplate> StepReader::string_template(const std::string& text, SourcePos pos, const Where& where,
                                                          const Scope& scope) {
  auto parsed = parse_string_template(text);
  if (auto* err = std::get_if<TemplateError>(&parsed)) {
    reader_.error(pos, where, "invalid expression in " + where.quoted_path() + ": " + err->message);
    return std::nullopt;
  }
  auto resolved = resolve_env(reader_, std::get<StringTemplate>(std::move(parsed)), pos, where, env_, false);
  if (!resolved || !check_references(*resolved, pos, where, scope)) return std::nullopt;
  return resolved;
}

bool StepReader::check_references(const StringTemplate& tmpl, SourcePos pos, const Where& where, const Scope& scope) {
  bool ok = true;
  const std::string& self = scope.names[scope.step];
  for (const auto& part : tmpl.parts) {
    const auto* e = std::get_if<Expression>(&part);
    if (e != nullptr && e->root == Expression::Root::kInput && def_.input_schema) {
      // A `:-default` does not excuse a typo: the default would be sent every time.
      if (auto problem = undeclared_input_property(*def_.input_schema, e->path)) {
        reader_.error(pos, where, e->text + ": " + *problem);
        ok = false;
      }
      continue;
    }
    if (e == nullptr || e->root != Expression::Root::kStepOutput) continue;
    auto it = std::find(scope.names.begin(), scope.names.end(), e->step);
    size_t index = static_cast<size_t>(it - scope.names.begin());
    if (it == scope.names.end()) {
      std::vector<std::string> visible(scope.names.begin(),
                                       scope.names.begin() + static_cast<long>(scope.step + (scope.include_self ? 1 : 0)));
      reader_.error(pos, where, "unknown step \"" + e->step + "\" in \"" + e->text + "\"" + did_you_mean(e->step, visible));
      ok = false;
    } else if (index > scope.step) {
      reader_.error(pos, where, "\"" + e->text + "\" refers to step \"" + e->step + "\", which runs after \"" + self + "\"");
      ok = false;
    } else if (index == scope.step && !scope.include_self) {
      reader_.error(pos, where, "\"" + e->text + "\" refers to step \"" + self +
                                    "\" itself; a step's own output can only be used in its compensate block");
      ok = false;
    }
  }
  return ok;
}

std::optional<ValueTemplate> StepReader::value_template(const YAML::Node& node, SourcePos pos, const Where& where,
                                                        const Scope& scope, int depth) {
  if (!reader_.enter(depth, pos, where)) return std::nullopt;
  SourcePos p = yaml::position(node);
  if (p.line == 0 || node.IsNull()) p = pos;
  ValueTemplate out;
  if (node.IsMap()) {
    auto fields = reader_.map(node, p, where, "a mapping", nullptr);
    if (!fields) return std::nullopt;
    bool ok = true;
    bool literal = true;
    for (const auto& f : fields->fields) {
      auto member = value_template(f.value, f.pos(), where.field(f.key), scope, depth + 1);
      if (!member) {
        ok = false;
        continue;
      }
      literal = literal && member->kind == ValueTemplate::Kind::kLiteral;
      out.members.emplace_back(f.key, std::move(*member));
    }
    if (!ok) return std::nullopt;
    out.kind = ValueTemplate::Kind::kObject;
    if (literal) {
      // Nothing to render: keep the subtree as plain JSON so rendering is a copy.
      out.kind = ValueTemplate::Kind::kLiteral;
      out.literal = Json::object();
      for (auto& [key, member] : out.members) out.literal[key] = std::move(member.literal);
      out.members.clear();
    }
    return out;
  }
  if (node.IsSequence()) {
    bool ok = true;
    bool literal = true;
    size_t index = 0;
    for (auto it = node.begin(); it != node.end(); ++it, ++index) {
      auto element = value_template(*it, p, where.field(std::to_string(index)), scope, depth + 1);
      if (!element) {
        ok = false;
        continue;
      }
      literal = literal && element->kind == ValueTemplate::Kind::kLiteral;
      out.elements.push_back(std::move(*element));
    }
    if (!ok) return std::nullopt;
    out.kind = ValueTemplate::Kind::kArray;
    if (literal) {
      out.kind = ValueTemplate::Kind::kLiteral;
      out.literal = Json::array();
      for (auto& element : out.elements) out.literal.push_back(std::move(element.literal));
      out.elements.clear();
    }
    return out;
  }
  auto scalar = reader_.scalar(node, p, where);
  if (!scalar) return std::nullopt;
  if (!scalar->is_string() || scalar->get_ref<const std::string&>().find("${") == std::string::npos) {
    out.literal = std::move(*scalar);
    return out;
  }
  auto tmpl = string_template(scalar->get<std::string>(), p, where, scope);
  if (!tmpl) return std::nullopt;
  if (tmpl->is_literal()) {
    out.literal = std::get<std::string>(tmpl->parts[0]);
    return out;
  }
  out.kind = ValueTemplate::Kind::kString;
  out.string = std::move(*tmpl);
  return out;
}

std::optional<HttpOverride> StepReader::http(const Field& field, const Where& where, const Scope& scope,
                                             const CallSpec& spec) {
  Where w = where.field("http");
  auto fields = reader_.map(field.value, field.pos(), w, "the HTTP method and path", &kHttpFields);
  if (!fields) return std::nullopt;
  auto svc = def_.services.find(spec.service);
  if (svc != def_.services.end() && svc->second.transport != Transport::kHttp) {
    reader_.error(field.key_pos, where, "\"http\" applies only to http services; service \"" + spec.service + "\" uses " +
                                            transport_name(svc->second.transport));
    return std::nullopt;
  }
  HttpOverride out;
  out.method = "POST";
  out.path.parts.emplace_back("/" + spec.operation);
  bool ok = true;
  if (const Field* m = fields->get("method")) {
    if (auto text = reader_.text(*m, w)) {
      std::string upper = *text;
      std::transform(upper.begin(), upper.end(), upper.begin(),
                     [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
      if (std::find(kMethods.begin(), kMethods.end(), upper) == kMethods.end()) {
        reader_.error(m->pos(), where, "unsupported HTTP method \"" + *text + "\" (expected GET, POST, PUT, PATCH or DELETE)");
        ok = false;
      }
      out.method = upper;
    } else {
      ok = false;
    }
  }
  if (const Field* p = fields->get("path")) {
    auto text = reader_.text(*p, w);
    if (text && (text->empty() || (*text)[0] != '/')) {
      reader_.error(p->pos(), where, "http path \"" + *text + "\" must start with '/'");
      ok = false;
    } else if (text) {
      auto tmpl = string_template(*text, p->pos(), w.field("path"), scope);
      if (tmpl)
        out.path = std::move(*tmpl);
      else
        ok = false;
    } else {
      ok = false;
    }
  }
  if (!ok) return std::nullopt;
  return out;
}

std::optional<RawCall> StepReader::call(const Fields& fields, const Where& where, const Scope& scope) {
  RawCall out;
  bool ok = true;
  out.spec.pos = fields.pos;
  out.spec.with.literal = Json::object();
  const Field* call = fields.get("call");
  if (call == nullptr) {
    reader_.error(fields.pos, where, "missing required field " + where.field("call").quoted_path() +
                                         " (expected \"service.operation\", e.g. \"seats.hold\")");
    ok = false;
  } else if (auto text = reader_.text(*call, where)) {
    out.spec.pos = call->pos();
    size_t dot = text->find('.');
    std::string service = text->substr(0, dot);
    std::string operation = dot == std::string::npos ? "" : text->substr(dot + 1);
    if (dot == std::string::npos || service.empty() || !is_operation(operation)) {
      reader_.error(call->pos(), where, "call \"" + *text + "\" must be \"service.operation\", e.g. \"seats.hold\"");
      ok = false;
    } else if (def_.services.count(service) == 0) {
      std::vector<std::string> names;
      for (const auto& [name, svc] : def_.services) names.push_back(name);
      reader_.error(call->pos(), where, "unknown service \"" + service + "\" in call \"" + *text + "\"" +
                                            did_you_mean(service, names));
      ok = false;
    } else {
      out.spec.service = service;
      out.spec.operation = operation;
    }
  } else {
    ok = false;
  }
  if (const Field* with = fields.get("with"); with != nullptr && !with->empty()) {
    auto tmpl = value_template(with->value, with->pos(), where.field("with"), scope, 0);
    if (tmpl)
      out.spec.with = std::move(*tmpl);
    else
      ok = false;
  }
  if (const Field* http_field = fields.get("http"); http_field != nullptr && ok) {
    out.spec.http = http(*http_field, where, scope, out.spec);
    if (!out.spec.http) ok = false;
  }
  if (const Field* t = fields.get("timeout")) {
    out.timeout = reader_.duration(*t, where, /*allow_zero=*/false);
    if (!out.timeout) ok = false;
  }
  if (const Field* r = fields.get("retry")) out.retry = read_retry(reader_, *r, where);
  if (!ok) return std::nullopt;
  return out;
}

// The step names, read before the steps themselves so that a reference can
// be told apart as unknown or as pointing at a later step.
std::vector<std::string> step_names(const YAML::Node& steps) {
  std::vector<std::string> names;
  for (auto it = steps.begin(); it != steps.end(); ++it) {
    std::string name;
    if (it->IsMap())
      for (auto f = it->begin(); f != it->end(); ++f)
        if (f->first.IsScalar() && f->first.Scalar() == "name" && f->second.IsScalar()) {
          name = f->second.Scalar();
          break;
        }
    // A second step of the same name is reported on its own; it takes no part in references.
    if (std::find(names.begin(), names.end(), name) != names.end()) name.clear();
    names.push_back(is_step_name(name) ? name : "");
  }
  return names;
}

}  // namespace

void load_steps(Reader& reader, const Field& steps_field, Definition& def, EnvLookup env) {
  if (!steps_field.value.IsSequence() || steps_field.value.size() == 0) {
    reader.error(steps_field.pos(), {}, "\"steps\" must be a non-empty list of steps (- name: reserve ...)");
    return;
  }
  const YAML::Node& list = steps_field.value;
  std::vector<std::string> names = step_names(list);
  StepReader steps(reader, def, env);
  // Where to point at each step's type, and whether its type is known well
  // enough to check the ordering rules (an unreadable type would only add noise).
  std::vector<SourcePos> type_pos;
  std::vector<bool> ordered;
  size_t index = 0;
  for (auto it = list.begin(); it != list.end(); ++it, ++index) {
    SourcePos pos = yaml::position(*it);
    if (pos.line == 0) pos = steps_field.pos();
    // The name is known from the first pass, so even problems found before
    // the `name:` field is read can say which step they are about.
    Where where{names[index].empty() ? "step " + std::to_string(index + 1) : "step \"" + names[index] + "\"", ""};
    Step step;
    step.pos = pos;
    type_pos.push_back(pos);
    ordered.push_back(!names[index].empty());
    auto fields = reader.map(*it, pos, where, "a step (name, call, ...)", &kStepFields);
    if (!fields) {
      ordered.back() = false;
      def.steps.push_back(std::move(step));
      continue;
    }
    if (const Field* name = fields->get("name")) {
      if (auto text = reader.text(*name, where)) {
        if (!is_step_name(*text)) {
          reader.error(name->pos(), where, "invalid step name \"" + *text + "\" (expected letters, digits, '_' and '-')");
        } else if (names[index].empty()) {
          auto first = std::find(names.begin(), names.end(), *text);
          reader.error(name->pos(), where, "duplicate step name \"" + *text + "\" (step " +
                                               std::to_string(first - names.begin() + 1) + " has it already)");
        } else {
          step.name = *text;
        }
      }
    } else {
      reader.error(pos, where, "missing required field \"name\"");
    }
    if (const Field* type = fields->get("type")) {
      type_pos.back() = type->pos();
      auto text = reader.text(*type, where);
      if (text && *text == "pivot") {
        step.type = StepType::kPivot;
      } else if (text && *text == "retriable") {
        step.type = StepType::kRetriable;
      } else if (!text || *text != "compensatable") {
        if (text)
          reader.error(type->pos(), where, "unknown step type \"" + *text +
                                               "\" (expected compensatable, pivot or retriable)" +
                                               did_you_mean(*text, kStepTypes));
        ordered.back() = false;
      }
    }
    auto action = steps.call(*fields, where, Scope{names, index, false});
    if (action) {
      step.action = std::move(action->spec);
      step.action.timeout = action->timeout.value_or(def.default_timeout);
      step.action.retry = action->retry.over(def.default_retry);
    }
    if (const Field* comp = fields->get("compensate")) {
      if (step.type != StepType::kCompensatable) {
        reader.error(comp->key_pos, where,
                     step.type == StepType::kPivot
                         ? "a pivot step cannot have \"compensate\" (once it succeeds the saga only goes forward)"
                         : "a retriable step cannot have \"compensate\" (it is retried until it succeeds and never "
                           "undone)");
      } else {
        Where cw = where.field("compensate");
        auto comp_fields =
            reader.map(comp->value, comp->pos(), cw, "the compensation (call, with, ...)", &kCompensateFields);
        std::optional<RawCall> raw;
        if (comp_fields) raw = steps.call(*comp_fields, cw, Scope{names, index, true});
        if (raw) {
          CallSpec spec = std::move(raw->spec);
          // A compensation inherits the step's timeout, never its retry policy:
          // undoing has its own, more patient, policy (docs/semantics.md).
          spec.timeout = raw->timeout ? *raw->timeout : step.action.timeout;
          spec.retry = raw->retry.over(def.compensation_retry);
          step.compensate = std::move(spec);
        }
      }
    }
    def.steps.push_back(std::move(step));
  }

  // Ordering: compensatable steps, then at most one pivot, then retriable steps.
  std::optional<size_t> retriable_seen;
  for (size_t i = 0; i < def.steps.size(); ++i) {
    const Step& s = def.steps[i];
    if (!ordered[i]) continue;
    Where where{"step \"" + s.name + "\"", ""};
    switch (s.type) {
      case StepType::kPivot:
        if (def.pivot) {
          reader.error(type_pos[i], where, "a saga has at most one pivot, and \"" + def.steps[*def.pivot].name +
                                               "\" is already its pivot");
        } else if (retriable_seen) {
          reader.error(type_pos[i], where, "the pivot must come before every retriable step, but \"" +
                                               def.steps[*retriable_seen].name + "\" is retriable and runs before it");
          def.pivot = i;
        } else {
          def.pivot = i;
        }
        break;
      case StepType::kRetriable:
        if (!retriable_seen) retriable_seen = i;
        break;
      case StepType::kCompensatable:
        if (def.pivot) {
          reader.error(type_pos[i], where, "comes after the pivot \"" + def.steps[*def.pivot].name +
                                               "\", so it must be \"type: retriable\" (steps after the pivot are "
                                               "never compensated)");
        } else if (retriable_seen) {
          reader.error(type_pos[i], where, "a compensatable step cannot follow the retriable step \"" +
                                               def.steps[*retriable_seen].name +
                                               "\" (a retriable step is never undone, so a failure here could not be "
                                               "rolled back)");
        }
        break;
    }
  }
}

}  // namespace usher::loader
