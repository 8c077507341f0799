// The whole content of a file, bytes as they are; "" when it cannot be read.
#pragma once

#include <fstream>
#include <sstream>
#include <string>

namespace usher::test {

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace usher::test
