// SIGKILL of `usher serve` with sagas in flight, then a restart on the same
// saga log. The example services keep running across the crash, so their
// request logs record every call either server made.
#include <doctest/doctest.h>

#include <set>

#include "e2e_harness.h"

using namespace usher::e2e;

namespace {

// A saga's events as the log file holds them, read with `usher events --db`
// while no server runs: exactly what the killed server had made durable.
json events_in_file(const TempDir& dir, const std::string& id) {
  Child cli({USHER_BINARY_DIR "/cli/usher", "events", id, "--db", dir.db(), "--json"});
  std::string text;
  while (auto line = cli.read_line(10s)) text += *line + "\n";
  auto status = cli.signal_and_wait(0, 10s);
  REQUIRE_MESSAGE(status == 0, "usher events " << id << " --db exited " << status.value_or(-1) << ": " << text);
  json doc = json::parse(text, nullptr, false);
  REQUIRE_MESSAGE(doc.is_object(), "usher events --json printed " << text);
  return doc.at("events");
}

size_t count_key(const json& calls, const std::string& key) {
  size_t n = 0;
  for (const json& e : calls) n += e["idempotency_key"] == key;
  return n;
}

bool settled(const json& events) {
  if (events.empty()) return false;
  const std::string last = events.back()["type"];
  return last == "SagaCompleted" || last == "SagaCompensated" || last == "SagaStuck";
}

const std::vector<std::string> kSteps = {"reserve", "parking", "pay", "confirm", "notify"};

long step_index(const std::string& name) {
  for (size_t i = 0; i < kSteps.size(); ++i)
    if (kSteps[i] == name) return static_cast<long>(i);
  return -1;
}

}  // namespace

TEST_CASE("SIGKILL with sagas in flight: after a restart every acknowledged saga finishes, nothing done twice") {
  TempDir dir;
  Services services;
  write_workflow(dir, services, patient_workflow());

  // Slow the sagas down at three places: the charge answers 503 forty times
  // (before the pivot), releases ten times (while compensating), and notify
  // fails until switched back (after the pivot) — so no saga that should
  // complete can have completed when the server is killed.
  services.control("payments", "charge", "transient", 40);
  services.control("seats", "release", "transient", 10);
  services.control("notifier", "send", "transient");

  constexpr int kSagas = 50;
  std::vector<std::string> ids;
  std::map<std::string, bool> declined;  // by saga id: amount over 1000
  {
    auto server = std::make_unique<Server>(dir);
    for (int i = 0; i < kSagas; ++i) {
      const bool decline = i % 5 == 0;
      auto r = server->start(booking(decline ? 5000 : 100 + i, i % 3, "fan-" + std::to_string(i)));
      REQUIRE_MESSAGE(r.status == 201, "start " << i << ": " << r.status << " " << r.error << r.body);
      ids.push_back(r.json()["id"]);
      declined[ids.back()] = decline;
    }
    // Kill once a fair number of sagas are past the pivot, while others are
    // still charging or compensating.
    REQUIRE(eventually([&] { return sagas_notified(services) >= 10; }));
    auto killed = server->child().signal_and_wait(SIGKILL, 5s);
    REQUIRE(killed.has_value());
    CHECK(*killed == 128 + SIGKILL);
  }

  // What the services had seen, and what the log held, at the kill.
  const json calls_at_kill = all_calls(services);
  std::map<std::string, json> before;
  int mid_way = 0;
  for (const auto& id : ids) {
    before[id] = events_in_file(dir, id);
    REQUIRE_MESSAGE(!before[id].empty(), "saga " << id << " got a 201 but has no events in the log");
    mid_way += !settled(before[id]);
  }
  MESSAGE(mid_way << " of " << kSagas << " sagas were unfinished at the kill; " << calls_at_kill.size()
                  << " calls had reached the services");
  CHECK(mid_way >= 1);

  services.control("payments", "charge", "ok");
  services.control("seats", "release", "ok");
  services.control("notifier", "send", "ok");
  Server server(dir);

  for (const auto& id : ids) {
    CAPTURE(id);
    json saga = server.settled(id, 30s);
    CHECK(saga["status"] == (declined[id] ? "compensated" : "completed"));
    json after = server.events(id);
    const json& pre = before[id];

    // No event is lost: what was durable at the kill is a prefix of the log.
    REQUIRE(after.size() >= pre.size());
    for (size_t i = 0; i < pre.size(); ++i) {
      CHECK(after[i]["seq"] == pre[i]["seq"]);
      CHECK(after[i]["type"] == pre[i]["type"]);
      CHECK(after[i]["step"] == pre[i]["step"]);
    }

    // An action whose success was durable before the kill is never sent again.
    const json calls = all_calls(services);
    for (const json& e : pre) {
      if (e["type"] != "StepSucceeded" || e["data"]["kind"] != "action") continue;
      const std::string key = id + ":" + e["step"].get<std::string>() + ":action";
      CHECK_MESSAGE(count_key(calls, key) == count_key(calls_at_kill, key), key << " was sent again after the restart");
    }

    // Each action and each compensation was done at most once by its service:
    // a call sent again after the restart is answered as a replay.
    check_done_once(calls, id);

    // Compensations in exact reverse order, each starting after the previous
    // one succeeded. The declined charge is not refunded, unless it was in
    // flight at the kill: then it may have happened before the crash, and its
    // re-sent attempt's refusal cannot take that back (docs/semantics.md).
    bool charge_in_flight_at_kill = false;
    for (const json& e : pre) {
      if (e["step"] != "pay" || !e["data"].is_object() || e["data"].value("kind", "") != "action") continue;
      if (e["type"] == "StepScheduled") charge_in_flight_at_kill = true;
      if (e["type"] == "StepSucceeded" || e["type"] == "StepFailed") charge_in_flight_at_kill = false;
    }
    CHECK(compensation_plan(after) ==
          (!declined[id] ? "" : charge_in_flight_at_kill ? "pay,parking,reserve" : "parking,reserve"));
    long last_step = static_cast<long>(kSteps.size());
    bool previous_done = true;
    for (const json& e : after) {
      if (!e["data"].is_object() || e["data"].value("kind", "") != "compensate") continue;
      const long step = step_index(e["step"]);
      if (e["type"] == "StepScheduled" && step != last_step) {
        CHECK_MESSAGE(step < last_step, "compensation of " << e["step"] << " out of order");
        CHECK_MESSAGE(previous_done, "compensation of " << e["step"] << " began before the previous one succeeded");
        last_step = step;
        previous_done = false;
      }
      if (e["type"] == "StepSucceeded") previous_done = true;
    }
    // The same order at the seats service, each release after its hold.
    if (declined[id]) {
      const std::string seats = trace(services.log("seats"), id);
      const auto reserve_hold = seats.find("reserve:action");
      const auto parking_hold = seats.find("parking:action");
      const auto parking_release = seats.find("parking:compensate");
      const auto reserve_release = seats.find("reserve:compensate");
      CHECK_MESSAGE(parking_release != std::string::npos, seats);
      CHECK_MESSAGE(reserve_release != std::string::npos, seats);
      CHECK_MESSAGE(parking_hold < parking_release, seats);
      CHECK_MESSAGE(reserve_hold < reserve_release, seats);
      // Every parking release (retries included) came before the first reserve release.
      CHECK_MESSAGE(seats.rfind("parking:compensate") < reserve_release, seats);
    }

    // Nothing is undone once the pivot was sent.
    if (count_key(calls, id + ":confirm:action") > 0) {
      for (const json& e : calls)
        if (e["saga_id"] == id)
          CHECK_MESSAGE(!e["idempotency_key"].get<std::string>().ends_with(":compensate"),
                        "saga " << id << " compensated after its pivot: " << e.dump());
    }
  }
}
