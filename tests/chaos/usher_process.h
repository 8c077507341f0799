// A child process (usually `usher serve`) whose stdout and stderr are appended
// to one file, so a test can both wait for a line it prints and, afterwards,
// search everything it logged. Unlike serve/test_http.h's Child it never uses
// doctest assertions: the chaos killer thread restarts the server, and a
// REQUIRE thrown off the main thread would terminate the run.
// Shared by tests/chaos and tests/hostile.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "support/read_file.h"

extern char** environ;

namespace usher::test {

class LoggedProcess {
 public:
  LoggedProcess() = default;
  ~LoggedProcess() { stop(SIGKILL, std::chrono::seconds(10)); }
  LoggedProcess(const LoggedProcess&) = delete;
  LoggedProcess& operator=(const LoggedProcess&) = delete;

  // Starts argv with stdout and stderr appended to log_path. False if it
  // could not be spawned (or one is still running).
  bool start(const std::vector<std::string>& argv, const std::string& log_path) {
    if (pid_ > 0) return false;
    log_path_ = log_path;
    log_offset_ = file_size(log_path);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) return false;
    pid_ = pid;
    return true;
  }

  pid_t pid() const { return pid_; }

  // Everything this process wrote since start() that begins with `prefix` on
  // a line of its own: the rest of the first such line, or nullopt if none
  // came before the deadline or the process exited.
  std::optional<std::string> wait_for_line(const std::string& prefix, std::chrono::milliseconds deadline) {
    auto until = std::chrono::steady_clock::now() + deadline;
    for (;;) {
      std::string text = output();
      for (size_t at = 0; at < text.size();) {
        size_t nl = text.find('\n', at);
        if (nl == std::string::npos) break;  // a line still being written
        if (text.compare(at, prefix.size(), prefix) == 0) return text.substr(at + prefix.size(), nl - at - prefix.size());
        at = nl + 1;
      }
      if (std::chrono::steady_clock::now() >= until || exited()) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  // What this process wrote since start().
  std::string output() const {
    std::string all = read_file(log_path_);
    return all.size() > log_offset_ ? all.substr(log_offset_) : std::string();
  }

  // Sends `sig` and reaps the process: its exit code (128 + signal when
  // killed), or nullopt if it had not exited within the deadline (it is then
  // still running and still owned).
  std::optional<int> stop(int sig, std::chrono::milliseconds deadline) {
    if (pid_ <= 0) return std::nullopt;
    ::kill(pid_, sig);
    auto until = std::chrono::steady_clock::now() + deadline;
    for (;;) {
      if (exited()) return exit_code_;
      if (std::chrono::steady_clock::now() >= until) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  // Waits (bounded) for the process to exit on its own.
  std::optional<int> wait(std::chrono::milliseconds deadline) { return stop(0, deadline); }

 private:
  bool exited() {
    if (pid_ <= 0) return true;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) != pid_) return false;
    pid_ = -1;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return true;
  }

  static size_t file_size(const std::string& path) {
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    return in ? static_cast<size_t>(in.tellg()) : 0;
  }

  pid_t pid_ = -1;
  int exit_code_ = 0;
  std::string log_path_;
  size_t log_offset_ = 0;
};

}  // namespace usher::test
