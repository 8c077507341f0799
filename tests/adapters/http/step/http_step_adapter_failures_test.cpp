// What each way an HTTP attempt can go wrong means (docs/semantics.md):
// never sent, unknown, or decided by the status that was read — and that every
// text a service can put in an error is stored as valid, bounded UTF-8.
#include <doctest/doctest.h>
#include <poll.h>
#include <sys/socket.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "call_helpers.h"
#include "http/step/http_step_adapter.h"
#include "usher/service_text.h"
#include "test_server.h"

using namespace usher;
using namespace usher::test;
using namespace std::chrono_literals;

namespace {

using tcp = boost::asio::ip::tcp;

// A listening socket that never accepts, its backlog full: the kernel drops
// further SYNs, so a connect to it gets no answer, as from a host that is down.
class Blackhole {
 public:
  Blackhole() : acceptor_(io_) {
    acceptor_.open(tcp::v4());
    acceptor_.bind({boost::asio::ip::make_address("127.0.0.1"), 0});
    acceptor_.listen(0);
    const tcp::endpoint at = acceptor_.local_endpoint();
    for (int i = 0; i < 16 && !full_; ++i) {
      tcp::socket s(io_);
      s.open(tcp::v4());
      s.non_blocking(true);
      // POSIX connect: asio's own waits for the answer even on a non-blocking socket.
      (void)::connect(s.native_handle(), at.data(), static_cast<socklen_t>(at.size()));  // in progress
      pollfd p{s.native_handle(), POLLOUT, 0};
      full_ = ::poll(&p, 1, 200) == 0;  // this one got no answer: the queue is full
      fillers_.push_back(std::move(s));
    }
  }
  bool full() const { return full_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()); }

 private:
  boost::asio::io_context io_;
  tcp::acceptor acceptor_;
  std::vector<tcp::socket> fillers_;
  bool full_ = false;
};

TestReply raw(std::string bytes, bool hang = false) {
  TestReply r;
  r.raw = std::move(bytes);
  r.hang = hang;
  return r;
}

// Checks the contract on stored text: valid UTF-8, at most 512 bytes, one line.
void check_storable(const std::string& text) {
  CAPTURE(text);
  CHECK(is_valid_utf8(text));
  CHECK(text.size() <= kMaxServiceTextBytes);
  for (char c : text) CHECK(static_cast<unsigned char>(c) >= 0x20);
}

}  // namespace

TEST_CASE("an attempt that never reached the service is not sent") {
  HttpStepAdapter adapter;
  SUBCASE("a name that does not resolve") {
    StepCall c = make_call("http://no-such-host.invalid:8080");
    StepResult r = call_sync(adapter, std::move(c));
    CHECK(r.outcome == Outcome::kTransient);
    CHECK_FALSE(r.sent);
    CHECK(r.error.starts_with("step \"reserve\": cannot resolve \"no-such-host.invalid\""));
  }
  SUBCASE("a connection not made within the timeout") {
    Blackhole hole;
    REQUIRE_MESSAGE(hole.full(), "could not fill the listen backlog");
    StepCall c = make_call(hole.url());
    c.timeout = 300ms;
    StepResult r = call_sync(adapter, std::move(c));
    CHECK(r.outcome == Outcome::kTransient);
    CHECK_FALSE(r.sent);
    CHECK(r.error == "step \"reserve\": could not connect to " + hole.url().substr(7) + " within 300ms");
  }
}

TEST_CASE("a connection that breaks after the request was sent leaves the outcome unknown") {
  std::atomic<int> mode{0};
  TestServer server([&](const SeenRequest&) {
    TestReply r = reply(200, "{}");
    switch (mode.load()) {
      case 0: r.reset = true; break;
      case 1: r.drop = true; break;
      case 2: r = raw("HTTP/1.1 200 OK\r\nContent-Le"); break;  // cut inside the headers
      case 3: r = raw("SSH-2.0-OpenSSH_9.6\r\n\r\n"); break;     // not HTTP
    }
    return r;
  });
  HttpStepAdapter adapter;
  const std::string lost = "step \"reserve\": connection to 127.0.0.1:" + std::to_string(server.port()) +
                           " lost after the request was sent: ";
  SUBCASE("reset") {
    mode = 0;
    StepResult r = call_sync(adapter, make_call(server.url()));
    CHECK(r.outcome == Outcome::kTimeout);
    CHECK(r.sent);
    CHECK(r.error == lost + "Connection reset by peer");
  }
  SUBCASE("closed without a reply") {
    mode = 1;
    StepResult r = call_sync(adapter, make_call(server.url()));
    CHECK(r.outcome == Outcome::kTimeout);
    CHECK(r.sent);
    CHECK(r.error == lost + "end of stream");
  }
  SUBCASE("closed before the headers ended: no status was read") {
    mode = 2;
    StepResult r = call_sync(adapter, make_call(server.url()));
    CHECK(r.outcome == Outcome::kTimeout);
    CHECK(r.sent);
    CHECK(r.error == lost + "partial message");
  }
  SUBCASE("an answer that is not HTTP") {
    mode = 3;
    StepResult r = call_sync(adapter, make_call(server.url()));
    CHECK(r.outcome == Outcome::kTimeout);
    CHECK(r.sent);
    CHECK(r.error.starts_with("step \"reserve\": bad reply from 127.0.0.1:" + std::to_string(server.port()) + ": "));
  }
  CHECK(adapter.stats().stale_retries == 0);
  CHECK(server.requests() == 1);
}

TEST_CASE("a reply cut off after its status line: a 2xx is a success of unknown output, else the status decides") {
  std::string next;
  bool hang = false;
  std::mutex mu;
  TestServer server([&](const SeenRequest&) {
    std::lock_guard lock(mu);
    return raw(next, hang);
  });
  HttpStepAdapter adapter;
  auto answer = [&](std::string bytes, bool then_hang = false) {
    {
      std::lock_guard lock(mu);
      next = std::move(bytes);
      hang = then_hang;
    }
    StepCall c = make_call(server.url());
    c.timeout = 300ms;
    return call_sync(adapter, std::move(c));
  };
  SUBCASE("200, the connection closed mid-body") {
    StepResult r = answer("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"holdId\":");
    CHECK(r.outcome == Outcome::kOk);
    CHECK(r.output == Json::object());
    CHECK(r.note == "the reply was cut off: partial message");
  }
  SUBCASE("201 chunked, the connection closed mid-chunk") {
    StepResult r = answer("HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n{\"id\"");
    CHECK(r.outcome == Outcome::kOk);
    CHECK(r.note == "the reply was cut off: partial message");
  }
  SUBCASE("200, the body did not end before the deadline") {
    StepResult r = answer("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{", /*then_hang=*/true);
    CHECK(r.outcome == Outcome::kOk);
    CHECK(r.note == "the reply was cut off: it did not end within 300ms");
  }
  SUBCASE("503 cut off: transient, with what arrived") {
    StepResult r = answer("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 100\r\nRetry-After: 2\r\n\r\n"
                          "{\"error\":\"bu");
    CHECK(r.outcome == Outcome::kTransient);
    CHECK(r.error == "seats.hold: 503 {\"error\":\"bu (the reply was cut off: partial message)");
    CHECK(r.retry_after == Millis(2000));
  }
  SUBCASE("422 cut off: failed, with the reason phrase when nothing of the body arrived") {
    StepResult r = answer("HTTP/1.1 422 Unprocessable Entity\r\nContent-Length: 100\r\n\r\n");
    CHECK(r.outcome == Outcome::kFailed);
    CHECK(r.error == "seats.hold: 422 Unprocessable Entity (the reply was cut off: partial message)");
  }
}

TEST_CASE("every error a service's answer produces is valid UTF-8 of at most 512 bytes") {
  std::atomic<unsigned> status{422};
  std::string body;
  std::mutex mu;
  TestServer server([&](const SeenRequest&) {
    std::lock_guard lock(mu);
    return reply(status.load(), body);
  });
  HttpStepAdapter adapter;
  auto answer = [&](unsigned s, std::string b) {
    {
      std::lock_guard lock(mu);
      status = s;
      body = std::move(b);
    }
    return call_sync(adapter, make_call(server.url()));
  };
  SUBCASE("2 KB of multibyte UTF-8: cut on a character boundary") {
    std::string euros;
    for (int i = 0; i < 700; ++i) euros += "\xE2\x82\xAC";  // €
    StepResult r = answer(422, euros);
    CHECK(r.outcome == Outcome::kFailed);
    check_storable(r.error);
    CHECK(r.error.starts_with("seats.hold: 422 \xE2\x82\xAC\xE2\x82\xAC"));
    CHECK(r.error.ends_with("\xE2\x80\xA6"));  // …
  }
  SUBCASE("Latin-1: the invalid byte becomes U+FFFD") {
    StepResult r = answer(422, "\xE9" "chec");
    CHECK(r.outcome == Outcome::kFailed);
    CHECK(r.error == "seats.hold: 422 \xEF\xBF\xBD" "chec");
  }
  SUBCASE("binary with NULs and ESC: spaces, one line") {
    const char bytes[] = "\x00\x01\x1B[31mred\x00\xFF tail";
    StepResult r = answer(422, std::string(bytes, sizeof bytes - 1));
    CHECK(r.outcome == Outcome::kFailed);
    check_storable(r.error);
    CHECK(r.error == "seats.hold: 422 [31mred \xEF\xBF\xBD tail");
  }
  SUBCASE("a 503 with 2 KB of invalid bytes: transient, bounded") {
    StepResult r = answer(503, std::string(2048, '\xFE'));
    CHECK(r.outcome == Outcome::kTransient);
    check_storable(r.error);
  }
  SUBCASE("a 200 in Latin-1: a success, and the note is valid UTF-8") {
    StepResult r = answer(200, "\xE9" "chec");
    CHECK(r.outcome == Outcome::kOk);
    CHECK(r.note == "the reply is not JSON: \xEF\xBF\xBD" "chec");
  }
}

// An attacker's service (or one whose reply was bent by injected bytes) sends
// two replies to one request. The second must never be read as the answer to
// the next call: a connection with bytes left after a reply is not reused.
TEST_CASE("a connection with bytes left after a reply is closed, never reused: replies cannot shift between calls") {
  std::atomic<int> n{0};
  TestServer server([&](const SeenRequest&) {
    if (n++ == 0)
      return raw("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
                 "HTTP/1.1 200 OK\r\nContent-Length: 17\r\n\r\n{\"holdId\":\"evil\"}",
                 /*hang=*/true);
    TestReply r;
    r.body = R"({"holdId":"mine"})";
    return r;
  });
  HttpStepAdapter adapter;
  StepResult first = call_sync(adapter, make_call(server.url()));
  CHECK(first.outcome == Outcome::kOk);
  CHECK(first.output == Json::object());
  StepResult second = call_sync(adapter, make_call(server.url()));
  CHECK(second.outcome == Outcome::kOk);
  CHECK(second.output == Json{{"holdId", "mine"}});
  CHECK(adapter.stats().connections_opened == 2);
  CHECK(server.requests() == 2);
}

TEST_CASE("a target with a space or a control character is not sent") {
  TestServer server([](const SeenRequest&) { return TestReply{}; });
  HttpStepAdapter adapter;
  StepCall c = make_call(server.url());
  c.http_path = "/holds/a b";  // only a path that did not come through render_path can hold this
  StepResult r = call_sync(adapter, std::move(c));
  CHECK(r.outcome == Outcome::kFailed);
  CHECK_FALSE(r.sent);
  CHECK(r.error.find("request not sent") != std::string::npos);
  CHECK(server.requests() == 0);
}
