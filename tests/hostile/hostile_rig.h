// What the hostile suites share: `usher serve` on the shipped workflows with
// tight limits from a usher.yaml written here, and raw sockets to talk to it
// as a misbehaving client would (from any 127.0.0.0/8 address, so that one
// machine can play several clients).
#pragma once

#include <doctest/doctest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "chaos/usher_process.h"
#include "serve/test_http.h"
#include "support/temp_dir.h"

namespace usher::test::hostile {

using nlohmann::json;
namespace http = boost::beast::http;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

struct Limits {
  int max_connections = 64;
  std::string idle_timeout = "1s";
  std::string read_timeout = "3s";
  int max_header_bytes = 8192;
  int max_connections_per_address = 512;
  std::string first_request_timeout = "10s";
};

// `usher serve` on the shipped workflows with `limits`, its stdout and stderr in one file.
struct Server {
  explicit Server(const TempDir& dir, Limits limits = {}, std::vector<std::string> extra = {}) {
    {
      std::ofstream config(dir.file("usher.yaml"));
      config << "limits:\n  max_connections: " << limits.max_connections << "\n  idle_timeout: " << limits.idle_timeout
             << "\n  read_timeout: " << limits.read_timeout << "\n  max_header_bytes: " << limits.max_header_bytes
             << "\n  max_connections_per_address: " << limits.max_connections_per_address
             << "\n  first_request_timeout: " << limits.first_request_timeout << "\n";
    }
    std::vector<std::string> argv = {USHER_BINARY_DIR "/cli/usher", "serve", "--config", dir.file("usher.yaml"), "--db",
                                     dir.file("usher.db"), "--workflows", USHER_SOURCE_DIR "/workflows", "--listen",
                                     "127.0.0.1:0", "--log-level", "warn"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    REQUIRE(process.start(argv, dir.file("server.log")));
    auto rest = process.wait_for_line("usher: listening on 127.0.0.1:", seconds(30));
    REQUIRE_MESSAGE(rest.has_value(), "usher serve did not start:\n" << process.output());
    port = static_cast<uint16_t>(std::stoi(*rest));
  }

  // The server is alive and answers a normal request at once.
  void check_still_serving() {
    auto started = Clock::now();
    auto health = usher::test::request(port, http::verb::get, "/healthz", "", {}, seconds(5));
    CHECK(health.status == 200);
    auto workflows = usher::test::request(port, http::verb::get, "/v1/workflows", "", {}, seconds(5));
    CHECK(workflows.status == 200);
    CHECK(Clock::now() - started < milliseconds(1500));
    CHECK_MESSAGE(::kill(process.pid(), 0) == 0, "usher serve is gone:\n" << process.output());
  }

  usher::test::LoggedProcess process;
  uint16_t port = 0;
};

// A blocking TCP connection to 127.0.0.1:port, or -1; from the loopback
// address `from` (127.0.0.1 by default: any of 127.0.0.0/8 works on Linux).
inline int connect_to(uint16_t port, const char* from = nullptr) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (from) {
    sockaddr_in local{};
    local.sin_family = AF_INET;
    ::inet_pton(AF_INET, from, &local.sin_addr);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
      ::close(fd);
      return -1;
    }
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

inline bool send_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

struct Received {
  std::string data;
  bool closed = false;  // the server closed (or reset) the connection before the deadline
};

// Reads until the server closes the connection or the deadline passes.
inline Received read_until_close(int fd, milliseconds deadline) {
  Received r;
  auto until = Clock::now() + deadline;
  for (;;) {
    auto left = std::chrono::duration_cast<milliseconds>(until - Clock::now()).count();
    if (left <= 0) return r;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    char chunk[4096];
    ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) {
      r.closed = true;
      return r;
    }
    r.data.append(chunk, static_cast<size_t>(n));
  }
}

// Sends `bytes` on a fresh connection and reads everything until the server closes it.
inline Received send_and_read(uint16_t port, const std::string& bytes, milliseconds deadline = seconds(5)) {
  int fd = connect_to(port);
  REQUIRE(fd >= 0);
  send_all(fd, bytes);  // the server may close before it has read everything: that is its right
  Received r = read_until_close(fd, deadline);
  ::close(fd);
  return r;
}

// The status codes of the responses in `data`, in order.
inline std::vector<int> statuses(const std::string& data) {
  std::vector<int> out;
  for (size_t at = data.find("HTTP/1.1 "); at != std::string::npos; at = data.find("HTTP/1.1 ", at + 1))
    if (at == 0 || data[at - 1] == '\n' || data[at - 1] == '}')  // a response starts after the previous body
      out.push_back(std::atoi(data.c_str() + at + 9));
  return out;
}

// An error answer must be RFC 9457 problem+json whose `status` matches, with a detail.
inline void check_problem(const usher::test::HttpReply& r, const std::string& what) {
  INFO(what << " -> " << r.status << " " << r.body);
  CHECK(r.header("Content-Type") == "application/problem+json");
  json body = r.json();
  REQUIRE(body.is_object());
  CHECK(body["status"] == r.status);
  CHECK(body["title"].is_string());
  CHECK(body["detail"].is_string());
}

inline const std::string kHealthz = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

}  // namespace usher::test::hostile
