// The workflow loader: YAML text -> an immutable, validated Definition
// (docs/workflow-format.md). It never stops at the first problem: each part of
// the file is read on its own and every problem becomes a Diagnostic, so one
// run of `usher validate` shows everything that needs fixing.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/parser.h>

#include "model/json_schema.h"
#include "model/loader.h"
#include "model/redaction.h"
#include "model/sha256.h"
#include "model/suggest.h"

namespace usher {
namespace {

using yaml::Field;
using yaml::Fields;
using yaml::Reader;
using yaml::Where;

const std::vector<std::string> kTopFields = {"saga",    "version", "description", "services", "input",
                                             "redact",  "timeout", "defaults",    "steps"};
const std::vector<std::string> kDefaultsFields = {"timeout", "retry", "compensation_retry"};
const std::vector<std::string> kServiceFields = {"http", "kafka", "local"};
const std::vector<std::string> kKafkaServiceFields = {"brokers", "topic", "reply_topic"};
const std::vector<std::string> kNoFields = {};
const std::vector<std::string> kRetryFields = {"attempts", "backoff", "multiplier", "max_backoff"};

// The security protocols librdkafka reads before a broker in bootstrap.servers
// ("SSL://k1:9093"), in any case. With any other prefix librdkafka drops the
// broker ("unsupported protocol"), so no call could ever reach it.
const std::vector<std::string> kKafkaProtocols = {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"};

constexpr const char* kDefaultBrokers = "127.0.0.1:9092";
constexpr const char* kDefaultReplyTopic = "usher.replies";

bool is_saga_name(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  auto lower_or_digit = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!lower_or_digit(s[0])) return false;
  return std::all_of(s.begin(), s.end(), [&](char c) { return lower_or_digit(c) || c == '-'; });
}

bool is_service_name(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

// Why a `brokers` list has a broker the Kafka adapter could not use, or nullopt.
// Each comma-separated broker is host[:port], optionally after a protocol of
// kKafkaProtocols; whether that protocol matches the server's
// security.protocol (usher.yaml kafka.properties) is known only at run time.
std::optional<std::string> brokers_problem(std::string_view brokers) {
  size_t start = 0;
  while (start <= brokers.size()) {
    size_t comma = brokers.find(',', start);
    if (comma == std::string_view::npos) comma = brokers.size();
    std::string_view broker = brokers.substr(start, comma - start);
    while (!broker.empty() && broker.front() == ' ') broker.remove_prefix(1);
    while (!broker.empty() && broker.back() == ' ') broker.remove_suffix(1);
    if (size_t sep = broker.find("://"); sep != std::string_view::npos) {
      std::string scheme(broker.substr(0, sep));
      std::string upper = scheme;
      std::transform(upper.begin(), upper.end(), upper.begin(),
                     [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
      if (std::find(kKafkaProtocols.begin(), kKafkaProtocols.end(), upper) == kKafkaProtocols.end())
        return "broker \"" + std::string(broker) + "\" has an unsupported scheme \"" + scheme +
               "\" (expected host:port, optionally after PLAINTEXT://, SSL://, SASL_PLAINTEXT:// or SASL_SSL://)" +
               did_you_mean(upper, kKafkaProtocols);
    }
    start = comma + 1;
  }
  return std::nullopt;
}

void load_kafka_service(Reader& reader, const Field& block, const Where& where, EnvLookup env, Service& svc) {
  Where w = where.field("kafka");
  auto fields = reader.map(block.value, block.pos(), w, "the kafka settings", &kKafkaServiceFields);
  if (!fields) return;
  svc.brokers = kDefaultBrokers;
  svc.reply_topic = kDefaultReplyTopic;
  if (const Field* f = fields->get("brokers")) {
    if (auto t = loader::service_text(reader, *f, w, env)) {
      if (auto problem = brokers_problem(*t))
        reader.error(f->pos(), where, *problem);
      else
        svc.brokers = *t;
    }
  }
  if (const Field* f = fields->get("reply_topic"))
    if (auto t = loader::service_text(reader, *f, w, env)) svc.reply_topic = *t;
  if (const Field* f = fields->get("topic")) {
    if (auto t = loader::service_text(reader, *f, w, env)) svc.topic = *t;
  } else {
    reader.error(block.pos(), where, "missing required field \"topic\" in \"kafka\" (e.g. topic: payments.requests)");
  }
}

void load_services(Reader& reader, const Field& field, Definition& def, EnvLookup env) {
  auto services = reader.map(field.value, field.pos(), Where{"", "services"}, "the services", nullptr);
  if (!services) return;
  if (services->fields.empty())
    reader.error(field.pos(), {}, "\"services\" is empty (expected e.g. seats: { http: { url: \"http://127.0.0.1:7101\" } })");
  for (const Field& entry : services->fields) {
    Where where{"service \"" + entry.key + "\"", ""};
    if (!is_service_name(entry.key)) {
      reader.error(entry.key_pos, where, "invalid service name (expected letters, digits, '_' and '-')");
      continue;
    }
    auto fields = reader.map(entry.value, entry.pos(), where, "one of http, kafka or local", &kServiceFields);
    if (!fields) continue;
    if (fields->fields.size() != 1) {
      std::string got;
      for (const auto& f : fields->fields) got += (got.empty() ? "" : " and ") + f.key;
      reader.error(entry.pos(), where, "expected exactly one of http, kafka or local" + (got.empty() ? "" : ", got " + got));
      continue;
    }
    const Field& block = fields->fields[0];
    Service svc;
    svc.name = entry.key;
    svc.pos = entry.key_pos;
    if (block.key == "http") {
      svc.transport = Transport::kHttp;
      loader::load_http_service(reader, block, where, env, svc);
    } else if (block.key == "kafka") {
      svc.transport = Transport::kKafka;
      load_kafka_service(reader, block, where, env, svc);
    } else {
      svc.transport = Transport::kLocal;
      // `local:` with nothing after it is as good as `local: {}`.
      if (!block.empty()) reader.map(block.value, block.pos(), where.field("local"), "no settings", &kNoFields);
    }
    def.services.emplace(svc.name, std::move(svc));
  }
}

void load_defaults(Reader& reader, const Field& field, Definition& def) {
  Where where{"defaults", ""};
  auto fields = reader.map(field.value, field.pos(), Where{"", "defaults"}, "the defaults", &kDefaultsFields);
  if (!fields) return;
  if (const Field* f = fields->get("timeout")) {
    if (auto t = reader.duration(*f, where, /*allow_zero=*/false)) def.default_timeout = *t;
  }
  if (const Field* f = fields->get("retry")) def.default_retry = loader::read_retry(reader, *f, where).over(def.default_retry);
  if (const Field* f = fields->get("compensation_retry"))
    def.compensation_retry = loader::read_retry(reader, *f, where).over(def.compensation_retry);
}

void load_input_schema(Reader& reader, const Field& field, Definition& def) {
  Where where{"input", ""};
  auto json = reader.json(field.value, field.pos(), where);
  if (!json) return;
  if (!json->is_object() && !json->is_boolean()) {
    reader.error(field.pos(), where, "expected a JSON Schema (a mapping such as { type: object, required: [...] })");
    return;
  }
  auto compiled = JsonSchema::compile(*json);
  if (!compiled) {
    reader.error(field.pos(), where, "not a valid JSON Schema: " + compiled.status().message());
    return;
  }
  def.input_schema = std::move(*json);
}

// A redacted pointer the input schema cannot hold is almost certainly a typo,
// and a typo here leaks the secret, so each token must name a property the
// schema declares (where it declares any) or index an array.
std::optional<std::string> redact_schema_problem(const Json& schema, const Redaction& r) {
  const Json* at = &schema;
  std::string walked;
  for (const std::string& token : r.tokens) {
    if (!at->is_object()) return std::nullopt;
    auto props = at->find("properties");
    if (props != at->end() && props->is_object()) {
      auto p = props->find(token);
      if (p == props->end()) {
        std::vector<std::string> names;
        for (const auto& [name, _] : props->items()) names.push_back(name);
        return "the input schema has no property \"" + token + "\"" + (walked.empty() ? "" : " under " + walked) +
               did_you_mean(token, names);
      }
      at = &*p;
    } else if (auto items = at->find("items"); items != at->end() && items->is_object()) {
      at = &*items;
    } else {
      return std::nullopt;  // the schema says nothing about this level
    }
    walked += "/" + token;
  }
  return std::nullopt;
}

void load_redact(Reader& reader, const Field& field, Definition& def) {
  Where where{"redact", ""};
  if (!field.value.IsSequence()) {
    reader.error(field.pos(), where, "expected a list of JSON pointers into the input, e.g. [/card/number]");
    return;
  }
  for (const YAML::Node& item : field.value) {
    SourcePos pos = yaml::position(item);
    if (pos.line == 0) pos = field.pos();
    auto text = item.IsScalar() ? std::optional<std::string>(item.Scalar()) : std::nullopt;
    if (!text) {
      reader.error(pos, where, "expected a JSON pointer into the input, e.g. /card/number");
      continue;
    }
    auto tokens = parse_redact_pointer(*text);
    if (!tokens) {
      reader.error(pos, where,
                   "\"" + *text + "\" is not a JSON pointer into the input (expected e.g. /card/number; "
                   "'~' is written ~0 and '/' inside a key ~1)");
      continue;
    }
    Redaction r{*text, std::move(*tokens), pos};
    if (std::any_of(def.redact.begin(), def.redact.end(), [&](const Redaction& o) { return o.tokens == r.tokens; })) {
      reader.error(pos, where, "\"" + *text + "\" is listed twice");
      continue;
    }
    if (def.input_schema) {
      if (auto problem = redact_schema_problem(*def.input_schema, r)) {
        reader.error(pos, where, "\"" + *text + "\": " + *problem);
        continue;
      }
    }
    def.redact.push_back(std::move(r));
  }
  for (Step& step : def.steps) {
    for (CallSpec* call : {&step.action, step.compensate ? &*step.compensate : nullptr}) {
      if (call == nullptr) continue;
      for (size_t i = 0; i < def.redact.size(); ++i)
        if (call_reads(*call, def.redact[i])) call->reads_redacted.push_back(i);
    }
  }
}

// Where a second YAML document starts, if the text has one. Only the
// document boundaries matter; every other parser event is ignored.
std::optional<SourcePos> find_second_document(const std::string& source) {
  struct DocumentStarts final : YAML::EventHandler {
    std::vector<YAML::Mark> starts;
    void OnDocumentStart(const YAML::Mark& mark) override { starts.push_back(mark); }
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
    void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
    void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
    void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
    void OnMapEnd() override {}
  };
  std::istringstream in(source);
  YAML::Parser parser(in);
  DocumentStarts handler;
  for (int i = 0; i < 2 && parser.HandleNextDocument(handler); ++i) {
  }
  if (handler.starts.size() < 2) return std::nullopt;
  const YAML::Mark& m = handler.starts[1];
  return SourcePos{m.line < 0 ? 1 : m.line + 1, m.column < 0 ? 1 : m.column + 1};
}

LoadResult load(const std::string& source, const std::string& file_name, EnvLookup env) {
  LoadResult result;
  Reader reader(file_name, result.diagnostics);
  // The first document is the workflow; a second is an error. yaml-cpp's
  // LoadAll is not used: on some malformed input (found by fuzzing:
  // ", b\nc: 2\n") its parser yields empty documents without end, so the
  // documents are counted with the parser directly, stopping at two.
  YAML::Node first;
  std::optional<SourcePos> second_document;
  try {
    first = YAML::Load(source);
    second_document = find_second_document(source);
  } catch (const YAML::Exception& e) {
    SourcePos pos{e.mark.line < 0 ? 0 : e.mark.line + 1, e.mark.column < 0 ? 0 : e.mark.column + 1};
    reader.error(pos, {}, "invalid YAML: " + e.msg);
    return result;
  }
  if (!first || first.IsNull()) {
    reader.error({1, 1}, {}, "empty workflow (expected saga, services and steps)");
    return result;
  }
  if (second_document) reader.error(*second_document, {}, "a workflow file holds one YAML document, found more");
  auto top = reader.map(first, yaml::position(first), {}, "a workflow with saga, services and steps", &kTopFields);
  if (!top) return result;

  auto def = std::make_shared<Definition>();
  for (const char* required : {"saga", "services", "steps"})
    if (top->get(required) == nullptr) reader.error(top->pos, {}, std::string("missing required field \"") + required + "\"");

  if (const Field* f = top->get("saga")) {
    if (auto name = reader.text(*f, {})) {
      if (is_saga_name(*name))
        def->name = *name;
      else
        reader.error(f->pos(), {}, "invalid saga name \"" + *name +
                                       "\" (expected lowercase letters, digits and '-', starting with a letter or "
                                       "digit, e.g. \"concert-booking\")");
    }
  }
  if (const Field* f = top->get("version"))
    if (auto v = reader.integer(*f, {}, 1, std::numeric_limits<int32_t>::max())) def->version = *v;
  if (const Field* f = top->get("description"))
    if (auto d = reader.text(*f, {})) def->description = *d;
  if (const Field* f = top->get("services")) load_services(reader, *f, *def, env);
  if (const Field* f = top->get("timeout")) def->timeout = reader.duration(*f, {}, /*allow_zero=*/false);
  // Defaults before steps: each step's policies are resolved as it is read.
  if (const Field* f = top->get("defaults")) load_defaults(reader, *f, *def);
  // The input schema before the steps: their `${input.…}` references are checked against it.
  if (const Field* f = top->get("input")) load_input_schema(reader, *f, *def);
  if (const Field* f = top->get("steps")) loader::load_steps(reader, *f, *def, env);
  // After the schema (pointers are checked against it) and the steps (which
  // calls read a secret is noted on each call).
  if (const Field* f = top->get("redact")) load_redact(reader, *f, *def);

  if (reader.error_count() > 0) return result;
  def->file = file_name;
  def->source = source;
  def->hash = sha256_hex(source);
  result.definition = std::move(def);
  return result;
}

// Where `saga:` is in a file that loaded, to point at a duplicate definition.
SourcePos saga_key_position(const std::string& source) {
  try {
    YAML::Node root = YAML::Load(source);
    for (auto it = root.begin(); it != root.end(); ++it)
      if (it->first.IsScalar() && it->first.Scalar() == "saga") return yaml::position(it->first);
  } catch (const std::exception&) {
    // The file loaded a moment ago; if it cannot be read again, point at its top.
  }
  return {1, 1};
}

}  // namespace

namespace loader {

RetryPolicy RetrySpec::over(RetryPolicy base) const {
  if (attempts) base.attempts = *attempts;
  if (backoff) base.backoff = *backoff;
  if (multiplier) base.multiplier = *multiplier;
  if (max_backoff) base.max_backoff = *max_backoff;
  return base;
}

RetrySpec read_retry(Reader& reader, const Field& field, const Where& where) {
  RetrySpec spec;
  Where w = where.field(field.key);
  auto fields = reader.map(field.value, field.pos(), w, "the retry policy", &kRetryFields);
  if (!fields) return spec;
  if (const Field* f = fields->get("attempts")) {
    if (f->value.IsScalar() && f->value.Scalar() == "unlimited") {
      spec.attempts = RetryPolicy::kUnlimited;
    } else if (f->value.IsScalar() && yaml::is_plain(f->value) && !f->value.Scalar().empty() &&
               std::isdigit(static_cast<unsigned char>(f->value.Scalar()[0]))) {
      if (auto n = reader.integer(*f, w, 1, std::numeric_limits<uint32_t>::max())) spec.attempts = static_cast<uint32_t>(*n);
    } else {
      std::string got = f->value.IsScalar() ? "\"" + f->value.Scalar() + "\"" : "a collection";
      reader.error(f->pos(), where,
                   w.field("attempts").quoted_path() + " must be an integer >= 1 or \"unlimited\", got " + got +
                       (f->value.IsScalar() ? did_you_mean(f->value.Scalar(), {"unlimited"}) : ""));
    }
  }
  if (const Field* f = fields->get("backoff")) spec.backoff = reader.duration(*f, w, /*allow_zero=*/true);
  if (const Field* f = fields->get("multiplier")) spec.multiplier = reader.number(*f, w, 1.0);
  if (const Field* f = fields->get("max_backoff")) spec.max_backoff = reader.duration(*f, w, /*allow_zero=*/true);
  return spec;
}

std::optional<StringTemplate> resolve_env(Reader& reader, StringTemplate tmpl, SourcePos pos, const Where& where,
                                          EnvLookup env, bool env_only) {
  StringTemplate out;
  bool ok = true;
  auto append_text = [&out](std::string text) {
    if (!out.parts.empty() && std::holds_alternative<std::string>(out.parts.back()))
      std::get<std::string>(out.parts.back()) += text;
    else
      out.parts.emplace_back(std::move(text));
  };
  for (auto& part : tmpl.parts) {
    if (auto* text = std::get_if<std::string>(&part)) {
      append_text(std::move(*text));
      continue;
    }
    auto& expr = std::get<Expression>(part);
    if (expr.root != Expression::Root::kEnv) {
      if (env_only) {
        reader.error(pos, where, "only ${env.NAME} may be used in " + where.quoted_path() + ", not \"" +
                                               expr.text + "\" (services are fixed when the workflow is loaded)");
        ok = false;
      }
      out.parts.emplace_back(std::move(expr));
      continue;
    }
    const std::string& name = expr.path.at(0);
    std::optional<std::string> value = env != nullptr ? env(name) : std::nullopt;
    if (value && !value->empty()) {
      append_text(std::move(*value));
    } else if (expr.fallback) {
      append_text(*expr.fallback);
    } else {
      reader.error(pos, where, "environment variable " + name + (value ? " is empty" : " is not set") +
                                             " and \"" + expr.text + "\" has no default (write \"${env." + name +
                                             ":-value}\" to give one)");
      ok = false;
    }
  }
  if (out.parts.empty()) out.parts.emplace_back(std::string());
  if (!ok) return std::nullopt;
  return out;
}

}  // namespace loader

LoadResult load_definition(const std::string& source, const std::string& file_name, EnvLookup env) {
  try {
    return load(source, file_name, env);
  } catch (const std::exception& e) {
    // A bug or an allocation failure, not a property of the file; still a
    // diagnostic, because the loader's promise is never to throw.
    LoadResult result;
    result.diagnostics.push_back(Diagnostic{file_name, {}, std::string("internal error while loading: ") + e.what()});
    return result;
  }
}

LoadResult load_definition_file(const std::string& path, EnvLookup env) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  if (in) text << in.rdbuf();
  if (!in || in.bad()) {
    std::error_code ec;
    std::string why = std::filesystem::is_directory(path, ec) ? "is a directory" : "cannot be read";
    if (!std::filesystem::exists(path, ec)) why = "does not exist";
    LoadResult result;
    result.diagnostics.push_back(Diagnostic{path, {}, "file " + why});
    return result;
  }
  return load_definition(text.str(), path, env);
}

DirectoryLoad load_definition_dir(const std::string& dir, EnvLookup env) {
  DirectoryLoad out;
  std::vector<std::string> files;
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec), end;
  if (ec) {
    out.diagnostics.push_back(Diagnostic{dir, {}, "cannot read directory: " + ec.message()});
    return out;
  }
  for (; it != end; it.increment(ec)) {
    if (ec) break;
    const auto& p = it->path();
    std::string ext = p.extension().string();
    std::error_code type_ec;
    if ((ext == ".yaml" || ext == ".yml") && it->is_regular_file(type_ec)) files.push_back(p.string());
  }
  if (ec) out.diagnostics.push_back(Diagnostic{dir, {}, "cannot read directory: " + ec.message()});
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    LoadResult r = load_definition_file(file, env);
    out.diagnostics.insert(out.diagnostics.end(), r.diagnostics.begin(), r.diagnostics.end());
    if (!r.ok()) continue;
    auto same = std::find_if(out.definitions.begin(), out.definitions.end(), [&](const DefinitionPtr& d) {
      return d->name == r.definition->name && d->version == r.definition->version;
    });
    if (same != out.definitions.end()) {
      out.diagnostics.push_back(Diagnostic{file, saga_key_position(r.definition->source),
                                           "saga \"" + r.definition->name + "\" version " +
                                               std::to_string(r.definition->version) + " is already defined in " +
                                               (*same)->file + " (give this one a new version)"});
      continue;
    }
    out.definitions.push_back(std::move(r.definition));
  }
  return out;
}

}  // namespace usher
