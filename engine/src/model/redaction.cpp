#include "model/redaction.h"

#include <algorithm>

namespace usher {
namespace {

// The value `tokens` point at inside `doc`, or nullptr. Array indexes are
// decimal without leading zeros, as RFC 6901 has them.
template <class J>  // Json or const Json
J* find(J& doc, const std::vector<std::string>& tokens) {
  J* at = &doc;
  for (const std::string& t : tokens) {
    if (at->is_object()) {
      auto it = at->find(t);
      if (it == at->end()) return nullptr;
      at = &*it;
    } else if (at->is_array()) {
      if (t.empty() || t.size() > 9 || (t.size() > 1 && t[0] == '0') ||
          !std::all_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return nullptr;
      size_t index = std::stoul(t);
      if (index >= at->size()) return nullptr;
      at = &(*at)[index];
    } else {
      return nullptr;
    }
  }
  return at;
}

// Whether one path is a prefix of the other: reading either reads the overlap.
bool overlaps(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  size_t n = std::min(a.size(), b.size());
  return std::equal(a.begin(), a.begin() + static_cast<long>(n), b.begin());
}

bool template_reads(const StringTemplate& text, const Redaction& r) {
  for (const auto& part : text.parts) {
    const auto* e = std::get_if<Expression>(&part);
    if (e != nullptr && e->root == Expression::Root::kInput && overlaps(e->path, r.tokens)) return true;
  }
  return false;
}

bool template_reads(const ValueTemplate& value, const Redaction& r) {
  switch (value.kind) {
    case ValueTemplate::Kind::kLiteral:
      return false;
    case ValueTemplate::Kind::kString:
      return template_reads(value.string, r);
    case ValueTemplate::Kind::kObject:
      return std::any_of(value.members.begin(), value.members.end(),
                         [&](const auto& m) { return template_reads(m.second, r); });
    case ValueTemplate::Kind::kArray:
      return std::any_of(value.elements.begin(), value.elements.end(),
                         [&](const auto& e) { return template_reads(e, r); });
  }
  return false;
}

}  // namespace

std::optional<std::vector<std::string>> parse_redact_pointer(std::string_view pointer) {
  if (pointer.empty() || pointer[0] != '/') return std::nullopt;
  std::vector<std::string> tokens;
  std::string token;
  for (size_t i = 1; i <= pointer.size(); ++i) {
    if (i == pointer.size() || pointer[i] == '/') {
      tokens.push_back(std::move(token));
      token.clear();
      continue;
    }
    if (pointer[i] != '~') {
      token += pointer[i];
      continue;
    }
    if (i + 1 == pointer.size() || (pointer[i + 1] != '0' && pointer[i + 1] != '1')) return std::nullopt;
    token += pointer[++i] == '0' ? '~' : '/';
  }
  return tokens;
}

Json redact_input(const Definition& def, const Json& input) {
  Json out = input;
  for (const Redaction& r : def.redact)
    if (Json* at = find(out, r.tokens)) *at = kRedactedText;
  return out;
}

bool had_value(const Json& redacted_input, const Redaction& r) {
  return find(redacted_input, r.tokens) != nullptr;
}

bool call_reads(const CallSpec& call, const Redaction& r) {
  if (template_reads(call.with, r)) return true;
  return call.http && template_reads(call.http->path, r);
}

}  // namespace usher
