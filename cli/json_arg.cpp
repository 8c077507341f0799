#include "json_arg.h"

#include <fstream>
#include <iostream>
#include <iterator>

namespace usher::cli {

namespace {

// What a reader of the message needs to find the bad document: its start.
std::string excerpt(const std::string& text) {
  constexpr size_t kMax = 120;
  return text.size() <= kMax ? text : text.substr(0, kMax) + "…";
}

}  // namespace

Result<Json> read_json_arg(const std::string& spec, const std::string& flag) {
  std::string text = spec;
  std::string from = flag;
  if (spec == "@-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    if (std::cin.bad()) return Status::invalid_argument(flag + " @-: cannot read standard input");
    from = flag + " (standard input)";
  } else if (!spec.empty() && spec.front() == '@') {
    const std::string path = spec.substr(1);
    std::ifstream in(path, std::ios::binary);
    if (!in) return Status::invalid_argument("cannot read " + flag + " file " + path);
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    from = flag + " file " + path;
  }
  Json value = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) return Status::invalid_argument(from + " is not valid JSON: " + excerpt(text));
  return value;
}

}  // namespace usher::cli
