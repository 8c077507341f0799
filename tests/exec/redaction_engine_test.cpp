// Secrets (`redact:`) through the real engine and a real SQLite file: the
// handler gets the card, the database never holds it, and after a restart the
// step that needs it is not sent with a placeholder.
#include <doctest/doctest.h>

#include <mutex>

#include "engine_fixture.h"
#include "support/read_file.h"
#include "usher/inspect.h"

using namespace usher;
using namespace usher::test;

namespace {

constexpr const char* kCardNumber = "4000056655665556";

// The booking whose payment carries the card, with the card's secrets redacted.
std::string redacting_booking() {
  std::string yaml = kLocalBookingYaml;
  auto replace = [&](const std::string& from, const std::string& to) {
    auto at = yaml.find(from);
    REQUIRE(at != std::string::npos);
    yaml.replace(at, from.size(), to);
  };
  replace("    amount: { type: integer, minimum: 1 }\n",
          "    amount: { type: integer, minimum: 1 }\n"
          "    card: { type: object, properties: { number: { type: string }, cvc: { type: string } } }\n");
  replace("with: { amount: \"${input.amount}\",", "with: { card: \"${input.card}\", amount: \"${input.amount}\",");
  return yaml + "redact: [/card/number, /card/cvc]\n";
}

const Json kInput = {{"seat", 4}, {"amount", 25}, {"card", {{"number", kCardNumber}, {"cvc", "4321"}}}};

// Everything the store wrote for this log: SQLite's file and its WAL, or
// every event and saga row PostgreSQL holds, as text.
std::string database_bytes(const TempDir& dir) {
  if (testing_postgres()) {
    return query_log(dir.file("usher.db"), "SELECT string_agg(e::text, ' ') FROM saga_events AS e") +
           query_log(dir.file("usher.db"), "SELECT string_agg(s::text, ' ') FROM sagas AS s");
  }
  std::string all;
  for (const char* suffix : {"", "-wal", "-shm"}) all += read_file(dir.file(std::string("usher.db") + suffix));
  return all;
}

}  // namespace

TEST_CASE("a redacted card reaches the payment handler but not the log, the views or the database file") {
  TempDir dir;
  std::string id;
  std::string charged_card;
  {
    auto engine = open_engine(saga_log_at(dir.file("usher.db")));
    REQUIRE(engine->load(load_or_fail(redacting_booking())).is_ok());
    CallLog calls;
    register_booking_handlers(*engine, calls);
    std::mutex mu;
    engine->register_handler("payments.charge", [&](const StepCall& c) {
      std::lock_guard lock(mu);
      charged_card = c.body["card"]["number"].get<std::string>();
      return StepResult::ok({{"paymentId", "p-1"}});
    });
    REQUIRE(engine->resume().is_ok());
    auto started = engine->start({"booking", kInput, "", "", ""});
    REQUIRE(started.is_ok());
    id = started->id;
    Json saga = engine->wait(id).get();
    REQUIRE(saga["status"] == "completed");
    CHECK(saga["input"]["card"] == Json{{"number", "[redacted]"}, {"cvc", "[redacted]"}});
    CHECK(saga["input"]["seat"] == 4);
    auto events = engine->events(id);
    REQUIRE(events.is_ok());
    CHECK(events->dump().find(kCardNumber) == std::string::npos);
    CHECK(events->dump().find("4321") == std::string::npos);
    engine->shutdown();
  }
  CHECK(charged_card == kCardNumber);
  auto inspector = LogInspector::open(saga_log_at(dir.file("usher.db")));
  REQUIRE(inspector.is_ok());
  CHECK((*(*inspector)->saga(id))["input"]["card"]["number"] == "[redacted]");
  std::string bytes = database_bytes(dir);
  CHECK(bytes.find("[redacted]") != std::string::npos);  // the check reads what SQLite wrote
  CHECK(bytes.find(kCardNumber) == std::string::npos);
}

TEST_CASE("after a restart the charge in flight is not sent again without its card: the booking compensates") {
  TempDir dir;
  std::string id;
  {
    auto engine = open_engine(saga_log_at(dir.file("usher.db")));
    REQUIRE(engine->load(load_or_fail(redacting_booking())).is_ok());
    auto manual = std::make_shared<ManualAdapter>();
    for (const char* s : {"seats", "payments", "tickets", "notifier"}) engine->bind_service(s, manual);
    REQUIRE(engine->resume().is_ok());
    auto started = engine->start({"booking", kInput, "", "", ""});
    REQUIRE(started.is_ok());
    id = started->id;
    manual->next().done(StepResult::ok({{"holdId", "h-4"}}));
    auto charge = manual->next();  // in flight when the engine goes away
    CHECK(charge.call.body["card"]["number"] == kCardNumber);
    engine->shutdown();
  }
  CallLog calls;
  auto engine = open_engine(saga_log_at(dir.file("usher.db")));
  register_booking_handlers(*engine, calls);
  REQUIRE(engine->resume().is_ok());
  Json saga = engine->wait(id).get();
  CHECK(saga["status"] == "compensated");
  // The charge may have gone through before the crash, so it is refunded; it
  // is never sent again with "[redacted]" for a card.
  CHECK(calls.for_saga(id) == std::vector<std::string>{"payments.refund", "seats.release"});
  CHECK(saga["steps"][1]["status"] == "compensated");
  CHECK(saga["steps"][1]["error"].get<std::string>().find("reads the redacted input /card/number") != std::string::npos);
  CHECK(database_bytes(dir).find(kCardNumber) == std::string::npos);
}
