// Helpers for engine tests: a temp database, the booking workflow with
// in-process handlers, and a step adapter whose calls the test answers by hand.
#pragma once

#include <doctest/doctest.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <optional>
#include <random>
#include <string>

#include "usher/engine.h"
#include "support/booking_workflow.h"
#include "support/temp_dir.h"
#include "support/test_store.h"

namespace usher::test {

// reserve -> pay -> confirm (pivot) -> notify, every service local.
inline const std::string kLocalBookingYaml = booking_yaml();

inline DefinitionPtr load_or_fail(const std::string& yaml) {
  LoadResult r = load_definition(yaml, "booking.yaml");
  for (const auto& d : r.diagnostics) MESSAGE(d.to_string());
  REQUIRE(r.ok());
  return r.definition;
}

// Calls seen by the in-process services, in order, e.g. "seats.hold:action".
class CallLog {
 public:
  void add(const StepCall& c) {
    std::lock_guard lock(mu_);
    calls_.push_back(c.service.name + "." + c.operation + " " + c.saga_id);
  }
  std::vector<std::string> for_saga(const std::string& id) const {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    for (const auto& c : calls_)
      if (c.size() > id.size() && c.compare(c.size() - id.size(), id.size(), id) == 0)
        out.push_back(c.substr(0, c.size() - id.size() - 1));
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> calls_;
};

// Registers the four booking services; a charge of more than 1000 is declined.
inline void register_booking_handlers(Engine& engine, CallLog& log) {
  engine.register_handler("seats.hold", [&log](const StepCall& c) {
    log.add(c);
    return StepResult::ok({{"holdId", "h-" + std::to_string(c.body["seat"].get<int>())}});
  });
  engine.register_handler("seats.release", [&log](const StepCall& c) {
    log.add(c);
    return StepResult::ok({});
  });
  engine.register_handler("payments.charge", [&log](const StepCall& c) {
    log.add(c);
    if (c.body["amount"].get<int>() > 1000) return StepResult::failed("card declined");
    return StepResult::ok({{"paymentId", "p-" + c.saga_id}});
  });
  engine.register_handler("payments.refund", [&log](const StepCall& c) {
    log.add(c);
    return StepResult::ok({});
  });
  engine.register_handler("tickets.issue", [&log](const StepCall& c) {
    log.add(c);
    return StepResult::ok({{"ticketId", "t-" + c.body["holdId"].get<std::string>()}});
  });
  engine.register_handler("notifier.send", [&log](const StepCall& c) {
    log.add(c);
    return StepResult::ok({});
  });
}

// An adapter whose calls wait until the test answers them.
class ManualAdapter final : public StepAdapter {
 public:
  struct Pending {
    StepCall call;
    StepCallback done;
  };
  void dispatch(StepCall call, StepCallback done) override {
    std::lock_guard lock(mu_);
    pending_.push_back({std::move(call), std::move(done)});
    cv_.notify_all();
  }
  // The next call if one arrives within `wait`.
  std::optional<Pending> try_next(std::chrono::milliseconds wait) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, wait, [&] { return !pending_.empty(); })) return std::nullopt;
    Pending p = std::move(pending_.front());
    pending_.pop_front();
    return p;
  }
  // Waits (bounded) for the next call and takes it.
  Pending next() {
    std::unique_lock lock(mu_);
    bool got = cv_.wait_for(lock, std::chrono::seconds(10), [&] { return !pending_.empty(); });
    REQUIRE_MESSAGE(got, "no call arrived within 10 s");
    Pending p = std::move(pending_.front());
    pending_.pop_front();
    return p;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> pending_;
};

inline std::unique_ptr<Engine> open_engine(const std::string& db) {
  EngineOptions options;
  options.db_path = db;
  auto engine = Engine::open(options);
  REQUIRE_MESSAGE(engine.is_ok(), engine.status().to_string());
  return std::move(engine.value());
}

}  // namespace usher::test
