// usher linked into a service: the booking saga with in-process step handlers.
// Runs one booking that completes and one declined at payment that is
// compensated, and prints both sagas as the API would show them.
//
//   usher-embedded-example [--db FILE] [--workflow FILE]
#include <cstdio>
#include <cstring>
#include <string>

#include "usher/engine.h"

namespace {

void print_saga(const usher::Json& saga) {
  std::printf("saga %s  %s  %s\n", saga["id"].get<std::string>().c_str(),
              saga["workflow"].get<std::string>().c_str(), saga["status"].get<std::string>().c_str());
  for (const auto& step : saga["steps"]) {
    std::string line = "  " + step["name"].get<std::string>() + ": " + step["status"].get<std::string>();
    if (!step["output"].is_null()) line += "  output " + step["output"].dump();
    if (!step["error"].is_null()) line += "  error \"" + step["error"].get<std::string>() + "\"";
    if (!step["compensation"].is_null()) line += "  (compensation " + step["compensation"]["status"].get<std::string>() + ")";
    std::printf("%s\n", line.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string db = "usher-embedded.db";
  std::string workflow = USHER_SOURCE_DIR "/workflows/concert-booking.yaml";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--db") == 0) db = argv[i + 1];
    if (std::strcmp(argv[i], "--workflow") == 0) workflow = argv[i + 1];
  }

  usher::EngineOptions options;
  options.db_path = db;
  auto opened = usher::Engine::open(options);
  if (!opened.is_ok()) {
    std::fprintf(stderr, "cannot open %s: %s\n", db.c_str(), opened.status().to_string().c_str());
    return 1;
  }
  auto engine = std::move(opened.value());

  usher::LoadResult loaded = usher::load_definition_file(workflow);
  for (const auto& d : loaded.diagnostics) std::fprintf(stderr, "%s\n", d.to_string().c_str());
  if (!loaded.ok()) return 1;
  if (auto st = engine->load(loaded.definition); !st.is_ok()) {
    std::fprintf(stderr, "%s\n", st.to_string().c_str());
    return 1;
  }

  // The four services of the booking, in process. Handlers run on the engine
  // thread: they must be quick and must not block.
  using usher::StepCall;
  using usher::StepResult;
  engine->register_handler("seats.hold", [](const StepCall& c) {
    return StepResult::ok({{"holdId", "hold-" + c.body.value("seat", std::string("?"))}});
  });
  engine->register_handler("seats.release", [](const StepCall&) { return StepResult::ok({}); });
  engine->register_handler("payments.charge", [](const StepCall& c) {
    if (c.body.value("amount", 0) > 1000) return StepResult::failed("card declined");
    return StepResult::ok({{"paymentId", "pay-" + c.saga_id.substr(0, 8)}});
  });
  engine->register_handler("payments.refund", [](const StepCall&) { return StepResult::ok({}); });
  engine->register_handler("tickets.issue", [](const StepCall& c) {
    return StepResult::ok({{"ticketId", "tkt-" + c.body.value("holdId", std::string("?"))}});
  });
  engine->register_handler("notifier.send", [](const StepCall&) { return StepResult::ok({}); });

  if (auto st = engine->resume(); !st.is_ok()) {
    std::fprintf(stderr, "%s\n", st.to_string().c_str());
    return 1;
  }

  int failures = 0;
  for (int amount : {120, 5000}) {
    usher::StartRequest request;
    request.workflow = loaded.definition->name;
    request.input = {{"userId", "fan-1"}, {"concertId", "tour-2026-paris"}, {"seat", "B-12"}, {"amount", amount}};
    auto started = engine->start(request);
    if (!started.is_ok()) {
      std::fprintf(stderr, "start: %s\n", started.status().to_string().c_str());
      return 1;
    }
    usher::Json saga = engine->wait(started->id).get();
    print_saga(saga);
    std::string expected = amount > 1000 ? "compensated" : "completed";
    if (saga["status"] != expected) ++failures;
  }
  engine->shutdown();
  return failures == 0 ? 0 : 1;
}
