// The engine end to end in one process: real SQLite file, in-process handlers.
#include <doctest/doctest.h>

#include <future>
#include <set>

#include "engine_fixture.h"
#include "usher/inspect.h"

using namespace usher;
using namespace usher::test;

namespace {

std::vector<std::string> event_types(const Json& events) {
  std::vector<std::string> out;
  for (const auto& e : events["events"]) {
    std::string s = e["type"];
    if (!e["step"].is_null()) s += " " + e["step"].get<std::string>();
    out.push_back(s);
  }
  return out;
}

}  // namespace

TEST_CASE("runs a completed and a compensated booking with in-process handlers") {
  TempDir dir;
  CallLog calls;
  auto engine = open_engine(saga_log_at(dir.file("usher.db")));
  REQUIRE(engine->load(load_or_fail(kLocalBookingYaml)).is_ok());
  register_booking_handlers(*engine, calls);
  REQUIRE(engine->resume().is_ok());

  auto ok = engine->start({"booking", {{"seat", 7}, {"amount", 120}}, "", "corr-7", ""});
  REQUIRE_MESSAGE(ok.is_ok(), ok.status().to_string());
  CHECK(ok->created);
  CHECK(ok->id.size() == 36);
  CHECK(ok->id[14] == '7');  // UUIDv7
  Json done = engine->wait(ok->id).get();
  CHECK(done["status"] == "completed");
  CHECK(done["correlation_id"] == "corr-7");
  CHECK(done["steps"][2]["output"] == Json{{"ticketId", "t-h-7"}});
  CHECK(calls.for_saga(ok->id) ==
        std::vector<std::string>{"seats.hold", "payments.charge", "tickets.issue", "notifier.send"});

  auto declined = engine->start({"booking", {{"seat", 8}, {"amount", 5000}}, "", "", ""});
  REQUIRE(declined.is_ok());
  Json comp = engine->wait(declined->id).get();
  CHECK(comp["status"] == "compensated");
  CHECK(comp["steps"][0]["status"] == "compensated");
  CHECK(comp["steps"][1]["status"] == "failed");
  CHECK(comp["steps"][1]["error"] == "card declined");
  CHECK(calls.for_saga(declined->id) == std::vector<std::string>{"seats.hold", "payments.charge", "seats.release"});

  auto events = engine->events(declined->id);
  REQUIRE(events.is_ok());
  CHECK(event_types(*events) == std::vector<std::string>{"SagaStarted", "StepScheduled reserve",
                                                          "StepSucceeded reserve", "StepScheduled pay",
                                                          "StepFailed pay", "CompensationStarted",
                                                          "StepScheduled reserve", "StepSucceeded reserve",
                                                          "SagaCompensated"});

  auto list = engine->list(SagaFilter{});
  REQUIRE(list.is_ok());
  REQUIRE((*list)["sagas"].size() == 2);
  CHECK((*list)["sagas"][0]["id"] == declined->id);  // newest first
  SagaFilter only_completed;
  only_completed.status = SagaStatus::kCompleted;
  CHECK((*engine->list(only_completed))["sagas"].size() == 1);

  EngineStats stats = engine->stats();
  CHECK(stats.events_committed == 19);  // 10 for the completed saga, 9 for the other
  CHECK(stats.sagas_in_flight == 0);
  engine->shutdown();
}

TEST_CASE("refuses a start for an unknown workflow or an input that breaks the schema") {
  TempDir dir;
  CallLog calls;
  auto engine = open_engine(saga_log_at(dir.file("usher.db")));
  REQUIRE(engine->load(load_or_fail(kLocalBookingYaml)).is_ok());
  register_booking_handlers(*engine, calls);

  auto early = engine->start({"booking", {{"seat", 1}, {"amount", 1}}, "", "", ""});
  CHECK(early.status().code() == StatusCode::kFailedPrecondition);
  REQUIRE(engine->resume().is_ok());

  auto unknown = engine->start({"bookin", Json::object(), "", "", ""});
  CHECK(unknown.status().code() == StatusCode::kNotFound);
  CHECK(unknown.status().message() == "workflow \"bookin\" is not loaded");

  auto bad = engine->start({"booking", {{"seat", 0}}, "", "", ""});
  CHECK(bad.status().code() == StatusCode::kInvalidArgument);
  CHECK(bad.status().message().find("/seat: ") != std::string::npos);
  CHECK(bad.status().message().find("amount") != std::string::npos);
}

TEST_CASE("a start with a used idempotency key returns the first saga, also after a restart") {
  TempDir dir;
  CallLog calls;
  std::string first_id;
  {
    auto engine = open_engine(saga_log_at(dir.file("usher.db")));
    REQUIRE(engine->load(load_or_fail(kLocalBookingYaml)).is_ok());
    register_booking_handlers(*engine, calls);
    REQUIRE(engine->resume().is_ok());
    auto a = engine->start({"booking", {{"seat", 3}, {"amount", 10}}, "order-17", "", ""});
    auto b = engine->start({"booking", {{"seat", 3}, {"amount", 10}}, "order-17", "", ""});
    REQUIRE(a.is_ok());
    REQUIRE(b.is_ok());
    CHECK(a->created);
    CHECK_FALSE(b->created);
    CHECK(a->id == b->id);
    first_id = a->id;
    engine->wait(a->id).get();
  }
  auto engine = open_engine(saga_log_at(dir.file("usher.db")));
  REQUIRE(engine->load(load_or_fail(kLocalBookingYaml)).is_ok());
  register_booking_handlers(*engine, calls);
  REQUIRE(engine->resume().is_ok());
  auto again = engine->start({"booking", {{"seat", 3}, {"amount", 10}}, "order-17", "", ""});
  REQUIRE(again.is_ok());
  CHECK_FALSE(again->created);
  CHECK(again->id == first_id);
  CHECK(again->saga["status"] == "completed");
  CHECK(calls.for_saga(first_id).size() == 4);  // nothing ran twice
}

TEST_CASE("starts racing with one idempotency key make one saga, answered once it is durable") {
  TempDir dir;
  CallLog calls;
  auto engine = open_engine(saga_log_at(dir.file("usher.db")));
  REQUIRE(engine->load(load_or_fail(kLocalBookingYaml)).is_ok());
  register_booking_handlers(*engine, calls);
  REQUIRE(engine->resume().is_ok());
  constexpr int kRacers = 8;
  std::vector<std::promise<Result<StartResponse>>> replies(kRacers);
  for (int i = 0; i < kRacers; ++i)
    engine->start_async({"booking", {{"seat", 2}, {"amount", 10}}, "race-1", "", ""},
                        [&replies, i](Result<StartResponse> r) { replies[i].set_value(std::move(r)); });
  std::set<std::string> ids;
  int created = 0;
  for (auto& p : replies) {
    auto r = p.get_future().get();
    REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
    ids.insert(r->id);
    created += r->created;
  }
  CHECK(ids.size() == 1);
  CHECK(created == 1);
  engine->wait(*ids.begin()).get();
  CHECK(calls.for_saga(*ids.begin()).size() == 4);
  engine->shutdown();
}

TEST_CASE("cancel and operator retry go through the log") {
  TempDir dir;
  auto engine = open_engine(saga_log_at(dir.file("usher.db")));
  REQUIRE(engine->load(load_or_fail(kLocalBookingYaml)).is_ok());
  auto manual = std::make_shared<ManualAdapter>();
  engine->bind_transport(Transport::kLocal, manual);
  for (const char* s : {"seats", "payments", "tickets", "notifier"}) engine->bind_service(s, manual);
  REQUIRE(engine->resume().is_ok());

  SUBCASE("cancel while a step is in flight compensates once it answers") {
    auto started = engine->start({"booking", {{"seat", 4}, {"amount", 10}}, "", "", ""});
    REQUIRE(started.is_ok());
    auto hold = manual->next();
    CHECK(hold.call.idempotency_key == started->id + ":reserve:action");
    auto cancelled = engine->cancel(started->id);
    REQUIRE(cancelled.is_ok());
    CHECK((*cancelled)["status"] == "running");
    hold.done(StepResult::ok({{"holdId", "h-4"}}));
    auto release = manual->next();
    CHECK(release.call.operation == "release");
    CHECK(release.call.kind == CallKind::kCompensate);
    CHECK(release.call.body == Json{{"holdId", "h-4"}});
    release.done(StepResult::ok({}));
    CHECK(engine->wait(started->id).get()["status"] == "compensated");
    auto again = engine->cancel(started->id);
    CHECK(again.status().code() == StatusCode::kFailedPrecondition);
  }
  SUBCASE("cancel after the pivot was sent is refused") {
    auto started = engine->start({"booking", {{"seat", 5}, {"amount", 10}}, "", "", ""});
    REQUIRE(started.is_ok());
    manual->next().done(StepResult::ok({{"holdId", "h-5"}}));
    manual->next().done(StepResult::ok({{"paymentId", "p"}}));
    auto issue = manual->next();
    auto refused = engine->cancel(started->id);
    CHECK(refused.status().code() == StatusCode::kFailedPrecondition);
    issue.done(StepResult::ok({{"ticketId", "t"}}));
    manual->next().done(StepResult::ok({}));
    CHECK(engine->wait(started->id).get()["status"] == "completed");
  }
  SUBCASE("a stuck saga resumes on operator retry") {
    auto started = engine->start({"booking", {{"seat", 6}, {"amount", 10}}, "", "", ""});
    REQUIRE(started.is_ok());
    manual->next().done(StepResult::ok({{"holdId", "h-6"}}));
    manual->next().done(StepResult::failed("declined"));
    manual->next().done(StepResult::failed("hold vanished"));  // the release is refused
    Json stuck = engine->wait(started->id).get();
    CHECK(stuck["status"] == "stuck");
    auto retried = engine->retry(started->id);
    REQUIRE(retried.is_ok());
    auto release = manual->next();
    CHECK(release.call.attempt == 2);
    release.done(StepResult::ok({}));
    CHECK(engine->wait(started->id).get()["status"] == "compensated");
  }
  SUBCASE("unknown sagas are not found") {
    CHECK(engine->cancel("nope").status().code() == StatusCode::kNotFound);
    CHECK(engine->get("nope").status().code() == StatusCode::kNotFound);
  }
  engine->shutdown();
}

TEST_CASE("a step with no answer times out, and the timed-out step is compensated too") {
  TempDir dir;
  const char* yaml = R"(
saga: slow
services:
  seats: { local: {} }
  payments: { local: {} }
defaults:
  timeout: 50ms
  retry: { attempts: 2, backoff: 1ms }
steps:
  - name: reserve
    call: seats.hold
    compensate: { call: seats.release }
  - name: pay
    call: payments.charge
    compensate: { call: payments.refund }
)";
  auto engine = open_engine(saga_log_at(dir.file("usher.db")));
  REQUIRE(engine->load(load_or_fail(yaml)).is_ok());
  auto manual = std::make_shared<ManualAdapter>();
  engine->bind_service("seats", manual);
  engine->bind_service("payments", manual);
  REQUIRE(engine->resume().is_ok());
  auto started = engine->start({"slow", Json::object(), "", "", ""});
  REQUIRE(started.is_ok());
  manual->next().done(StepResult::ok({}));
  auto first = manual->next();   // never answered
  auto second = manual->next();  // the retry, never answered
  CHECK(second.call.attempt == 2);
  CHECK(second.call.idempotency_key == first.call.idempotency_key);
  auto refund = manual->next();
  CHECK(refund.call.operation == "refund");
  refund.done(StepResult::ok({}));
  auto release = manual->next();
  CHECK(release.call.operation == "release");
  release.done(StepResult::ok({}));
  Json saga = engine->wait(started->id).get();
  CHECK(saga["status"] == "compensated");
  CHECK(saga["steps"][1]["compensation"]["status"] == "succeeded");
  first.done(StepResult::ok({}));  // far too late: ignored
  CHECK((*engine->get(started->id))["status"] == "compensated");
  engine->shutdown();
}

TEST_CASE("an unfinished saga is recovered on reopen and its step sent again with the same key") {
  TempDir dir;
  std::string id;
  std::string key;
  {
    auto engine = open_engine(saga_log_at(dir.file("usher.db")));
    REQUIRE(engine->load(load_or_fail(kLocalBookingYaml)).is_ok());
    auto manual = std::make_shared<ManualAdapter>();
    for (const char* s : {"seats", "payments", "tickets", "notifier"}) engine->bind_service(s, manual);
    REQUIRE(engine->resume().is_ok());
    auto started = engine->start({"booking", {{"seat", 9}, {"amount", 10}}, "", "", ""});
    REQUIRE(started.is_ok());
    id = started->id;
    manual->next().done(StepResult::ok({{"holdId", "h-9"}}));
    key = manual->next().call.idempotency_key;  // pay in flight when the engine goes away
    engine->shutdown();
  }
  auto inspector = LogInspector::open(saga_log_at(dir.file("usher.db")));
  REQUIRE(inspector.is_ok());
  CHECK((*(*inspector)->saga(id))["status"] == "running");

  CallLog calls;
  auto engine = open_engine(saga_log_at(dir.file("usher.db")));
  // The definition comes back from the log by hash; nothing is loaded here.
  register_booking_handlers(*engine, calls);
  REQUIRE(engine->resume().is_ok());
  Json saga = engine->wait(id).get();
  CHECK(saga["status"] == "completed");
  CHECK(calls.for_saga(id) == std::vector<std::string>{"payments.charge", "tickets.issue", "notifier.send"});
  CHECK(saga["steps"][1]["attempts"] == 1);
  CHECK(key == id + ":pay:action");
}

TEST_CASE("a database of a newer schema version is refused") {
  TempDir dir;
  { auto engine = open_engine(saga_log_at(dir.file("usher.db"))); }
  if (testing_postgres()) {
    query_log(dir.file("usher.db"), "UPDATE usher_schema SET version = 99");
  } else {
    std::string cmd = "sqlite3 " + dir.file("usher.db") + " 'PRAGMA user_version=99'";
    REQUIRE(std::system(cmd.c_str()) == 0);
  }
  EngineOptions options;
  options.db_path = saga_log_at(dir.file("usher.db"));
  auto engine = Engine::open(options);
  REQUIRE_FALSE(engine.is_ok());
  CHECK(engine.status().code() == StatusCode::kDataLoss);
}
