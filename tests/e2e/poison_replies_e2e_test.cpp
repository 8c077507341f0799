// No reply is a poison pill (issue 17, item 2), through the real `usher serve`
// and a real HTTP service: a 2xx nested 200,000 levels deep once overflowed
// the server's stack while deciding the next step, and again at every
// restart, since recovery sent the step again and got the same answer. Now it
// is a success with output {}, and a server killed while such a reply is on
// its way comes back up and finishes the saga. An error text of a megabyte of
// terminal escapes is stored as 512 bytes of plain text.
#include <doctest/doctest.h>
#include <sys/wait.h>

#include "e2e_harness.h"
#include "scripted_service.h"

using namespace usher::e2e;

namespace {

const char* const kTwoSteps = R"(saga: poison
version: 1
services:
  shop: { http: { url: "URL" } }
defaults:
  timeout: 5s
  retry: { attempts: 3, backoff: 100ms }
steps:
  - name: reserve
    call: shop.hold
    with: { seat: "${input.seat}" }
    compensate: { call: shop.release, with: {} }
  - name: confirm
    call: shop.confirm
    with: { hold: "${steps.reserve.output}" }
)";

const std::string kDeep = std::string(200'000, '[') + std::string(200'000, ']');

// True while the server has not exited. waitid with WNOWAIT looks without
// reaping, so the Child can still reap it; kill(pid, 0) would also be true of
// a server that crashed and is a zombie.
bool alive(Server& server) {
  siginfo_t info{};
  return ::waitid(P_PID, static_cast<id_t>(server.child().pid()), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
         info.si_pid == 0;
}

}  // namespace

TEST_CASE("poison reply: a 2xx nested 200,000 levels deep is a success with output {}, and the server stays up") {
  TempDir dir;
  ScriptedService shop;
  shop.script("/hold", {Behaviour::reply(200, kDeep)});
  write_yaml(dir, "poison", kTwoSteps, shop.url());
  Server server(dir);
  auto r = server.start({{"seat", "A1"}}, "", "", "poison");
  REQUIRE(r.status == 201);
  const std::string id = r.json()["id"];
  json saga = server.settled(id, 10s);
  CHECK(saga["status"] == "completed");
  CHECK(saga["steps"][0]["output"] == json::object());
  const json events = server.events(id);
  const long succeeded = index_of(event_names(events), "StepSucceeded reserve:action");
  REQUIRE(succeeded >= 0);
  CHECK(events[static_cast<size_t>(succeeded)]["data"]["note"] == "the reply is nested deeper than 64 levels");
  CHECK(alive(server));
  // Sent once: a 2xx is a success, not a reason to try again.
  size_t holds = 0;
  for (const Received& q : shop.requests()) holds += q.path == "/hold";
  CHECK(holds == 1);
}

TEST_CASE("poison reply: a server killed while a 200,000-level reply is on its way recovers and completes the saga") {
  TempDir dir;
  ScriptedService shop;
  // The first answer comes late enough to kill the server before it; the
  // repeat after the restart is the same poison, at once.
  shop.script("/hold", {Behaviour::reply(200, kDeep).after(3s), Behaviour::reply(200, kDeep)});
  write_yaml(dir, "poison", kTwoSteps, shop.url());
  std::string id;
  {
    Server first(dir);
    auto r = first.start({{"seat", "A1"}}, "", "", "poison");
    REQUIRE(r.status == 201);
    id = r.json()["id"];
    REQUIRE(eventually([&] { return !shop.requests().empty(); }, 5s));
    // ~Server SIGKILLs it with the call in flight.
  }
  Server second(dir);
  json saga = second.settled(id, 15s);
  CHECK(saga["status"] == "completed");
  CHECK(saga["steps"][0]["output"] == json::object());
  CHECK(alive(second));
  // And a third start of the server, over the finished saga, is as quiet.
  CHECK(second.saga(id)["status"] == "completed");
}

TEST_CASE("poison reply: a megabyte of terminal escapes as an error body is stored as at most 512 bytes without them") {
  TempDir dir;
  ScriptedService shop;
  std::string body = "\x1b]0;pwned\x07\x1b[2J\x9b" "31m";
  while (body.size() < (1 << 20)) body += "\x1b[5m blink \r\n";
  shop.script("/hold", {Behaviour::reply(422, body, "text/plain")});
  write_yaml(dir, "poison", kTwoSteps, shop.url());
  Server server(dir);
  auto r = server.start({{"seat", "A1"}}, "", "", "poison");
  REQUIRE(r.status == 201);
  const std::string id = r.json()["id"];
  json saga = server.settled(id, 10s);
  CHECK(saga["status"] == "compensated");
  const std::string error = saga["steps"][0]["error"].get<std::string>();
  CHECK(error.size() <= 512);
  for (unsigned char c : error) CHECK_MESSAGE((c >= 0x20 && c != 0x7F), "control byte " << int(c) << " in " << error);
  CHECK(error.find("\xc2\x9b") == std::string::npos);
  CHECK(alive(server));
}
