// The edges of docs/semantics.md, end to end: the real `usher serve` calls a
// scripted step service (scripted_service.h) that times out, refuses, answers
// in bytes that are not JSON or not UTF-8, cuts its replies short, or is slow
// while usher is killed. The service's own record of what reached it, and
// when, is what these tests believe; the saga and its events through the API
// are checked against it.
//
// Each test quotes the rule it proves:
//   "What may have happened stays so"            pivot, 409 after a timeout
//   "What never left did not happen"             connection refused
//   "A 2xx is a success"                         plain text, cut-off body
//   "The saga deadline does not cut an attempt short"
//   "Text from services is stored as valid UTF-8"
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "e2e_harness.h"
#include "support/dead_port.h"
#include "scripted_service.h"

using namespace usher::e2e;
using usher::test::dead_port;

namespace {

// One saga's calls as the service saw them, in arrival order:
// "hold#1 hung; hold#2 409; release#1 200".
std::string calls(const ScriptedService& service, const std::string& saga_id) {
  std::string out;
  for (const Received& r : service.requests()) {
    if (r.saga_id != saga_id) continue;
    if (!out.empty()) out += "; ";
    out += r.path.substr(1) + "#" + std::to_string(r.attempt) + " " + r.answer;
  }
  return out;
}

// RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF.
bool is_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      n = 1, cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2, cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3, cp = c & 0x07;
    } else {
      return false;
    }
    for (size_t k = 1; k <= n; ++k) {
      if (i + k >= s.size()) return false;
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += n + 1;
  }
  return true;
}

// The saga once settled, and its events once the log holds the settling one:
// the API may show a status a moment before its event can be read.
std::pair<json, json> settled_with_events(const Server& server, const std::string& id,
                                          std::chrono::milliseconds limit) {
  json saga = server.settled(id, limit);
  json events;
  const bool logged = eventually(
      [&] {
        events = server.events(id);
        if (events.empty()) return false;
        const std::string last = events.back()["type"];
        return last == "SagaCompleted" || last == "SagaCompensated" || last == "SagaStuck";
      },
      5s);
  CHECK_MESSAGE(logged, "saga " << id << " is " << saga["status"] << " but its log does not say so");
  return {saga, events};
}

// How many events are named `name` as event_names() spells them.
size_t count_named(const json& events, const std::string& name) {
  auto names = event_names(events);
  return static_cast<size_t>(std::count(names.begin(), names.end(), name));
}

// The events of one type (and step), in order.
std::vector<json> events_of(const json& events, const std::string& type, const std::string& step = "") {
  std::vector<json> out;
  for (const json& e : events)
    if (e["type"] == type && (step.empty() || e["step"] == step)) out.push_back(e);
  return out;
}

// The events as event_names() spells them, joined: what a failed check shows.
std::string summary(const json& events) {
  std::string out;
  for (const std::string& name : event_names(events)) out += (out.empty() ? "" : ", ") + name;
  return out;
}

// The first event named as event_names() spells it ("StepScheduled hold:compensate").
json event(const json& events, const std::string& name) {
  const long i = index_of(event_names(events), name);
  REQUIRE_MESSAGE(i >= 0, "no event " << name);
  return events[static_cast<size_t>(i)];
}

bool mentions(std::string text, const std::vector<std::string>& any_of) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const auto& s : any_of)
    if (text.find(s) != std::string::npos) return true;
  return false;
}

const json kOrder = {{"order", "o-1"}};

// A seat hold that can be undone, and a payment after it; `charge` reaches
// `PAY` (the scripted service unless a test points it elsewhere).
const char* const kHoldThenPay = R"(saga: hold-then-pay
version: 1
services:
  shop:     { http: { url: "URL" } }
  payments: { http: { url: "PAY" } }
defaults:
  timeout: 300ms
  retry: { attempts: 3, backoff: 10ms, multiplier: 2, max_backoff: 40ms }
  compensation_retry: { attempts: 3, backoff: 10ms, multiplier: 2, max_backoff: 40ms }
steps:
  - name: reserve
    call: shop.hold
    with: { seat: "B12" }
    compensate:
      call: shop.release
      with: { holdId: "${steps.reserve.output.holdId:-unknown-hold}", seat: "B12" }
  - name: pay
    call: payments.charge
    with: { amount: 120, reference: "${saga.id}" }
    compensate:
      call: payments.refund
      with: { paymentId: "${steps.pay.output.paymentId:-unknown-payment}", reference: "${saga.id}" }
)";

std::string hold_then_pay(const std::string& pay_url) {
  std::string y = kHoldThenPay;
  y.replace(y.find("PAY"), 3, pay_url);
  return y;
}

// A hold, the pivot that issues the ticket, and a notification after it.
const char* const kBooking = R"(saga: booking
version: 1
services:
  shop: { http: { url: "URL" } }
defaults:
  timeout: 300ms
  retry: { attempts: 3, backoff: 10ms, multiplier: 2, max_backoff: 40ms }
  compensation_retry: { attempts: 3, backoff: 10ms, multiplier: 2, max_backoff: 40ms }
steps:
  - name: reserve
    call: shop.hold
    with: { seat: "B12" }
    compensate:
      call: shop.release
      with: { holdId: "${steps.reserve.output.holdId:-unknown-hold}" }
  - name: confirm
    type: pivot
    call: shop.issue
    with: { seat: "B12" }
  - name: notify
    type: retriable
    call: shop.send
    with: { seat: "B12" }
)";

}  // namespace

// "What may have happened stays so … a pivot that may have happened and then
// fails makes the saga stuck — it is never followed by compensations."
TEST_CASE("a pivot that timed out and then got 503s is stuck, never compensated") {
  TempDir dir;
  ScriptedService shop;
  write_yaml(dir, "booking", kBooking, shop.url());
  shop.script("/hold", {Behaviour::reply(200, R"({"holdId":"h-1"})")});
  shop.script("/issue", {Behaviour::hang(), Behaviour::reply(503, "busy", "text/plain")});
  Server server(dir);

  auto r = server.start(kOrder, "", "", "booking");
  REQUIRE(r.status == 201);
  const std::string id = r.json()["id"];
  auto [saga, events] = settled_with_events(server, id, 10s);

  CHECK(saga["status"] == "stuck");
  // Attempt 1 may have issued the ticket; 2 and 3 said "not now". Nothing is
  // undone: the hold is not released, and notify is never reached.
  CHECK(calls(shop, id) == "hold#1 200; issue#1 hung; issue#2 503; issue#3 503");
  CHECK(shop.count("/release") == 0);
  CHECK(shop.count("/send") == 0);

  const std::string history = summary(events);
  CAPTURE(history);
  CHECK(compensation_plan(events) == "");
  CHECK(count_named(events, "StepScheduled reserve:action") == 1);
  REQUIRE(!events.empty());
  CHECK(events.back()["type"] == "SagaStuck");
  CHECK(events.back()["step"] == "confirm");
  // The operator is told why: the ticket may exist.
  const std::string stuck_error = events.back()["data"].value("error", std::string());
  CHECK_MESSAGE(mentions(stuck_error, {"may have", "might have"}), "SagaStuck error: " << stuck_error);
  CHECK_MESSAGE(mentions(saga.value("error", std::string()), {"may have", "might have"}), "saga error: " << saga["error"]);
}

// "… later attempts cannot take that back: their transient failures, a 409
// 'in progress' or even a business failure leave the step 'may have happened'.
// Such a step is compensated when the saga compensates."
TEST_CASE("a step that timed out and then got a 409 is compensated, since it may have happened") {
  TempDir dir;
  ScriptedService shop;
  write_yaml(dir, "hold-then-pay", hold_then_pay(shop.url()), shop.url());
  shop.script("/hold", {Behaviour::hang(), Behaviour::reply(409, R"({"error":"hold in progress"})")});
  Server server(dir);

  auto r = server.start(kOrder, "", "", "hold-then-pay");
  REQUIRE(r.status == 201);
  const std::string id = r.json()["id"];
  auto [saga, events] = settled_with_events(server, id, 10s);

  CHECK(saga["status"] == "compensated");
  CHECK(calls(shop, id) == "hold#1 hung; hold#2 409; release#1 200");
  CHECK(shop.count("/charge") == 0);
  CHECK(saga["steps"][0]["status"] == "compensated");

  const std::string history = summary(events);
  CAPTURE(history);
  CHECK(compensation_plan(events) == "reserve");
  CHECK(compensated_order(events) == "reserve");
  CHECK(events.back()["type"] == "SagaCompensated");
  // The hold's output is unknown, so the release carries the default.
  auto releases = shop.requests("/release");
  REQUIRE(releases.size() == 1);
  CHECK(json::parse(releases[0].body)["holdId"] == "unknown-hold");
  CHECK(releases[0].idempotency_key == id + ":reserve:compensate");
}

// "Text from services is stored as valid UTF-8: error bodies and reasons are
// cut on a character boundary (at most 512 bytes) and invalid bytes become
// U+FFFD. No answer a service can give, however malformed, stops a saga from
// reaching completed, compensated or stuck."
TEST_CASE("a 422 whose body is not clean UTF-8 compensates at once and stores its text as valid UTF-8") {
  std::string body;
  std::string content_type;
  SUBCASE("2 KB of multibyte UTF-8, cut inside characters") {
    // "€" is 3 bytes: bytes 200 and 512 (200 = 3*66+2, 512 = 3*170+2) fall
    // inside one, and so does the end (2048 = 3*682+2).
    std::string euros;
    while (euros.size() < 2048) euros += "\xE2\x82\xAC";
    body = euros.substr(0, 2048);
    REQUIRE((static_cast<unsigned char>(body[200]) & 0xC0) == 0x80);  // a continuation byte
    REQUIRE((static_cast<unsigned char>(body[512]) & 0xC0) == 0x80);
    content_type = "text/plain; charset=utf-8";
  }
  SUBCASE("Latin-1") {
    body = "Zahlung abgelehnt: Kartenpr\xFC" "fung f\xFC" "r M\xFC" "ller fehlgeschlagen, se\xF1" "or \xE9t\xE9 \xA3\xB0";
    content_type = "text/plain; charset=iso-8859-1";
  }
  SUBCASE("binary with NUL and terminal escapes") {
    static const char kBinary[] = "\x00\x01\x1B[31mRED\x1B[0m\x1B]0;owned\x07\r\n\xFF\xFE\xC0\x80\xED\xA0\x80";
    body.assign(kBinary, sizeof kBinary - 1);
    for (int i = 0; i < 256; ++i) body.push_back(static_cast<char>(i));
    content_type = "application/octet-stream";
  }
  CAPTURE(content_type);

  TempDir dir;
  ScriptedService shop;
  write_yaml(dir, "hold-then-pay", hold_then_pay(shop.url()), shop.url());
  shop.script("/hold", {Behaviour::reply(200, R"({"holdId":"h-1"})")});
  shop.script("/charge", {Behaviour::reply(422, body, content_type)});
  Server server(dir);

  auto r = server.start(kOrder, "", "", "hold-then-pay");
  REQUIRE(r.status == 201);
  const std::string id = r.json()["id"];
  auto [saga, events] = settled_with_events(server, id, 5s);

  CHECK(saga["status"] == "compensated");
  // One charge: a business failure is not retried, and storing its text does
  // not make usher send it again. Not refunded (it did not happen); the hold
  // is released.
  CHECK(calls(shop, id) == "hold#1 200; charge#1 422; release#1 200");
  CHECK(shop.count("/charge") == 1);
  CHECK(shop.count("/refund") == 0);
  CHECK(saga["steps"][1]["status"] == "failed");
  CHECK(saga["steps"][1]["attempts"] == 1);

  const json& error = saga["steps"][1]["error"];
  REQUIRE_MESSAGE(error.is_string(), "the step's error: " << error.dump());
  const std::string text = error.get<std::string>();
  CHECK(is_utf8(text));
  CHECK(text.size() <= 512);
  CHECK(text.find("422") != std::string::npos);
  CHECK(text.find('\x1B') == std::string::npos);
  CHECK(text.find('\0') == std::string::npos);

  const std::string history = summary(events);
  CAPTURE(history);
  auto failed = events_of(events, "StepFailed", "pay");
  REQUIRE(failed.size() == 1);
  const std::string logged = failed[0]["data"].value("error", std::string());
  CHECK(is_utf8(logged));
  CHECK(logged.size() <= 512);
  CHECK(compensation_plan(events) == "reserve");
  CHECK(events.back()["type"] == "SagaCompensated");
}

// "A 2xx is a success, whatever its body: a body that is not JSON … gives the
// output {} (the event notes it)."
TEST_CASE("a pivot answered 200 with plain text succeeds once with output {}") {
  TempDir dir;
  ScriptedService shop;
  write_yaml(dir, "booking", kBooking, shop.url());
  shop.script("/hold", {Behaviour::reply(200, R"({"holdId":"h-1"})")});
  shop.script("/issue", {Behaviour::reply(200, "ticket issued", "text/plain")});
  Server server(dir);

  auto r = server.start(kOrder, "", "", "booking");
  REQUIRE(r.status == 201);
  const std::string id = r.json()["id"];
  auto [saga, events] = settled_with_events(server, id, 10s);

  CHECK(saga["status"] == "completed");
  CHECK(calls(shop, id) == "hold#1 200; issue#1 200; send#1 200");
  CHECK(saga["steps"][1]["status"] == "succeeded");
  CHECK(saga["steps"][1]["output"] == json::object());

  const std::string history = summary(events);
  CAPTURE(history);
  CHECK(compensation_plan(events) == "");
  CHECK(count_named(events, "StepScheduled confirm:action") == 1);
  CHECK(output_of(events, "StepSucceeded confirm:action") == json::object());
  CHECK(events.back()["type"] == "SagaCompleted");
}

// "What never left did not happen. An attempt that never reached the service —
// connection refused … — did not happen. A step all of whose attempts are such
// is not compensated: the saga goes straight on to the compensations before it."
TEST_CASE("a step whose service refuses every connection is not compensated; the steps before it are") {
  TempDir dir;
  ScriptedService shop;
  const std::string dead = "http://127.0.0.1:" + std::to_string(dead_port());
  write_yaml(dir, "hold-then-pay", hold_then_pay(dead), shop.url());
  shop.script("/hold", {Behaviour::reply(200, R"({"holdId":"h-1"})")});
  Server server(dir);

  auto r = server.start(kOrder, "", "", "hold-then-pay");
  REQUIRE(r.status == 201);
  const std::string id = r.json()["id"];
  auto [saga, events] = settled_with_events(server, id, 10s);

  CHECK(saga["status"] == "compensated");
  CHECK(calls(shop, id) == "hold#1 200; release#1 200");
  CHECK(saga["steps"][0]["status"] == "compensated");
  CHECK(saga["steps"][1]["status"] == "failed");
  CHECK(saga["steps"][1]["attempts"] == 3);
  CHECK(saga["steps"][1]["compensation"].is_null());

  const std::string history = summary(events);
  CAPTURE(history);
  CHECK(events_of(events, "StepFailed", "pay").size() == 3);
  CHECK(compensation_plan(events) == "reserve");
  CHECK(index_of(event_names(events), "StepScheduled pay:compensate") == -1);
  CHECK(compensated_order(events) == "reserve");
  CHECK(events.back()["type"] == "SagaCompensated");
  // At once: the release is the next call after the last refused charge.
  const auto last_refusal = millis_of(events_of(events, "StepFailed", "pay").back()["occurred_at"]);
  const auto release = millis_of(event(events, "StepScheduled reserve:compensate")["occurred_at"]);
  CHECK(release - last_refusal < 1000);
}

// "The saga deadline does not cut an attempt short. A step in flight when the
// deadline passes is awaited — its answer, or its own attempt timeout — and is
// not retried; then compensation starts, that step included … A compensation
// is never sent while its own action is in flight."
TEST_CASE("a saga deadline passing while a step is in flight waits for its answer, then compensates it with its output") {
  TempDir dir;
  ScriptedService shop;
  write_yaml(dir, "deadline", R"(saga: deadline
version: 1
services:
  shop: { http: { url: "URL" } }
timeout: 1s
defaults:
  timeout: 300ms
  retry: { attempts: 3, backoff: 10ms, multiplier: 2, max_backoff: 40ms }
  compensation_retry: { attempts: 3, backoff: 10ms, multiplier: 2, max_backoff: 40ms }
steps:
  - name: book
    call: shop.book
    with: { seat: "B12" }
    compensate:
      call: shop.unbook
      with: { bookingId: "${steps.book.output.bookingId:-unknown-booking}" }
  - name: hold
    call: shop.hold
    timeout: 5s
    with: { seat: "B12" }
    compensate:
      call: shop.release
      with: { holdId: "${steps.hold.output.holdId:-unknown-hold}" }
  - name: pay
    call: shop.charge
    with: { amount: 120 }
)",
             shop.url());
  shop.script("/book", {Behaviour::reply(200, R"({"bookingId":"b-7"})")});
  shop.script("/hold", {Behaviour::reply(200, R"({"holdId":"h-42"})").after(2s)});
  Server server(dir);

  auto r = server.start(kOrder, "", "", "deadline");
  REQUIRE(r.status == 201);
  const std::string id = r.json()["id"];
  auto [saga, events] = settled_with_events(server, id, 15s);

  CHECK(saga["status"] == "compensated");
  // The hold went once (the deadline stops retries, not the attempt), its
  // release after its answer, then the booking's.
  CHECK(calls(shop, id) == "book#1 200; hold#1 200; release#1 200; unbook#1 200");
  CHECK(shop.count("/charge") == 0);

  auto holds = shop.requests("/hold");
  auto releases = shop.requests("/release");
  auto unbooks = shop.requests("/unbook");
  REQUIRE(holds.size() == 1);
  REQUIRE(holds[0].answered.has_value());
  REQUIRE(releases.size() >= 1);
  REQUIRE(unbooks.size() >= 1);
  CHECK_MESSAGE(releases[0].received >= *holds[0].answered,
                "the release arrived "
                    << std::chrono::duration_cast<std::chrono::milliseconds>(*holds[0].answered - releases[0].received)
                           .count()
                    << " ms before the hold was answered");
  // The release names the hold the service really made.
  CHECK(json::parse(releases[0].body)["holdId"] == "h-42");
  CHECK(json::parse(unbooks[0].body)["bookingId"] == "b-7");
  CHECK(unbooks[0].received >= releases[0].received);

  const std::string history = summary(events);
  CAPTURE(history);
  CHECK(count_named(events, "StepScheduled hold:action") == 1);
  CHECK(compensation_plan(events) == "hold,book");
  CHECK(compensated_order(events) == "hold,book");
  CHECK(mentions(event(events, "CompensationStarted")["data"].value("reason", std::string()), {"deadline"}));
  CHECK(index_of(event_names(events), "StepScheduled pay:action") == -1);
  CHECK(events.back()["type"] == "SagaCompensated");
}

// "A reply cut off or over the size limit after a 2xx status line is still a
// success, of unknown output."
TEST_CASE("a 200 cut off mid-body is a success: not retried, the saga goes on and completes") {
  TempDir dir;
  ScriptedService shop;
  write_yaml(dir, "hold-then-pay", hold_then_pay(shop.url()), shop.url());
  shop.script("/hold", {Behaviour::cut_off()});
  shop.script("/charge", {Behaviour::reply(200, R"({"paymentId":"p-1"})")});
  Server server(dir);

  auto r = server.start(kOrder, "", "", "hold-then-pay");
  REQUIRE(r.status == 201);
  const std::string id = r.json()["id"];
  auto [saga, events] = settled_with_events(server, id, 10s);

  CHECK(saga["status"] == "completed");
  CHECK(calls(shop, id) == "hold#1 cut; charge#1 200");
  CHECK(shop.count("/release") == 0);
  CHECK(saga["steps"][0]["status"] == "succeeded");
  CHECK(saga["steps"][0]["attempts"] == 1);

  const std::string history = summary(events);
  CAPTURE(history);
  CHECK(count_named(events, "StepScheduled reserve:action") == 1);
  CHECK(events_of(events, "StepFailed").empty());
  CHECK(compensation_plan(events) == "");
  CHECK(events.back()["type"] == "SagaCompleted");
}

// Section 3 asks that text from outside be stored as valid UTF-8; a start
// whose key or correlation id is not UTF-8 is the client's mistake (400), not
// a failure of the server (503).
TEST_CASE("a start whose Idempotency-Key or X-Correlation-Id is not UTF-8 is refused with 400") {
  std::string header;
  SUBCASE("Idempotency-Key") { header = "Idempotency-Key"; }
  SUBCASE("X-Correlation-Id") { header = "X-Correlation-Id"; }
  CAPTURE(header);

  TempDir dir;
  ScriptedService shop;
  write_yaml(dir, "booking", kBooking, shop.url());
  Server server(dir);

  const std::string body = R"({"order":"o-1"})";
  const std::string request = "POST /v1/workflows/booking/sagas HTTP/1.1\r\n"
                              "Host: 127.0.0.1\r\n"
                              "Content-Type: application/json\r\n" +
                              header + ": order-\xFF\xFE-\xC3\x28-\xED\xA0\x80\r\n" +
                              "Content-Length: " + std::to_string(body.size()) + "\r\n"
                              "Connection: close\r\n\r\n" + body;
  auto r = usher::test::raw_request(server.port(), request);
  CHECK(r.status == 400);
  CHECK(r.header("Content-Type") == "application/problem+json");
  CHECK(r.json().is_object());
  CHECK(r.json()["detail"].is_string());

  // Nothing was started, and the server is well.
  auto list = usher::test::request(server.port(), http::verb::get, "/v1/sagas");
  REQUIRE(list.status == 200);
  CHECK(list.json()["sagas"].empty());
  CHECK(shop.requests().empty());
  CHECK(usher::test::request(server.port(), http::verb::get, "/healthz").status == 200);
  // The same start with a clean value goes through.
  auto ok = server.start(kOrder, "order-1", "", "booking");
  CHECK(ok.status == 201);
}

namespace {

// How many sagas of `workflow` the server lists with `status`, page by page.
size_t count_sagas(const Server& server, const std::string& workflow, const std::string& status) {
  size_t n = 0;
  std::string after;
  for (;;) {
    std::string target = "/v1/sagas?workflow=" + workflow + "&status=" + status + "&limit=1000";
    if (!after.empty()) target += "&after=" + after;
    auto r = usher::test::request(server.port(), http::verb::get, target, "", {}, 30s);
    REQUIRE_MESSAGE(r.status == 200, "GET " << target << ": " << r.status << " " << r.error << r.body);
    json page = r.json();
    n += page["sagas"].size();
    if (!page["next"].is_string()) return n;
    after = page["next"].get<std::string>();
  }
}

int recovery_sagas() {
  const char* v = std::getenv("USHER_E2E_RECOVERY_SAGAS");
  return v && std::atoi(v) > 0 ? std::atoi(v) : 2000;
}

}  // namespace

// docs/reliability.md ("kill -9 … every saga whose start was acknowledged
// reaches completed or compensated") against a slow service, with section 3's
// budget: "retry.attempts counts every try". A service that answers every
// request with 200 after 200 ms, 64 at a time, gives no saga a reason to fail:
// the calls usher sends again after the restart, and the ones it holds back
// while the service is busy, must not use up the budget nor be compensated.
TEST_CASE("after a SIGKILL with many sagas in flight against a slow service, every saga completes within its retry budget") {
  const int n = recovery_sagas();
  constexpr int kAttempts = 3;
  TempDir dir;
  ScriptedService slow(/*max_concurrent=*/64);
  write_yaml(dir, "slow", R"(saga: slow
version: 1
services:
  slow: { http: { url: "URL" } }
defaults:
  timeout: 2s
  retry: { attempts: 3, backoff: 50ms, multiplier: 2, max_backoff: 200ms }
  compensation_retry: { attempts: unlimited, backoff: 50ms, multiplier: 2, max_backoff: 200ms }
steps:
  - name: hold
    call: slow.hold
    with: { n: "${input.n}" }
    compensate:
      call: slow.release
      with: { holdId: "${steps.hold.output.holdId:-unknown-hold}" }
  - name: confirm
    call: slow.confirm
    with: { holdId: "${steps.hold.output.holdId}" }
)",
             slow.url());
  slow.script("/hold", {Behaviour::reply(200, R"({"holdId":"h"})").after(200ms)});

  std::vector<std::string> ids(static_cast<size_t>(n));
  {
    Server first(dir);
    std::atomic<int> next{0};
    std::atomic<int> refused{0};
    std::string first_refusal;
    std::mutex mu;
    std::vector<std::thread> clients;
    for (int t = 0; t < 8; ++t)
      clients.emplace_back([&] {
        for (int i; (i = next++) < n;) {
          auto r = first.start({{"n", i}}, "", "", "slow");
          if (r.status == 201) {
            ids[static_cast<size_t>(i)] = r.json()["id"];
            continue;
          }
          std::lock_guard lock(mu);
          if (refused++ == 0) first_refusal = std::to_string(r.status) + " " + r.error + r.body;
        }
      });
    for (auto& c : clients) c.join();
    REQUIRE_MESSAGE(refused == 0, refused << " starts were not acknowledged; the first: " << first_refusal);
    auto killed = first.child().signal_and_wait(SIGKILL, 5s);
    REQUIRE(killed.has_value());
  }
  const size_t done_at_kill = slow.count("/confirm");
  MESSAGE((n - static_cast<long>(done_at_kill)) << " of " << n << " sagas had not reached confirm at the kill");
  CHECK(done_at_kill < static_cast<size_t>(n));

  const auto restarted = std::chrono::steady_clock::now();
  Server server(dir);
  const auto limit = 30s + std::chrono::milliseconds(15) * n;
  const bool settled = eventually(
      [&] {
        return count_sagas(server, "slow", "running") == 0 && count_sagas(server, "slow", "compensating") == 0;
      },
      std::chrono::duration_cast<std::chrono::milliseconds>(limit));
  MESSAGE("settled " << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                                restarted)
                            .count()
                     << " ms after the restart");
  CHECK(settled);

  CHECK(count_sagas(server, "slow", "completed") == static_cast<size_t>(n));
  const size_t compensated = count_sagas(server, "slow", "compensated");
  CHECK(compensated == 0);
  if (compensated > 0) {  // show one, for whoever reads the failure
    auto r = usher::test::request(server.port(), http::verb::get, "/v1/sagas?workflow=slow&status=compensated&limit=1");
    const std::string id = r.json()["sagas"][0]["id"];
    MESSAGE("saga " << id << ": " << summary(server.events(id)) << "\n  calls: " << calls(slow, id)
                    << "\n  error: " << r.json()["sagas"][0]["error"]);
  }
  CHECK(count_sagas(server, "slow", "stuck") == 0);
  CHECK(slow.count("/release") == 0);

  // No attempt number past the budget, and every saga confirmed.
  int max_attempt = 0;
  std::string worst;
  std::set<std::string> confirmed;
  for (const Received& r : slow.requests()) {
    if (r.attempt > max_attempt) max_attempt = r.attempt, worst = r.idempotency_key;
    if (r.path == "/confirm" && r.answer == "200") confirmed.insert(r.saga_id);
  }
  CHECK_MESSAGE(max_attempt <= kAttempts, worst << " was sent with X-Usher-Attempt " << max_attempt);
  // What the service's side looked like: a request usher sent waits there
  // only when usher has more calls out than the service has workers.
  std::chrono::milliseconds longest{0};
  int connections = 0;
  for (const Received& r : slow.requests()) {
    connections = std::max(connections, r.connection);
    if (r.answered)
      longest = std::max(longest, std::chrono::duration_cast<std::chrono::milliseconds>(*r.answered - r.received));
  }
  MESSAGE(slow.requests().size() << " requests on " << connections << " connections; the longest wait for an answer "
                                 << longest.count() << " ms");
  CHECK(confirmed.size() == static_cast<size_t>(n));
  // Spot check through the API: the first and the last saga started.
  for (const std::string& id : {ids.front(), ids.back()}) {
    json saga = server.saga(id);
    CHECK(saga["status"] == "completed");
    CHECK(saga["steps"][0]["attempts"].get<int>() <= kAttempts);
  }
}
