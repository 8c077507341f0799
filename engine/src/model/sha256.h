// Content hashes of workflow sources: a definition is identified by the hex
// SHA-256 of its YAML text, which is how a running saga finds the exact
// definition it started with (docs/architecture.md).
#pragma once

#include <string>
#include <string_view>

namespace usher {

// Lower-case hex SHA-256 of `data` (64 characters).
std::string sha256_hex(std::string_view data);

}  // namespace usher
