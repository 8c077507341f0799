// Helpers for the model tests: load YAML from a string with a fake
// environment, and read the diagnostics as "line:col: message" lines.
#pragma once

#include <initializer_list>
#include <map>
#include <ostream>
#include <optional>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "usher/definition.h"

namespace usher::test {

// The environment seen by load(); tests set it and EnvGuard clears it again.
inline std::map<std::string, std::string>& fake_env() {
  static std::map<std::string, std::string> env;
  return env;
}

inline std::optional<std::string> fake_env_lookup(const std::string& name) {
  auto it = fake_env().find(name);
  if (it == fake_env().end()) return std::nullopt;
  return it->second;
}

struct EnvGuard {
  explicit EnvGuard(std::map<std::string, std::string> vars) { fake_env() = std::move(vars); }
  ~EnvGuard() { fake_env().clear(); }
};

inline LoadResult load(const std::string& yaml) {
  return load_definition(yaml, "x.yaml", &fake_env_lookup);
}

// Diagnostics as "file:line:col: message" lines; printed one per line when a check fails.
struct Lines {
  Lines(std::initializer_list<std::string> l) : lines(l) {}
  explicit Lines(std::vector<std::string> l) : lines(std::move(l)) {}
  std::vector<std::string> lines;
  bool operator==(const Lines& other) const { return lines == other.lines; }
  friend std::ostream& operator<<(std::ostream& os, const Lines& l) {
    for (const auto& line : l.lines) os << "\n  " << line;
    return os << "\n";
  }
};

inline Lines errors(const LoadResult& r) {
  std::vector<std::string> out;
  for (const auto& d : r.diagnostics) out.push_back(d.to_string());
  return Lines(std::move(out));
}

// A valid workflow header (saga, services) to put steps under; services on lines 2-5.
inline const char* kHeader =
    "saga: test\n"
    "services:\n"
    "  seats: { http: { url: \"http://127.0.0.1:7101\" } }\n"
    "  payments: { kafka: { topic: payments.requests } }\n"
    "  tickets: { local: {} }\n";

}  // namespace usher::test
