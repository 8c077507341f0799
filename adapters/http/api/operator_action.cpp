#include "http/api/operator_action.h"

#include <openssl/evp.h>

#include <initializer_list>

#include "usher/service_text.h"

namespace usher::api {

namespace {

// Notes and reasons are stored and shown to operators: one piece of valid
// UTF-8 text, bounded like every text usher stores.
constexpr size_t kMaxNoteBytes = 1024;

Status check_fields(std::string_view action, const Json& body, std::initializer_list<const char*> allowed) {
  for (const auto& [key, value] : body.items()) {
    bool known = false;
    std::string list;
    for (const char* a : allowed) {
      known = known || key == a;
      list += std::string(list.empty() ? "" : ", ") + "\"" + a + "\"";
    }
    if (!known)
      return Status::invalid_argument(std::string(action) + ": unknown field \"" + key + "\" (expected " + list + ")");
  }
  return Status::ok();
}

// The text field `key`: absent -> "", a string -> itself; else an error.
Result<std::string> text_field(std::string_view action, const Json& body, const char* key, bool required) {
  auto it = body.find(key);
  if (it == body.end() || (it->is_string() && it->get<std::string>().find_first_not_of(" \t\r\n") == std::string::npos)) {
    if (required) return Status::invalid_argument(std::string(action) + ": \"" + key + "\" is required (a non-empty string)");
    return std::string();
  }
  if (!it->is_string()) return Status::invalid_argument(std::string(action) + ": \"" + key + "\" must be a string");
  const std::string& text = it->get_ref<const std::string&>();
  if (!is_valid_utf8(text)) return Status::invalid_argument(std::string(action) + ": \"" + key + "\" must be UTF-8 text");
  if (text.size() > kMaxNoteBytes)
    return Status::invalid_argument(std::string(action) + ": \"" + key + "\" is longer than " +
                                    std::to_string(kMaxNoteBytes) + " bytes");
  return text;
}

}  // namespace

std::string token_actor(std::string_view token) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(token.data(), token.size(), digest, &len, EVP_sha256(), nullptr) != 1 || len < 4) return "token";
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "token:";
  for (int i = 0; i < 4; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

bool is_operator_action(std::string_view name) {
  return name == "cancel" || name == "retry" || name == "resolve" || name == "terminate";
}

Result<OperatorActionCall> parse_operator_action(std::string_view name, const Json& body, const std::string& actor) {
  if (name == "cancel" || name == "retry") {
    if (Status st = check_fields(name, body, {"note"}); !st.is_ok()) return st;
    auto note = text_field(name, body, "note", false);
    if (!note.is_ok()) return note.status();
    OperatorNote by{actor, std::move(note.value())};
    if (name == "cancel")
      return OperatorActionCall{[by](Engine& e, const std::string& id) { return e.cancel(id, by); }};
    return OperatorActionCall{[by](Engine& e, const std::string& id) { return e.retry(id, by); }};
  }
  if (name == "terminate") {
    if (Status st = check_fields(name, body, {"reason"}); !st.is_ok()) return st;
    auto reason = text_field(name, body, "reason", true);
    if (!reason.is_ok()) return reason.status();
    return OperatorActionCall{[reason = std::move(reason.value()), actor](Engine& e, const std::string& id) {
      return e.terminate(id, reason, actor);
    }};
  }
  // resolve
  if (Status st = check_fields(name, body, {"step", "outcome", "output", "note"}); !st.is_ok()) return st;
  ResolveRequest r;
  auto step = text_field(name, body, "step", true);
  if (!step.is_ok()) return step.status();
  r.step = std::move(step.value());
  auto outcome = body.find("outcome");
  if (outcome == body.end() || !outcome->is_string() ||
      (*outcome != "succeeded" && *outcome != "failed"))
    return Status::invalid_argument("resolve: \"outcome\" must be \"succeeded\" or \"failed\"");
  r.succeeded = *outcome == "succeeded";
  if (auto output = body.find("output"); output != body.end() && !output->is_null()) {
    if (!r.succeeded)
      return Status::invalid_argument("resolve: \"output\" goes with \"outcome\": \"succeeded\" only");
    if (!output->is_object()) return Status::invalid_argument("resolve: \"output\" must be a JSON object");
    r.output = *output;
  }
  auto note = text_field(name, body, "note", true);
  if (!note.is_ok()) return note.status();
  r.by = {actor, std::move(note.value())};
  return OperatorActionCall{[r = std::move(r)](Engine& e, const std::string& id) { return e.resolve(id, r); }};
}

}  // namespace usher::api
