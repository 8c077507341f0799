// Helpers for the CLI tests: a temporary directory, running the built `usher`
// binary and capturing what it prints and how it exits.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <string>

#include <doctest/doctest.h>
#include "support/read_file.h"
#include "support/temp_dir.h"

namespace usher::test {


struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Quotes one argument for /bin/sh.
inline std::string shell_quote(const std::string& arg) {
  std::string q = "'";
  for (char c : arg) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Runs `usher ARGS…` with a clean environment for the variables the CLI reads
// (so a developer's USHER_SERVER or USHER_TOKEN cannot change a test).
inline CommandResult run_usher(const std::string& args, const std::string& env = "") {
  static std::atomic<int> counter{0};
  const std::string err_file = std::filesystem::temp_directory_path() /
                               ("usher-cli-err-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  const std::string command = "env -u USHER_SERVER -u USHER_TOKEN NO_COLOR=1 " + env + " " +
                              shell_quote(USHER_BINARY_DIR "/cli/usher") + " " + args + " 2>" + shell_quote(err_file);
  CommandResult r;
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) r.out.append(buf.data(), n);
  const int status = ::pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = read_file(err_file);
  std::filesystem::remove(err_file);
  return r;
}

}  // namespace usher::test
