// The event feed of the API: GET /v1/events (pages, long poll) through the
// handler, and GET /v1/events/stream (Server-Sent Events) over a real socket.
#include <doctest/doctest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <future>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "serve/test_http.h"
#include "server_fixture.h"

using namespace usher;
using namespace usher::test;
using namespace std::chrono_literals;

namespace {

int64_t cursor_value(const Json& cursor) {
  REQUIRE(cursor.is_string());
  return std::stoll(cursor.get<std::string>());
}

// Starts a booking and waits for it to complete; returns its id.
std::string completed_booking(ApiFixture& f, const std::string& seat) {
  auto r = f.post("/v1/workflows/booking/sagas?wait=5s", R"({"seat":")" + seat + R"(","amount":5})");
  REQUIRE(r.status == 201);
  REQUIRE(r.json["status"] == "completed");
  return r.json["id"].get<std::string>();
}

// Every event of the feed, followed page by page from the start.
std::vector<Json> whole_feed(ApiFixture& f, const std::string& limit) {
  std::vector<Json> all;
  std::string after;
  for (int pages = 0; pages < 1000; ++pages) {
    auto r = f.get("/v1/events?limit=" + limit + (after.empty() ? "" : "&after=" + after));
    REQUIRE(r.status == 200);
    if (r.json["events"].empty()) {
      CHECK(r.json["next"] == (after.empty() ? "0" : after));
      return all;
    }
    for (const Json& e : r.json["events"]) all.push_back(e);
    CHECK(r.json["next"] == r.json["events"].back()["cursor"]);
    after = r.json["next"].get<std::string>();
  }
  FAIL("the feed never ended");
  return all;
}

}  // namespace

TEST_CASE("GET /v1/events reads every event of every saga once, in commit order, page by page") {
  ApiFixture f;
  const std::string a = completed_booking(f, "A1");
  const std::string b = completed_booking(f, "B2");

  auto all = f.get("/v1/events?limit=1000");
  REQUIRE(all.status == 200);
  const Json& events = all.json["events"];
  REQUIRE(events.size() >= 8);

  std::map<std::string, int64_t> last_seq;
  int64_t last_cursor = 0;
  for (const Json& e : events) {
    for (const char* field : {"cursor", "saga_id", "workflow", "seq", "type", "step", "data", "occurred_at"})
      CHECK_MESSAGE(e.contains(field), field << " missing in " << e.dump());
    CHECK(e["workflow"] == "booking");
    const int64_t cursor = cursor_value(e["cursor"]);
    CHECK(cursor > last_cursor);  // commit order
    last_cursor = cursor;
    const std::string id = e["saga_id"].get<std::string>();
    CHECK(e["seq"].get<int64_t>() == last_seq[id] + 1);  // each saga's in seq order, none left out
    last_seq[id] = e["seq"].get<int64_t>();
    if (e["seq"] == 1) CHECK(e["type"] == "SagaStarted");
  }
  CHECK(last_seq.size() == 2);
  CHECK(last_seq.contains(a));
  CHECK(last_seq.contains(b));
  // The events of a saga are the ones GET /v1/sagas/{id}/events lists.
  auto own = f.get("/v1/sagas/" + a + "/events");
  REQUIRE(own.status == 200);
  CHECK(static_cast<int64_t>(own.json["events"].size()) == last_seq[a]);

  SUBCASE("pages of 3, each continued from `next`, hold the same events") {
    auto paged = whole_feed(f, "3");
    REQUIRE(paged.size() == events.size());
    for (size_t i = 0; i < paged.size(); ++i) CHECK(paged[i] == events[i]);
  }
  SUBCASE("after the last event: an empty page whose `next` is the same cursor") {
    const std::string end = all.json["next"].get<std::string>();
    auto r = f.get("/v1/events?after=" + end);
    REQUIRE(r.status == 200);
    CHECK(r.json["events"].empty());
    CHECK(r.json["next"] == end);
  }
  SUBCASE("without `after` the feed starts at the beginning; the default page is 100") {
    auto r = f.get("/v1/events");
    REQUIRE(r.status == 200);
    CHECK(r.json["events"].size() == std::min<size_t>(100, events.size()));
    CHECK(r.json["events"].front() == events.front());
  }
}

TEST_CASE("GET /v1/events refuses what is not a cursor, a limit or a wait, naming the parameter") {
  ApiFixture f;
  struct Case {
    std::string target, says;
  };
  for (const Case& c : {Case{"/v1/events?after=abc", "\"abc\" is not a feed cursor"},
                        Case{"/v1/events?after=-5", "\"-5\" is not a feed cursor"},
                        Case{"/v1/events?limit=0", "limit=\"0\" must be an integer from 1 to 1000"},
                        Case{"/v1/events?limit=1001", "limit=\"1001\""},
                        Case{"/v1/events?wait=soon", "wait=\"soon\" is not a duration"},
                        Case{"/v1/events?cursor=5", "unknown query parameter \"cursor\""},
                        Case{"/v1/events/stream?limit=5", "GET /v1/events/stream accepts after"}}) {
    auto r = f.get(c.target);
    CHECK_MESSAGE(r.status == 400, c.target);
    CHECK_MESSAGE(r.json.value("detail", "").find(c.says) != std::string::npos, c.target << ": " << r.body);
  }
  CHECK(f.call(boost::beast::http::verb::post, "/v1/events").status == 405);
}

TEST_CASE("a long poll on /v1/events answers as soon as an event is committed, or empty when its wait runs out") {
  ApiFixture f;
  completed_booking(f, "A1");
  const std::string end = f.get("/v1/events?limit=1000").json["next"].get<std::string>();

  SUBCASE("nothing new: an empty page after the wait") {
    const auto began = std::chrono::steady_clock::now();
    auto r = f.get("/v1/events?after=" + end + "&wait=300ms");
    const auto took = std::chrono::steady_clock::now() - began;
    REQUIRE(r.status == 200);
    CHECK(r.json["events"].empty());
    CHECK(r.json["next"] == end);
    CHECK(took >= 300ms);
  }
  SUBCASE("a saga starts while the poll waits: its first events are the answer") {
    const auto began = std::chrono::steady_clock::now();
    auto poll = std::async(std::launch::async, [&] { return f.get("/v1/events?after=" + end + "&wait=15s"); });
    // The poll is waiting (its wait is far from over) when the saga starts.
    REQUIRE(poll.wait_for(200ms) == std::future_status::timeout);
    const std::string id = completed_booking(f, "B2");
    auto r = poll.get();
    const auto took = std::chrono::steady_clock::now() - began;
    REQUIRE(r.status == 200);
    REQUIRE_FALSE(r.json["events"].empty());
    CHECK(r.json["events"][0]["saga_id"] == id);
    CHECK(r.json["events"][0]["seq"] == 1);
    CHECK(cursor_value(r.json["events"][0]["cursor"]) > cursor_value(Json(end)));
    CHECK(took < 10s);  // woken by the commit, not by the end of its wait
  }
  SUBCASE("the server drains: a waiting poll is answered at once with what there is") {
    auto poll = std::async(std::launch::async, [&] { return f.get("/v1/events?after=" + end + "&wait=15s"); });
    REQUIRE(poll.wait_for(200ms) == std::future_status::timeout);
    f.handler->drain();
    f.engine->drain(Millis{1000});
    REQUIRE(poll.wait_for(5s) == std::future_status::ready);
    auto r = poll.get();
    CHECK(r.status == 200);
    CHECK(r.json["events"].empty());
  }
}

namespace {

// A Server-Sent Events client on a plain socket: sends the request, then
// reads the chunked body until `enough` events came or the deadline.
struct SseRead {
  std::string head;                       // status line and header
  std::vector<std::pair<std::string, Json>> events;  // (id, data)
  bool retry_sent = false;
};

SseRead read_sse(uint16_t port, const std::string& target, const std::map<std::string, std::string>& headers,
                 size_t enough, std::function<void()> after_first = {}, std::chrono::seconds deadline = 10s) {
  namespace asio = boost::asio;
  asio::io_context io;
  asio::ip::tcp::socket socket(io);
  socket.connect({asio::ip::make_address("127.0.0.1"), port});
  std::string req = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n";
  for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
  req += "\r\n";
  asio::write(socket, asio::buffer(req));
  timeval tv{1, 0};  // reads wake up every second to check the deadline
  ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

  SseRead out;
  std::string raw;
  size_t parsed = 0;  // bytes of `raw` already split into lines
  bool called = false;
  const auto until = std::chrono::steady_clock::now() + deadline;
  std::string id;
  while (out.events.size() < enough && std::chrono::steady_clock::now() < until) {
    char buf[4096];
    boost::system::error_code ec;
    size_t n = socket.read_some(asio::buffer(buf), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) continue;
    if (ec) break;
    raw.append(buf, n);
    if (out.head.empty()) {
      size_t end = raw.find("\r\n\r\n");
      if (end == std::string::npos) continue;
      out.head = raw.substr(0, end);
      parsed = end + 4;
    }
    // Chunk-size lines are lines of their own: each piece is a whole chunk.
    for (size_t nl; (nl = raw.find('\n', parsed)) != std::string::npos; parsed = nl + 1) {
      std::string line = raw.substr(parsed, nl - parsed);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.rfind("retry: ", 0) == 0) out.retry_sent = true;
      if (line.rfind("id: ", 0) == 0) id = line.substr(4);
      if (line.rfind("data: ", 0) == 0) out.events.emplace_back(id, Json::parse(line.substr(6), nullptr, false));
    }
    if (!called && !out.events.empty() && after_first) {
      called = true;
      after_first();
    }
  }
  return out;
}

}  // namespace

TEST_CASE("GET /v1/events/stream sends the feed as Server-Sent Events, live, and resumes after Last-Event-ID") {
  ServerFixture f;
  completed_booking(f, "A1");
  completed_booking(f, "B2");
  auto all = f.get("/v1/events?limit=1000").json["events"];
  REQUIRE(all.size() >= 8);

  SUBCASE("from the start: every event, `id:` its cursor, `data:` the event; then events committed while it streams") {
    std::string third;
    const size_t want = all.size() + 1;  // and at least the next saga's first event
    auto read = read_sse(f.port, "/v1/events/stream", {}, want, [&] { third = completed_booking(f, "C3"); });
    CHECK(read.head.find("HTTP/1.1 200") == 0);
    CHECK(read.head.find("Content-Type: text/event-stream") != std::string::npos);
    CHECK(read.head.find("Transfer-Encoding: chunked") != std::string::npos);
    CHECK(read.retry_sent);
    REQUIRE(read.events.size() >= want);
    for (size_t i = 0; i < all.size(); ++i) {
      CHECK(read.events[i].second == all[i]);
      CHECK(read.events[i].first == all[i]["cursor"]);
    }
    CHECK(read.events[all.size()].second["saga_id"] == third);
    CHECK(read.events[all.size()].second["seq"] == 1);
  }
  SUBCASE("a reconnecting client's Last-Event-ID wins over ?after: the stream goes on right after it") {
    const size_t from = 3;
    auto read = read_sse(f.port, "/v1/events/stream?after=0", {{"Last-Event-ID", all[from]["cursor"].get<std::string>()}},
                         all.size() - from - 1);
    REQUIRE(read.events.size() == all.size() - from - 1);
    CHECK(read.events.front().second == all[from + 1]);
    CHECK(read.events.back().second == all.back());
  }
  SUBCASE("a bad cursor is a 400 before any stream opens") {
    auto r = request(f.port, boost::beast::http::verb::get, "/v1/events/stream?after=x1");
    CHECK(r.status == 400);
  }
  SUBCASE("stopping the server ends an open stream") {
    auto reader = std::async(std::launch::async, [&] { return read_sse(f.port, "/v1/events/stream", {}, 1000, {}, 20s); });
    std::this_thread::sleep_for(300ms);  // the stream is open and idle
    const auto began = std::chrono::steady_clock::now();
    f.server->stop(Millis{5000});
    REQUIRE(reader.wait_for(5s) == std::future_status::ready);
    CHECK(std::chrono::steady_clock::now() - began < 3s);  // not held for the grace
    CHECK(reader.get().events.size() == all.size());
  }
}
