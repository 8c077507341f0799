// End to end over HTTP: the real `usher serve` drives the real example step
// services. What each service logged (arrival order, Idempotency-Key,
// X-Usher-Attempt, status) is what these tests believe; usher's own view (the
// saga and its events through the API) is checked against it.
#include <doctest/doctest.h>

#include <atomic>
#include <set>
#include <thread>

#include "e2e_harness.h"

using namespace usher::e2e;

TEST_CASE("a completed booking passes typed values and step outputs from step to step") {
  TempDir dir;
  Services services;
  write_workflow(dir, services);
  Server server(dir);

  auto r = server.start(booking(120, 2), "", "10s");
  REQUIRE(r.status == 201);
  json saga = r.json();
  const std::string id = saga["id"];
  REQUIRE(saga["status"] == "completed");

  // Integers from the input reach the services as integers: hold-parking
  // refuses a non-integer `spaces` (400) and charge a non-number `amount`,
  // and both echo what they received.
  const json& steps = saga["steps"];
  CHECK(steps[1]["output"]["spaces"].is_number_integer());
  CHECK(steps[1]["output"]["spaces"] == 2);
  CHECK(steps[2]["output"]["amount"].is_number_integer());
  CHECK(steps[2]["output"]["amount"] == 120);
  CHECK(steps[2]["output"]["reference"] == id);  // ${saga.id}
  // tickets.issue echoes its body: the outputs of reserve, parking and pay
  // reached it.
  CHECK(steps[3]["output"]["holdId"] == steps[0]["output"]["holdId"]);
  CHECK(steps[3]["output"]["parkingHoldId"] == steps[1]["output"]["holdId"]);
  CHECK(steps[3]["output"]["paymentId"] == steps[2]["output"]["paymentId"]);
  CHECK(steps[0]["output"]["holdId"] != steps[1]["output"]["holdId"]);

  // Each action went once, with its own key and attempt 1; nothing undone.
  CHECK(trace(services.log("seats"), id) == "hold reserve:action#1 200; hold-parking parking:action#1 200");
  CHECK(trace(services.log("payments"), id) == "charge pay:action#1 200");
  CHECK(trace(services.log("tickets"), id) == "issue confirm:action#1 200");
  CHECK(trace(services.log("notifier"), id) == "send notify:action#1 200");
  CHECK(compensation_plan(server.events(id)) == "");
}

TEST_CASE("a business failure at step 3 compensates steps 2 and 1 in that order") {
  TempDir dir;
  Services services;
  write_workflow(dir, services);
  Server server(dir);

  SUBCASE("payment declined: the two holds are released, parking first") {
    services.control("payments", "charge", "decline", 1);
    auto r = server.start(booking(120), "", "10s");
    REQUIRE(r.status == 201);
    json saga = r.json();
    const std::string id = saga["id"];
    REQUIRE(saga["status"] == "compensated");
    CHECK(saga["steps"][0]["status"] == "compensated");
    CHECK(saga["steps"][1]["status"] == "compensated");
    CHECK(saga["steps"][2]["status"] == "failed");
    CHECK(saga["steps"][3]["status"] == "pending");

    // One service saw both holds and both releases: its arrival order is the
    // compensation order, each release after its own hold.
    CHECK(trace(services.log("seats"), id) ==
          "hold reserve:action#1 200; hold-parking parking:action#1 200; "
          "release parking:compensate#1 200; release reserve:compensate#1 200");
    // A declined charge is a definite refusal: not retried, not refunded.
    CHECK(trace(services.log("payments"), id) == "charge pay:action#1 422");
    CHECK(trace(services.log("tickets"), id) == "");
    CHECK(trace(services.log("notifier"), id) == "");
    json events = server.events(id);
    CHECK(compensation_plan(events) == "parking,reserve");
    CHECK(compensated_order(events) == "parking,reserve");
    CHECK(events.back()["type"] == "SagaCompensated");
  }

  SUBCASE("ticket refused at the pivot: refund, then the releases") {
    services.control("tickets", "issue", "decline", 1);
    auto r = server.start(booking(120), "", "10s");
    REQUIRE(r.status == 201);
    json saga = r.json();
    const std::string id = saga["id"];
    REQUIRE(saga["status"] == "compensated");
    CHECK(trace(services.log("payments"), id) == "charge pay:action#1 200; refund pay:compensate#1 200");
    CHECK(trace(services.log("seats"), id) ==
          "hold reserve:action#1 200; hold-parking parking:action#1 200; "
          "release parking:compensate#1 200; release reserve:compensate#1 200");
    CHECK(trace(services.log("tickets"), id) == "issue confirm:action#1 422");
    CHECK(trace(services.log("notifier"), id) == "");
    // Across two services the order comes from the log: the refund finished
    // before the first release was scheduled.
    json events = server.events(id);
    auto names = event_names(events);
    CHECK(compensation_plan(events) == "pay,parking,reserve");
    CHECK(compensated_order(events) == "pay,parking,reserve");
    CHECK(index_of(names, "StepSucceeded pay:compensate") < index_of(names, "StepScheduled parking:compensate"));
    // The refund named the payment the charge returned (refund echoes it).
    CHECK(saga["steps"][2]["output"]["paymentId"].is_string());
    CHECK(output_of(events, "StepSucceeded pay:compensate")["paymentId"] == saga["steps"][2]["output"]["paymentId"]);
    CHECK(output_of(events, "StepSucceeded parking:compensate")["holdId"] == saga["steps"][1]["output"]["holdId"]);
    CHECK(output_of(events, "StepSucceeded reserve:compensate")["holdId"] == saga["steps"][0]["output"]["holdId"]);
  }
}

TEST_CASE("transient 503s are retried with the same Idempotency-Key and increasing X-Usher-Attempt") {
  TempDir dir;
  Services services;
  write_workflow(dir, services);
  Server server(dir);
  services.control("payments", "charge", "transient", 2);

  auto r = server.start(booking(120), "", "10s");
  REQUIRE(r.status == 201);
  json saga = r.json();
  const std::string id = saga["id"];
  REQUIRE(saga["status"] == "completed");
  CHECK(saga["steps"][2]["attempts"] == 3);

  json log = services.log("payments");
  CHECK(trace(log, id) == "charge pay:action#1 503; charge pay:action#2 503; charge pay:action#3 200");
  for (const json& e : log) CHECK(e["idempotency_key"] == id + ":pay:action");
  CHECK(trace(services.log("seats"), id) == "hold reserve:action#1 200; hold-parking parking:action#1 200");
  CHECK(compensation_plan(server.events(id)) == "");
}

TEST_CASE("a hanging step times out, exhausts its retries and is compensated with the steps before it") {
  TempDir dir;
  Services services;
  write_workflow(dir, services);  // 300 ms per attempt, 3 attempts
  Server server(dir);
  services.control("payments", "charge", "hang", 3);

  auto r = server.start(booking(120), "", "20s");
  REQUIRE(r.status == 201);
  json saga = r.json();
  const std::string id = saga["id"];
  REQUIRE(saga["status"] == "compensated");
  CHECK(saga["steps"][2]["attempts"] == 3);
  CHECK(saga["steps"][2]["status"] == "compensated");
  CHECK(saga["steps"][2]["compensation"]["status"] == "succeeded");

  // The charge may have happened (no answer), so it is refunded; its output is
  // unknown, so the refund carries the default and the saga reference.
  CHECK(trace(services.log("payments"), id) ==
        "charge pay:action#1 hung; charge pay:action#2 hung; charge pay:action#3 hung; refund pay:compensate#1 200");
  CHECK(trace(services.log("seats"), id) ==
        "hold reserve:action#1 200; hold-parking parking:action#1 200; "
        "release parking:compensate#1 200; release reserve:compensate#1 200");
  CHECK(trace(services.log("tickets"), id) == "");

  json events = server.events(id);
  auto names = event_names(events);
  CHECK(compensation_plan(events) == "pay,parking,reserve");
  CHECK(compensated_order(events) == "pay,parking,reserve");
  CHECK(index_of(names, "StepSucceeded pay:compensate") < index_of(names, "StepScheduled parking:compensate"));
  // With no known output, the refund got the `:-default` of its expression.
  CHECK(output_of(events, "StepSucceeded pay:compensate")["paymentId"] == "unknown-payment");
  int timeouts = 0;
  for (const json& e : events)
    if (e["type"] == "StepFailed" && e["step"] == "pay") timeouts += e["data"]["outcome"] == "timeout";
  CHECK(timeouts == 3);
}

TEST_CASE("a failure after the pivot is retried until it succeeds and never compensated") {
  TempDir dir;
  Services services;
  write_workflow(dir, services);  // notify: unlimited attempts, 10 ms backoff
  Server server(dir);
  services.control("notifier", "send", "transient", 4);

  auto r = server.start(booking(120), "", "10s");
  REQUIRE(r.status == 201);
  json saga = r.json();
  const std::string id = saga["id"];
  REQUIRE(saga["status"] == "completed");
  CHECK(saga["steps"][4]["attempts"] == 5);

  CHECK(trace(services.log("notifier"), id) ==
        "send notify:action#1 503; send notify:action#2 503; send notify:action#3 503; "
        "send notify:action#4 503; send notify:action#5 200");
  // Not one release or refund.
  CHECK(trace(services.log("seats"), id) == "hold reserve:action#1 200; hold-parking parking:action#1 200");
  CHECK(trace(services.log("payments"), id) == "charge pay:action#1 200");
  CHECK(trace(services.log("tickets"), id) == "issue confirm:action#1 200");
  CHECK(compensation_plan(server.events(id)) == "");
}

TEST_CASE("cancel over the API: before the pivot it compensates once the step in flight times out") {
  TempDir dir;
  Services services;
  WorkflowOptions o;
  // Long enough that the cancel surely lands while the attempt is in flight.
  o.parking_timeout = "2s";
  write_workflow(dir, services, o);
  Server server(dir);
  services.control("seats", "hold-parking", "hang", 1);

  auto r = server.start(booking(120));
  REQUIRE(r.status == 201);
  const std::string id = r.json()["id"];
  REQUIRE(eventually([&] { return trace(services.log("seats"), id).ends_with("hold-parking parking:action#1 hung"); }));

  auto cancel = server.cancel(id);
  CHECK(cancel.status == 202);
  CHECK(cancel.json()["id"] == id);
  // Asking twice is harmless: the first request stands.
  CHECK(server.cancel(id).status == 202);

  json saga = server.settled(id);
  REQUIRE(saga["status"] == "compensated");
  CHECK(saga["steps"][1]["status"] == "compensated");
  // The hung hold may have happened, so it is released too; its release
  // arrives after it, and the cancel did not cause a second attempt.
  CHECK(trace(services.log("seats"), id) ==
        "hold reserve:action#1 200; hold-parking parking:action#1 hung; "
        "release parking:compensate#1 200; release reserve:compensate#1 200");
  CHECK(trace(services.log("payments"), id) == "");

  json events = server.events(id);
  auto names = event_names(events);
  CHECK(compensation_plan(events) == "parking,reserve");
  CHECK(output_of(events, "StepSucceeded parking:compensate")["holdId"] == "unknown-hold");
  const long cancelled = index_of(names, "CancelRequested");
  const long timed_out = index_of(names, "StepFailed parking:action");
  const long compensating = index_of(names, "CompensationStarted");
  CHECK(cancelled >= 0);
  CHECK(cancelled < timed_out);
  CHECK(timed_out < compensating);
  CHECK(events[timed_out]["data"]["outcome"] == "timeout");
  for (const json& e : events)
    if (e["type"] == "CompensationStarted") CHECK(e["data"]["reason"] == "cancelled by request");
  // usher waited for the attempt's own timeout before compensating.
  const auto sent = millis_of(events[index_of(names, "StepScheduled parking:action")]["occurred_at"]);
  const auto undone = millis_of(events[index_of(names, "StepScheduled parking:compensate")]["occurred_at"]);
  CHECK(undone - sent >= 1990);
}

TEST_CASE("cancel over the API after the pivot is refused with 409 and the saga goes forward") {
  TempDir dir;
  Services services;
  write_workflow(dir, services);
  Server server(dir);
  services.control("tickets", "issue", "hang", 1);
  services.control("notifier", "send", "transient");  // until switched back

  auto r = server.start(booking(120));
  REQUIRE(r.status == 201);
  const std::string id = r.json()["id"];

  // While the pivot is in flight: it was sent, so the saga can only go forward.
  REQUIRE(eventually([&] { return !trace(services.log("tickets"), id).empty(); }));
  auto during = server.cancel(id);
  CHECK(during.status == 409);
  CHECK(during.header("Content-Type") == "application/problem+json");

  // After the pivot, while notify keeps failing.
  REQUIRE(eventually([&] { return !trace(services.log("notifier"), id).empty(); }));
  auto after = server.cancel(id);
  CHECK(after.status == 409);
  CHECK(after.header("Content-Type") == "application/problem+json");
  CHECK(after.json()["detail"].is_string());
  CHECK(server.saga(id)["status"] == "running");

  services.control("notifier", "send", "ok");
  json saga = server.settled(id);
  CHECK(saga["status"] == "completed");
  CHECK(trace(services.log("tickets"), id) == "issue confirm:action#1 hung; issue confirm:action#2 200");
  CHECK(trace(services.log("seats"), id) == "hold reserve:action#1 200; hold-parking parking:action#1 200");
  CHECK(trace(services.log("payments"), id) == "charge pay:action#1 200");
  json events = server.events(id);
  CHECK(compensation_plan(events) == "");
  CHECK(index_of(event_names(events), "CancelRequested") == -1);
}

TEST_CASE("an idempotent start over HTTP runs the steps once") {
  TempDir dir;
  Services services;
  write_workflow(dir, services);
  Server server(dir);

  auto first = server.start(booking(120), "order-7", "10s");
  REQUIRE(first.status == 201);
  const std::string id = first.json()["id"];
  CHECK(first.json()["status"] == "completed");
  CHECK(first.header("Location") == "/v1/sagas/" + id);

  auto again = server.start(booking(120), "order-7", "10s");
  CHECK(again.status == 200);
  CHECK(again.json()["id"] == id);
  CHECK(again.json()["status"] == "completed");
  // Even with another input the key names the first saga.
  auto other = server.start(booking(300), "order-7");
  CHECK(other.status == 200);
  CHECK(other.json()["id"] == id);

  CHECK(trace(services.log("seats"), id) == "hold reserve:action#1 200; hold-parking parking:action#1 200");
  CHECK(trace(services.log("payments"), id) == "charge pay:action#1 200");
  CHECK(trace(services.log("tickets"), id) == "issue confirm:action#1 200");
  CHECK(trace(services.log("notifier"), id) == "send notify:action#1 200");
  CHECK(services.log("payments").size() == 1);  // no second saga charged anyone
}

// Starts racing with one key while the first is not durable yet: all of them
// must be answered with that one saga (a bug once answered from a dead frame).
TEST_CASE("concurrent starts with one Idempotency-Key make one saga") {
  TempDir dir;
  Services services;
  write_workflow(dir, services);
  Server server(dir);

  constexpr int kRacers = 8;
  std::vector<HttpReply> replies(kRacers);
  std::vector<std::thread> threads;
  std::atomic<int> ready{0};
  for (int i = 0; i < kRacers; ++i)
    threads.emplace_back([&, i] {
      // Line them up so the requests really overlap.
      ++ready;
      while (ready.load() < kRacers) std::this_thread::yield();
      replies[i] = server.start(booking(120), "order-race", "10s");
    });
  for (auto& t : threads) t.join();
  CHECK_MESSAGE(usher::test::request(server.port(), http::verb::get, "/healthz").status == 200,
                "usher serve died during the race");
  int created = 0, same = 0;
  std::set<std::string> ids;
  for (const auto& r : replies) {
    created += r.status == 201;
    same += r.status == 200;
    if (r.status == 200 || r.status == 201) ids.insert(r.json()["id"].get<std::string>());
  }
  CHECK(created == 1);
  CHECK(same == kRacers - 1);
  REQUIRE(ids.size() == 1);
  const std::string id = *ids.begin();
  server.settled(id);
  CHECK(trace(services.log("payments"), id) == "charge pay:action#1 200");
  CHECK(services.log("payments").size() == 1);
  CHECK(services.log("seats").size() == 2);
}
