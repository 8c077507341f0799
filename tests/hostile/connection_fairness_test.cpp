// One client holding connections cannot lock others out (issue 17, item 4):
// against the real `usher serve`, a client opens idle sockets up to and past
// the server's limits, from the same loopback address as everyone else or
// from another one (127.0.0.2), and everybody else is still answered at once.
// Connections that are answering a request are never the ones closed.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <fstream>
#include <thread>
#include <vector>

#include "hostile/hostile_rig.h"

using namespace usher::test::hostile;
using usher::test::TempDir;

namespace {

// Open connections that have sent nothing.
std::vector<int> open_idle(uint16_t port, int n, const char* from = nullptr) {
  std::vector<int> fds;
  for (int i = 0; i < n; ++i) {
    int fd = connect_to(port, from);
    REQUIRE(fd >= 0);
    fds.push_back(fd);
    // Accepted one by one, so "longest waiting" has an order to follow.
    std::this_thread::sleep_for(milliseconds(5));
  }
  std::this_thread::sleep_for(milliseconds(200));  // every one accepted and counted
  return fds;
}

// True when the server closed `fd` within `within` without sending anything.
bool closed_silently(int fd, milliseconds within) {
  Received r = read_until_close(fd, within);
  return r.closed && r.data.empty();
}

void close_all(std::vector<int>& fds) {
  for (int fd : fds) ::close(fd);
  fds.clear();
}

// A long poll of the event feed (nothing happens on this server): the
// connection is busy answering a request for `wait`.
const std::string kLongPoll = "GET /v1/events?wait=4s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";

// A new client that is served and keeps its connection (keep-alive), so
// that it holds a slot as the idle sockets do. Returns the status.
int served_and_kept(uint16_t port, std::vector<int>& kept) {
  int fd = connect_to(port);
  REQUIRE(fd >= 0);
  kept.push_back(fd);
  send_all(fd, kHealthz);
  Received r = read_until_close(fd, milliseconds(300));
  CHECK(!r.closed);
  auto got = statuses(r.data);
  return got.size() == 1 ? got[0] : 0;
}

}  // namespace

TEST_CASE("fairness: idle sockets filling the table cannot lock out a new client; the longest-waiting ones are closed") {
  TempDir dir;
  const int limit = 16;
  Server server(dir, Limits{.max_connections = limit, .idle_timeout = "60s", .first_request_timeout = "60s"});
  std::vector<int> idle = open_idle(server.port, limit);

  // Before: a full table of idle sockets answered everyone else 503 until
  // idle_timeout, and the attacker renewed them. Now each newcomer is served
  // at once, in place of the socket that had waited longest.
  // (The newcomers keep their connections, so each needs a slot of its own.)
  const int newcomers = 6;
  std::vector<int> kept;
  for (int i = 0; i < newcomers; ++i) CHECK(served_and_kept(server.port, kept) == 200);
  // The oldest idle sockets went first, in order; the newer ones stay open.
  for (int i = 0; i < newcomers; ++i) CHECK_MESSAGE(closed_silently(idle[i], seconds(2)), "idle socket " << i);
  for (int i = newcomers; i < limit; ++i) CHECK_MESSAGE(!closed_silently(idle[i], milliseconds(50)), "idle socket " << i);
  close_all(idle);
  close_all(kept);
  CHECK(server.process.output().find("closed a waiting one from 127.0.0.1") != std::string::npos);
  server.check_still_serving();
}

TEST_CASE("fairness: one address holding busy connections gets 503 past its share; another address is served") {
  TempDir dir;
  Server server(dir, Limits{.max_connections = 16, .idle_timeout = "60s", .max_connections_per_address = 4});
  // 127.0.0.2 opens ten connections, each answering a long poll: busy, so
  // none can be closed for a newcomer. Four fit its share; the rest are refused.
  std::vector<int> polls;
  int refused = 0;
  for (int i = 0; i < 10; ++i) {
    int fd = connect_to(server.port, "127.0.0.2");
    REQUIRE(fd >= 0);
    // A refused connection is answered at once, before any request.
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) == 1) {
      Received r = read_until_close(fd, seconds(2));
      CHECK(statuses(r.data) == std::vector<int>{503});
      CHECK(r.data.find("Retry-After: 1") != std::string::npos);
      ++refused;
      ::close(fd);
    } else {
      send_all(fd, kLongPoll);
      polls.push_back(fd);
      std::this_thread::sleep_for(milliseconds(50));  // read, and being answered
    }
  }
  CHECK(polls.size() == 4);
  CHECK(refused == 6);
  // Everybody else still has the rest of the table.
  for (int i = 0; i < 5; ++i) {
    auto health = usher::test::request(server.port, http::verb::get, "/healthz", "", {}, seconds(5));
    CHECK(health.status == 200);
  }
  // And the busy ones were never cut off: each long poll gets its answer.
  for (int fd : polls) {
    Received r = read_until_close(fd, seconds(8));
    CHECK(statuses(r.data) == std::vector<int>{200});
  }
  close_all(polls);

  // Idle sockets from one address past its share push out that address's
  // own oldest, never another client's.
  std::vector<int> mine = open_idle(server.port, 3);  // 127.0.0.1
  std::vector<int> theirs = open_idle(server.port, 8, "127.0.0.2");
  for (int i = 0; i < 4; ++i) CHECK(closed_silently(theirs[i], seconds(2)));
  for (int fd : mine) CHECK(!closed_silently(fd, milliseconds(50)));
  close_all(mine);
  close_all(theirs);
  server.check_still_serving();
}

TEST_CASE("fairness: when every connection is busy a newcomer gets 503, and the busy ones are answered") {
  TempDir dir;
  Server server(dir, Limits{.max_connections = 2, .idle_timeout = "60s"});
  std::vector<int> polls;
  for (int i = 0; i < 2; ++i) {
    int fd = connect_to(server.port);
    REQUIRE(fd >= 0);
    send_all(fd, kLongPoll);
    polls.push_back(fd);
  }
  std::this_thread::sleep_for(milliseconds(200));
  auto refused = usher::test::request(server.port, http::verb::get, "/healthz", "", {}, seconds(5));
  CHECK(refused.status == 503);
  CHECK(refused.header("Retry-After") == "1");
  check_problem(refused, "every connection busy");
  for (int fd : polls) {
    Received r = read_until_close(fd, seconds(8));
    CHECK(statuses(r.data) == std::vector<int>{200});
  }
  close_all(polls);
  server.check_still_serving();
}

TEST_CASE("fairness: a new connection must send its request by first_request_timeout; a served one may idle longer") {
  TempDir dir;
  Server server(dir, Limits{.idle_timeout = "30s", .read_timeout = "30s", .first_request_timeout = "1s"});
  SUBCASE("silent") {
    int fd = connect_to(server.port);
    REQUIRE(fd >= 0);
    auto began = Clock::now();
    CHECK(closed_silently(fd, seconds(5)));
    CHECK(Clock::now() - began >= milliseconds(800));
    ::close(fd);
  }
  SUBCASE("a header dribbled a line at a time") {
    int fd = connect_to(server.port);
    REQUIRE(fd >= 0);
    auto began = Clock::now();
    bool cut = !send_all(fd, "GET /healthz HTTP/1.1\r\n");
    for (int i = 0; !cut && i < 40; ++i) {
      std::this_thread::sleep_for(milliseconds(200));
      cut = !send_all(fd, "X-Slow-" + std::to_string(i) + ": a\r\n") || closed_silently(fd, milliseconds(1));
    }
    CHECK(cut);
    CHECK(Clock::now() - began < seconds(4));  // the first request's deadline, not read_timeout (30 s)
    ::close(fd);
  }
  SUBCASE("a connection that was served keeps idle_timeout") {
    int fd = connect_to(server.port);
    REQUIRE(fd >= 0);
    send_all(fd, kHealthz);
    Received first = read_until_close(fd, milliseconds(500));
    CHECK(statuses(first.data) == std::vector<int>{200});
    CHECK(!first.closed);
    std::this_thread::sleep_for(milliseconds(1500));
    send_all(fd, kHealthz);
    Received second = read_until_close(fd, milliseconds(500));
    CHECK(statuses(second.data) == std::vector<int>{200});
    CHECK(!second.closed);
    ::close(fd);
  }
  server.check_still_serving();
}

TEST_CASE("fairness: a request without the token is answered 401 and its connection closed") {
  TempDir dir;
  const std::string token_file = dir.file("token");
  std::ofstream(token_file) << "fairness-token\n";
  ::chmod(token_file.c_str(), 0600);
  Server server(dir, Limits{.idle_timeout = "30s"}, {"--token-file", token_file});
  Received r = send_and_read(server.port, "GET /v1/workflows HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", seconds(3));
  CHECK(statuses(r.data) == std::vector<int>{401});
  CHECK(r.closed);  // at once: the deadline above is far from idle_timeout
  auto ok = usher::test::request(server.port, http::verb::get, "/v1/workflows", "",
                                 {{"Authorization", "Bearer fairness-token"}}, seconds(5));
  CHECK(ok.status == 200);
}
