// A service's `http:` block: its url and, for an https:// url, its `tls:`
// files (docs/workflow-format.md, "Services").
//
// Relative tls paths are taken from the workflow file's directory, not from
// the directory `usher` was started in, so a workflow and its certificates
// can move together. Each file is checked to be a readable regular file here,
// where its line and column are known; whether it holds what it should (PEM,
// a key matching the certificate) is checked when the definition is bound to
// the HTTP step adapter (HttpStepAdapter::check_service). A definition read
// back from the log ("<log:…>", to be shown) is not checked: its files belong
// to the machine that ran it.
#include <filesystem>
#include <fstream>

#include "model/expression.h"
#include "model/loader.h"
#include "usher/url.h"

namespace usher::loader {
namespace {

using yaml::Field;
using yaml::Reader;
using yaml::Where;

const std::vector<std::string> kHttpServiceFields = {"url", "tls"};
const std::vector<std::string> kTlsFields = {"ca_file", "cert_file", "key_file"};

// Where relative tls paths start, and whether files are checked at all: a
// workflow read from a file (its name is a path) is; one read back from the
// log ("<log:…>") is not.
struct FileBase {
  std::filesystem::path dir;
  bool check = true;
};

FileBase file_base(const std::string& workflow_file) {
  if (workflow_file.starts_with('<')) return {{}, false};
  return {std::filesystem::path(workflow_file).parent_path(), true};
}

// Why `path` cannot be read as a file, or "".
std::string unreadable(const std::filesystem::path& path) {
  std::error_code ec;
  auto status = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(status)) return "does not exist";
  if (std::filesystem::is_directory(status)) return "is a directory";
  if (!std::filesystem::is_regular_file(status)) return "is not a regular file";
  std::ifstream in(path, std::ios::binary);
  if (!in) return "cannot be read";
  return "";
}

// One of the tls files: its text with ${env…} substituted, resolved against
// the workflow's directory and checked. nullopt after reporting.
std::optional<std::string> tls_file(Reader& reader, const Field& f, const Where& w, const Where& owner, EnvLookup env,
                                    const FileBase& base) {
  auto text = service_text(reader, f, w, env);
  if (!text) return std::nullopt;
  std::filesystem::path path(*text);
  if (path.is_relative() && !base.dir.empty()) path = base.dir / path;
  if (base.check) {
    if (std::string why = unreadable(path); !why.empty()) {
      reader.error(f.pos(), owner, w.field(f.key).quoted_path() + " \"" + path.string() + "\" " + why);
      return std::nullopt;
    }
  }
  return path.string();
}

void load_tls(Reader& reader, const Field& block, const Where& owner, const Where& w, EnvLookup env,
              ServiceTls& tls) {
  auto fields = reader.map(block.value, block.pos(), w, "the tls settings", &kTlsFields);
  if (!fields) return;
  const FileBase base = file_base(reader.file());
  const Field* cert = fields->get("cert_file");
  const Field* key = fields->get("key_file");
  if ((cert == nullptr) != (key == nullptr)) {
    const Field* given = cert != nullptr ? cert : key;
    reader.error(given->key_pos, owner,
                 w.field(given->key).quoted_path() + " needs " +
                     w.field(cert != nullptr ? "key_file" : "cert_file").quoted_path() +
                     " too (a client certificate and its private key go together)");
    return;
  }
  if (const Field* f = fields->get("ca_file"))
    if (auto p = tls_file(reader, *f, w, owner, env, base)) tls.ca_file = *p;
  if (cert != nullptr) {
    auto c = tls_file(reader, *cert, w, owner, env, base);
    auto k = tls_file(reader, *key, w, owner, env, base);
    if (c && k) {
      tls.cert_file = *c;
      tls.key_file = *k;
    }
  }
}

}  // namespace

std::optional<std::string> service_text(Reader& reader, const Field& f, const Where& where, EnvLookup env) {
  auto text = reader.text(f, where);
  if (!text) return std::nullopt;
  auto parsed = parse_string_template(*text);
  if (auto* err = std::get_if<TemplateError>(&parsed)) {
    reader.error(f.pos(), where, "invalid expression in " + where.field(f.key).quoted_path() + ": " + err->message);
    return std::nullopt;
  }
  auto resolved = resolve_env(reader, std::get<StringTemplate>(std::move(parsed)), f.pos(), where.field(f.key), env,
                              /*env_only=*/true);
  if (!resolved) return std::nullopt;
  return std::get<std::string>(resolved->parts[0]);
}

void load_http_service(Reader& reader, const Field& block, const Where& where, EnvLookup env, Service& svc) {
  Where w = where.field("http");
  auto fields = reader.map(block.value, block.pos(), w, "the http settings", &kHttpServiceFields);
  if (!fields) return;
  const Field* url = fields->get("url");
  const Field* tls = fields->get("tls");
  if (url == nullptr) {
    reader.error(block.pos(), where, "missing required field \"url\" in \"http\" (e.g. url: \"http://127.0.0.1:7101\")");
    return;
  }
  auto text = service_text(reader, *url, w, env);
  if (!text) return;
  // The HTTP step adapter's own parser (http_step::parse_service_url), so a
  // URL validates exactly when the adapter can send to it.
  auto parsed = parse_http_url(*text, {.what = "url", .allow_https = true});
  if (!parsed) {
    reader.error(url->pos(), where, parsed.status().message());
    return;
  }
  if (tls != nullptr) {
    if (!parsed->tls) {
      reader.error(tls->key_pos, where,
                   w.field("tls").quoted_path() + " is for an https:// url; \"" + *text + "\" is plain http");
      return;
    }
    load_tls(reader, *tls, where, w.field("tls"), env, svc.tls);
  }
  // The adapter appends "/{operation}"; a trailing slash would double it.
  const size_t scheme_length = parsed->tls ? 8 : 7;
  while (text->size() > scheme_length + 1 && text->back() == '/') text->pop_back();
  svc.url = std::move(*text);
}

}  // namespace usher::loader
