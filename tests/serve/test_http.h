// Test helpers for talking to real servers on 127.0.0.1: a one-request Beast
// client with a deadline, a raw-bytes client, and child processes that are
// killed when the test ends. Header-only so tests/adapters/http/api and tests/serve share it.
#pragma once

#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

extern char** environ;

namespace usher::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

struct HttpReply {
  unsigned status = 0;  // 0: no answer (connection failed, reset or deadline)
  std::string error;    // why there was no answer
  std::map<std::string, std::string> headers;
  std::string body;
  nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, false); }
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

// Sends `head` + `body` as raw bytes while reading the reply concurrently, so
// a server that answers before reading the whole body (413) is seen answering.
inline HttpReply raw_request(uint16_t port, std::string bytes, std::chrono::milliseconds deadline = std::chrono::seconds(10)) {
  asio::io_context io;
  HttpReply out;
  beast::tcp_stream stream(io);
  // Named lambdas: a coroutine lambda's captures live in the closure, which
  // must outlive the coroutine.
  auto writer = [&]() -> asio::awaitable<void> {
    co_await asio::async_write(stream.socket(), asio::buffer(bytes), asio::as_tuple(asio::use_awaitable));
  };
  auto reader = [&]() -> asio::awaitable<void> {
    constexpr auto tuple = asio::as_tuple(asio::use_awaitable);
    auto [cec] = co_await stream.async_connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), tuple);
    if (cec) {
      out.error = "connect: " + cec.message();
      co_return;
    }
    // The write runs beside the read; its failure (the server closed early) is expected and ignored.
    asio::co_spawn(io, writer(), asio::detached);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 << 20);
    auto [ec, n] = co_await http::async_read(stream.socket(), buffer, parser, tuple);
    (void)n;
    if (ec) {
      out.error = "read: " + ec.message();
      co_return;
    }
    auto& res = parser.get();
    out.status = res.result_int();
    for (const auto& f : res) out.headers[std::string(f.name_string())] = std::string(f.value());
    out.body = res.body();
  };
  asio::co_spawn(io, reader(), asio::detached);
  io.run_for(deadline);
  if (!out.status && out.error.empty()) out.error = "no answer before the deadline";
  return out;
}

// One HTTP/1.1 request on a new connection.
inline HttpReply request(uint16_t port, http::verb method, const std::string& target, const std::string& body = "",
                         const std::map<std::string, std::string>& headers = {},
                         std::chrono::milliseconds deadline = std::chrono::seconds(10)) {
  http::request<http::string_body> req{method, target, 11};
  req.set(http::field::host, "127.0.0.1");
  for (const auto& [k, v] : headers) req.set(k, v);
  if (!body.empty() || method == http::verb::post) {
    req.body() = body;
    req.set(http::field::content_type, "application/json");
  }
  req.keep_alive(false);
  req.prepare_payload();
  std::ostringstream bytes;
  bytes << req;
  return raw_request(port, bytes.str(), deadline);
}

// A child process with its stdout on a pipe; SIGKILLed and reaped on destruction.
class Child {
 public:
  Child(const std::vector<std::string>& argv) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    int rc = posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    out_ = fds[0];
    REQUIRE_MESSAGE(rc == 0, "cannot start " << argv[0]);
  }
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (out_ >= 0) ::close(out_);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }

  // The next line the child prints on stdout, or nullopt at the deadline / EOF.
  std::optional<std::string> read_line(std::chrono::milliseconds deadline = std::chrono::seconds(20)) {
    auto until = std::chrono::steady_clock::now() + deadline;
    for (;;) {
      if (size_t nl = buf_.find('\n'); nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return line;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{out_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char chunk[4096];
      ssize_t n = ::read(out_, chunk, sizeof chunk);
      if (n <= 0) return std::nullopt;
      buf_.append(chunk, static_cast<size_t>(n));
    }
  }

  // Sends `sig` and waits up to `deadline` for the exit; the exit status, or nullopt if still running.
  std::optional<int> signal_and_wait(int sig, std::chrono::milliseconds deadline) {
    ::kill(pid_, sig);
    auto until = std::chrono::steady_clock::now() + deadline;
    while (std::chrono::steady_clock::now() < until) {
      int status = 0;
      pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      ::usleep(10'000);
    }
    return std::nullopt;
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  std::string buf_;
};

// The port `usher serve` (started with --listen 127.0.0.1:0) says it
// listens on: the rest of its "usher: listening on 127.0.0.1:" line.
inline uint16_t listening_port(Child& server) {
  const std::string prefix = "usher: listening on 127.0.0.1:";
  for (;;) {
    auto line = server.read_line();
    REQUIRE_MESSAGE(line.has_value(), "usher serve did not say where it listens");
    if (line->rfind(prefix, 0) == 0) return static_cast<uint16_t>(std::stoi(line->substr(prefix.size())));
  }
}

}  // namespace usher::test
