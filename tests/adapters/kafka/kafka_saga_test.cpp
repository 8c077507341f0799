// Whole sagas through the engine with the pay step over Kafka (a 3-broker
// mock cluster): reserve, confirm and notify are in-process handlers, the
// payments service is a KafkaStepService each test scripts (or kcat).
#include <doctest/doctest.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <map>
#include <random>
#include <sstream>

#include "kafka_fixture.h"
#include "support/booking_workflow.h"
#include "usher/service_text.h"
#include "usher/engine.h"

namespace usher::test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// The booking workflow (support/booking_workflow.h) with payments over Kafka
// on `requests`. Short timeouts and backoffs keep the tests fast; the
// compensation budget outlasts a broker outage of a few seconds.
std::string kafka_booking_yaml(const std::string& brokers, const std::string& requests,
                               const std::string& pay_timeout) {
  BookingWorkflow w;
  w.saga = "kafka-booking";
  w.payments = "{ kafka: { brokers: \"" + brokers + "\", topic: " + requests + ", reply_topic: usher.replies } }";
  w.seat_schema = "";
  w.retry = "{ attempts: 3, backoff: 20ms, max_backoff: 100ms }";
  w.compensation_retry = "{ attempts: 20, backoff: 50ms, max_backoff: 500ms }";
  w.pay_timeout = pay_timeout;
  w.refund_timeout = "600ms";
  return booking_yaml(w);
}

// Requests the payments service saw: "charge saga-id attempt" lines.
class Seen {
 public:
  void add(const KafkaStepRequest& r) {
    std::lock_guard lock(mu_);
    lines_.push_back(r.operation + " " + r.kind + " " + r.saga_id + " " + std::to_string(r.attempt));
  }
  size_t count(const std::string& operation, const std::string& saga_id) const {
    std::lock_guard lock(mu_);
    size_t n = 0;
    for (const auto& l : lines_)
      if (l.starts_with(operation + " ") && l.find(" " + saga_id + " ") != std::string::npos) ++n;
    return n;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

// An engine on a fresh log, its Kafka adapter, and local seats, tickets and
// notifier handlers (seat 13 cannot be ticketed: confirm fails after pay).
class SagaRig {
 public:
  explicit SagaRig(const MockCluster& mock, const std::string& requests = "payments.requests",
                   const std::string& pay_timeout = "600ms") {
    std::random_device rd;
    dir_ = std::filesystem::temp_directory_path() /
           ("usher-kafka-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
    std::filesystem::create_directories(dir_);
    EngineOptions options;
    options.db_path = (dir_ / "usher.db").string();
    auto engine = Engine::open(options);
    REQUIRE_MESSAGE(engine.is_ok(), engine.status().to_string());
    engine_ = std::move(engine.value());

    LoadResult def = load_definition(kafka_booking_yaml(mock.bootstraps(), requests, pay_timeout), "kafka.yaml");
    for (const auto& d : def.diagnostics) MESSAGE(d.to_string());
    REQUIRE(def.ok());
    REQUIRE(engine_->load(def.definition).is_ok());

    adapter_ = make_adapter();
    engine_->bind_transport(Transport::kKafka, adapter_);
    engine_->register_handler("seats.hold", [](const StepCall& c) {
      return StepResult::ok({{"holdId", "h-" + c.body["seat"].dump()}});
    });
    engine_->register_handler("seats.release", [](const StepCall&) { return StepResult::ok({}); });
    engine_->register_handler("tickets.issue", [](const StepCall& c) {
      if (c.body["holdId"] == "h-13") return StepResult::failed("seat 13 cannot be ticketed");
      return StepResult::ok({{"ticketId", "t-" + c.body["holdId"].get<std::string>()}});
    });
    engine_->register_handler("notifier.send", [](const StepCall&) { return StepResult::ok({}); });
    REQUIRE(engine_->resume().is_ok());
  }
  ~SagaRig() {
    engine_->shutdown();
    adapter_->shutdown();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::string start(int seat, int amount) {
    StartRequest req;
    req.workflow = "kafka-booking";
    req.input = {{"seat", seat}, {"amount", amount}};
    auto started = engine_->start(req);
    REQUIRE_MESSAGE(started.is_ok(), started.status().to_string());
    return started->id;
  }
  // The saga once it has settled (terminal or stuck), waiting at most `wait`.
  Json settle(const std::string& id, milliseconds wait = seconds(20)) {
    auto f = engine_->wait(id);
    REQUIRE_MESSAGE(f.wait_for(wait) == std::future_status::ready, "saga " << id << " did not settle");
    return f.get();
  }
  KafkaStepAdapter& adapter() { return *adapter_; }

 private:
  std::filesystem::path dir_;
  std::unique_ptr<Engine> engine_;
  std::shared_ptr<KafkaStepAdapter> adapter_;
};

Json step(const Json& saga, const std::string& name) {
  for (const auto& s : saga["steps"])
    if (s["name"] == name) return s;
  FAIL("no step " << name);
  return {};
}

// charge: ok with a payment id unless amount > 1000 (declined); refund: ok.
std::optional<KafkaStepReply> payments(const KafkaStepRequest& req) {
  if (req.operation == "refund") return KafkaStepReply::ok();
  if (req.body.value("amount", 0) > 1000) return KafkaStepReply::failed("card declined");
  return KafkaStepReply::ok({{"paymentId", "pay-" + req.saga_id}});
}

TEST_CASE("a saga whose pay step goes over Kafka completes") {
  SharedKafka& shared = SharedKafka::get();
  Seen seen;
  shared.set_handler([&](const KafkaStepRequest& req) {
    seen.add(req);
    return payments(req);
  });
  SagaRig rig(shared.mock());
  const std::string id = rig.start(7, 100);
  Json saga = rig.settle(id);
  CHECK(saga["status"] == "completed");
  CHECK(step(saga, "pay")["status"] == "succeeded");
  CHECK(step(saga, "pay")["output"]["paymentId"] == "pay-" + id);
  CHECK(step(saga, "pay")["attempts"] == 1);
  CHECK(seen.count("charge", id) == 1);
  CHECK(seen.count("refund", id) == 0);
}

TEST_CASE("a charge declined over Kafka is compensated") {
  SharedKafka& shared = SharedKafka::get();
  Seen seen;
  shared.set_handler([&](const KafkaStepRequest& req) {
    seen.add(req);
    return payments(req);
  });
  SagaRig rig(shared.mock());

  SUBCASE("the declined charge itself needs no refund: only the hold is released") {
    const std::string id = rig.start(8, 5000);
    Json saga = rig.settle(id);
    CHECK(saga["status"] == "compensated");
    CHECK(step(saga, "pay")["status"] == "failed");
    CHECK(step(saga, "pay")["error"].get<std::string>().find("card declined") != std::string::npos);
    CHECK(step(saga, "reserve")["status"] == "compensated");
    CHECK(seen.count("refund", id) == 0);
  }
  SUBCASE("a failure after the charge refunds it over Kafka") {
    const std::string id = rig.start(13, 100);
    Json saga = rig.settle(id);
    CHECK(saga["status"] == "compensated");
    CHECK(step(saga, "pay")["status"] == "compensated");
    CHECK(step(saga, "pay")["compensation"]["status"] == "succeeded");
    CHECK(seen.count("refund compensate", id) == 1);
  }
}

TEST_CASE("a transient reply over Kafka is retried, then the saga completes") {
  SharedKafka& shared = SharedKafka::get();
  shared.set_handler([](const KafkaStepRequest& req) -> std::optional<KafkaStepReply> {
    if (req.operation == "charge" && req.attempt == 1) return KafkaStepReply::retry("bank busy");
    return payments(req);
  });
  SagaRig rig(shared.mock());
  const std::string id = rig.start(9, 100);
  Json saga = rig.settle(id);
  CHECK(saga["status"] == "completed");
  CHECK(step(saga, "pay")["attempts"] == 2);
}

TEST_CASE("no reply over Kafka: the attempts time out and the timed-out step is compensated") {
  SharedKafka& shared = SharedKafka::get();
  Seen seen;
  shared.set_handler([&](const KafkaStepRequest& req) -> std::optional<KafkaStepReply> {
    seen.add(req);
    if (req.operation == "charge") return std::nullopt;  // the charge may have happened: nobody says
    return payments(req);
  });
  SagaRig rig(shared.mock());
  const std::string id = rig.start(10, 100);
  Json saga = rig.settle(id);
  CHECK(saga["status"] == "compensated");
  CHECK(step(saga, "pay")["attempts"] == 3);
  CHECK(step(saga, "pay")["compensation"]["status"] == "succeeded");
  CHECK(seen.count("charge", id) == 3);
  CHECK(seen.count("refund", id) == 1);
  CHECK(rig.adapter().pending() == 0);
}

TEST_CASE("duplicate replies over Kafka are ignored") {
  SharedKafka& shared = SharedKafka::get();
  KafkaStepService& service = shared.service();
  shared.set_handler([&](const KafkaStepRequest& req) {
    auto reply = payments(req);
    for (int i = 0; i < 3; ++i) REQUIRE(service.reply(req, *reply).is_ok());
    return reply;
  });
  SagaRig rig(shared.mock());
  const std::string id = rig.start(11, 100);
  Json saga = rig.settle(id);
  CHECK(saga["status"] == "completed");
  CHECK(step(saga, "pay")["attempts"] == 1);
  CHECK(eventually([&] { return rig.adapter().stats().replies_dropped >= 3; }));
}

TEST_CASE("a malformed reply over Kafka does not crash: the attempt is retried") {
  SharedKafka& shared = SharedKafka::get();
  KafkaStepService& service = shared.service();
  shared.set_handler([&](const KafkaStepRequest& req) -> std::optional<KafkaStepReply> {
    if (req.operation == "charge" && req.attempt == 1) {
      REQUIRE(service.reply_raw(req, "\x01\x02 garbage {").is_ok());
      return std::nullopt;
    }
    return payments(req);
  });
  SagaRig rig(shared.mock());
  const std::string id = rig.start(12, 100);
  Json saga = rig.settle(id);
  CHECK(saga["status"] == "completed");
  CHECK(step(saga, "pay")["attempts"] == 2);
}

TEST_CASE("a reply in UTF-16 cannot wedge a saga: it is an unknown outcome, retried, then refunded") {
  SharedKafka& shared = SharedKafka::get();
  KafkaStepService& service = shared.service();
  Seen seen;
  // {"status":"failed","error":"déclinée"} as UTF-16LE with a BOM: not UTF-8,
  // so not JSON usher can read; the service did answer, so it may have acted.
  const std::string ascii = R"({"status":"failed","error":"d)";
  std::string utf16 = "\xff\xfe";
  for (char c : ascii) utf16 += std::string{c, '\0'};
  utf16 += std::string("\xe9\0", 2);
  for (char c : std::string(R"(clin)")) utf16 += std::string{c, '\0'};
  utf16 += std::string("\xe9\0", 2) + std::string("e\0\"\0}\0", 6);
  shared.set_handler([&](const KafkaStepRequest& req) -> std::optional<KafkaStepReply> {
    seen.add(req);
    if (req.operation == "charge") {
      REQUIRE(service.reply_raw(req, utf16).is_ok());
      return std::nullopt;
    }
    return payments(req);
  });
  SagaRig rig(shared.mock());
  const std::string id = rig.start(14, 100);
  Json saga = rig.settle(id);
  CHECK(saga["status"] == "compensated");
  CHECK(step(saga, "pay")["status"] == "compensated");
  CHECK(step(saga, "pay")["attempts"] == 3);  // the retry policy, not a resend loop
  CHECK(seen.count("charge", id) == 3);
  CHECK(seen.count("refund", id) == 1);      // it may have happened: refunded
  const Json error = step(saga, "pay")["error"];
  REQUIRE(error.is_string());
  CHECK(error.get<std::string>().find("malformed reply") != std::string::npos);
  CHECK(is_valid_utf8(error.get<std::string>()));
}

TEST_CASE("a broker down in the middle of a run and back: every saga finishes") {
  MockCluster mock;  // its own: one of its brokers goes down
  auto service = start_service(mock, [](const KafkaStepRequest& req) { return payments(req); });
  SagaRig rig(mock);
  std::vector<std::string> ids;
  for (int i = 0; i < 10; ++i) ids.push_back(rig.start(100 + i, i % 4 == 0 ? 5000 : 100));
  std::this_thread::sleep_for(milliseconds(200));
  mock.set_down(1);
  for (int i = 10; i < 20; ++i) ids.push_back(rig.start(100 + i, 100));
  std::this_thread::sleep_for(milliseconds(1500));
  mock.set_up(1);
  std::map<std::string, int> statuses;
  for (const auto& id : ids) {
    Json saga = rig.settle(id, seconds(30));
    ++statuses[saga["status"].get<std::string>()];
    CHECK_MESSAGE((saga["status"] == "completed" || saga["status"] == "compensated"), saga.dump());
  }
  for (const auto& [status, n] : statuses) MESSAGE(status << ": " << n);
  service->stop();
}

// Runs a shell command and returns its standard output.
std::string run(const std::string& command) {
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  REQUIRE(p != nullptr);
  std::array<char, 4096> buf{};
  for (size_t n; (n = std::fread(buf.data(), 1, buf.size(), p)) > 0;) out.append(buf.data(), n);
  const int rc = ::pclose(p);
  CHECK_MESSAGE(rc == 0, command << " -> " << rc);
  return out;
}

TEST_CASE("kcat plays the step service: it reads the request from the topic and writes the reply") {
  REQUIRE_MESSAGE(std::filesystem::exists("/usr/bin/kcat"), "kcat is not installed");
  SharedKafka& shared = SharedKafka::get();
  const MockCluster& mock = shared.mock();
  REQUIRE(rd_kafka_mock_topic_create(mock.get(), "kcat.requests", 1, 3) == RD_KAFKA_RESP_ERR_NO_ERROR);
  SagaRig rig(mock, "kcat.requests", "20s");  // kcat is started twice within the attempt
  const std::string id = rig.start(14, 250);

  // One request: key, headers (name=value, comma-separated) and value.
  const std::string request = run("timeout 20 /usr/bin/kcat -C -q -b " + mock.bootstraps() +
                                  " -t kcat.requests -o beginning -c 1 -f '%k\\n%h\\n%s\\n'");
  std::vector<std::string> lines;
  std::stringstream in(request);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  REQUIRE(lines.size() >= 3);
  CHECK(lines[0] == id);
  std::map<std::string, std::string> headers;
  std::stringstream hs(lines[1]);
  for (std::string h; std::getline(hs, h, ',');) {
    const size_t eq = h.find('=');
    if (eq != std::string::npos) headers[h.substr(0, eq)] = h.substr(eq + 1);
  }
  CHECK(headers["usher-saga-id"] == id);
  CHECK(headers["usher-step"] == "pay");
  CHECK(headers["usher-operation"] == "charge");
  CHECK(headers["usher-kind"] == "action");
  CHECK(headers["usher-attempt"] == "1");
  CHECK(headers["usher-reply-to"] == "usher.replies");
  CHECK(headers["idempotency-key"] == id + ":pay:action");
  CHECK(Json::parse(lines[2]) == Json{{"amount", 250}, {"reference", id}});
  REQUIRE(headers.contains("usher-correlation-id"));

  run("printf '%s' '{\"status\":\"ok\",\"output\":{\"paymentId\":\"kcat-1\"}}' | timeout 20 /usr/bin/kcat -P -q -b " +
      mock.bootstraps() + " -t " + headers["usher-reply-to"] + " -k " + id + " -H usher-correlation-id=" +
      headers["usher-correlation-id"]);
  Json saga = rig.settle(id);
  CHECK(saga["status"] == "completed");
  CHECK(step(saga, "pay")["output"]["paymentId"] == "kcat-1");
}

}  // namespace
}  // namespace usher::test
