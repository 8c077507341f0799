// The Kafka step adapter against a 3-broker mock cluster, with a step service
// built on KafkaStepService (or nothing) at the other end. No engine here: the
// tests call dispatch() and look at what comes back.
#include <doctest/doctest.h>

#include <atomic>

#include "kafka_fixture.h"
#include "usher/service_text.h"

namespace usher::test {
namespace {

using std::chrono::milliseconds;

TEST_CASE("a request carries the saga id as key and every header of docs/semantics.md; its reply ends the attempt") {
  SharedKafka& shared = SharedKafka::get();
  const MockCluster& mock = shared.mock();
  std::mutex mu;
  std::optional<KafkaStepRequest> seen;
  shared.set_handler([&](const KafkaStepRequest& req) {
    std::lock_guard lock(mu);
    seen = req;
    return KafkaStepReply::ok({{"paymentId", "p-1"}});
  });
  auto adapter = make_adapter();
  Results results;
  adapter->dispatch(pay_call(mock, "saga-1", {{"amount", 10}, {"userId", "u"}}), results.callback());

  StepResult r = results.first();
  CHECK(r.outcome == Outcome::kOk);
  CHECK(r.output == Json{{"paymentId", "p-1"}});
  std::lock_guard lock(mu);
  REQUIRE(seen);
  CHECK(seen->topic == "payments.requests");
  CHECK(seen->key == "saga-1");
  CHECK(seen->body == Json{{"amount", 10}, {"userId", "u"}});
  CHECK(seen->headers.size() == 8);
  CHECK(seen->headers["usher-saga-id"] == "saga-1");
  CHECK(seen->headers["usher-step"] == "pay");
  CHECK(seen->headers["usher-operation"] == "charge");
  CHECK(seen->headers["usher-kind"] == "action");
  CHECK(seen->headers["usher-attempt"] == "1");
  CHECK(seen->headers["usher-correlation-id"].starts_with("saga-1:pay:action:1:"));
  CHECK(seen->headers["usher-reply-to"] == "usher.replies");
  CHECK(seen->headers["idempotency-key"] == "saga-1:pay:action");
  CHECK(adapter->pending() == 0);
  CHECK(adapter->stats().replies_matched == 1);
  CHECK(results.count() == 1);
}

TEST_CASE("a request sent by a cluster node carries usher-node with its id") {
  SharedKafka& shared = SharedKafka::get();
  const MockCluster& mock = shared.mock();
  std::mutex mu;
  std::optional<KafkaStepRequest> seen;
  shared.set_handler([&](const KafkaStepRequest& req) {
    std::lock_guard lock(mu);
    seen = req;
    return KafkaStepReply::ok({});
  });
  auto adapter = make_adapter();
  Results results;
  StepCall call = pay_call(mock, "saga-node", {{"amount", 10}});
  call.node = 7;
  adapter->dispatch(std::move(call), results.callback());
  CHECK(results.first().outcome == Outcome::kOk);
  std::lock_guard lock(mu);
  REQUIRE(seen);
  CHECK(seen->headers.size() == 9);
  CHECK(seen->headers["usher-node"] == "7");
}

TEST_CASE("each reply status ends the attempt as docs/semantics.md's table says") {
  SharedKafka& shared = SharedKafka::get();
  const MockCluster& mock = shared.mock();
  shared.set_handler([](const KafkaStepRequest& req) -> std::optional<KafkaStepReply> {
    const std::string mode = req.body.value("mode", "");
    if (mode.empty()) return std::nullopt;
    if (mode == "failed") return KafkaStepReply::failed("card declined");
    if (mode == "retry") return KafkaStepReply::retry("bank busy");
    return KafkaStepReply::ok();
  });
  auto adapter = make_adapter();
  Results failed, retry;
  adapter->dispatch(pay_call(mock, "s-failed", {{"mode", "failed"}}), failed.callback());
  adapter->dispatch(pay_call(mock, "s-retry", {{"mode", "retry"}}), retry.callback());
  CHECK(failed.first().outcome == Outcome::kFailed);
  CHECK(failed.first().error == "step \"pay\" (payments.charge): card declined");
  CHECK(retry.first().outcome == Outcome::kTransient);
  CHECK(retry.first().error.ends_with("bank busy"));
}

TEST_CASE("an attempt without a reply times out as unknown and is forgotten") {
  SharedKafka& shared = SharedKafka::get();
  const MockCluster& mock = shared.mock();
  shared.set_handler(nullptr);
  auto adapter = make_adapter();
  Results results;
  const auto start = std::chrono::steady_clock::now();
  adapter->dispatch(pay_call(mock, "s-silent", {{"amount", 1}}, Millis{300}), results.callback());
  StepResult r = results.first();
  const auto took = std::chrono::steady_clock::now() - start;
  CHECK(r.outcome == Outcome::kTimeout);
  CHECK(r.error == "step \"pay\" (payments.charge): no reply within 300ms");
  CHECK(took >= milliseconds(300));
  CHECK(took < milliseconds(2000));
  CHECK(adapter->pending() == 0);
  CHECK(adapter->stats().timeouts == 1);
}

TEST_CASE("duplicate and late replies are dropped; the attempt ends once") {
  SharedKafka& shared = SharedKafka::get();
  const MockCluster& mock = shared.mock();
  KafkaStepService* service = &shared.service();
  shared.set_handler([&](const KafkaStepRequest& req) -> std::optional<KafkaStepReply> {
    // Three answers to one request: the first counts, the others are
    // duplicates as an at-least-once service may send after a restart.
    for (int i = 0; i < 2; ++i) REQUIRE(service->reply(req, KafkaStepReply::ok({{"n", i}})).is_ok());
    return KafkaStepReply::failed("late");
  });
  auto adapter = make_adapter();
  Results results;
  adapter->dispatch(pay_call(mock, "s-dup"), results.callback());
  CHECK(results.first().output == Json{{"n", 0}});
  CHECK(eventually([&] { return adapter->stats().replies_dropped >= 2; }));
  std::this_thread::sleep_for(milliseconds(100));
  CHECK(results.count() == 1);
  CHECK(adapter->stats().replies_matched == 1);
}

TEST_CASE("a malformed reply ends its attempt at once as unknown, naming the step, not a crash") {
  SharedKafka& shared = SharedKafka::get();
  const MockCluster& mock = shared.mock();
  KafkaStepService* service = &shared.service();
  // Shared with the handler, which may outlive this test for replies in flight.
  auto value_ptr = std::make_shared<std::string>();
  std::string& value = *value_ptr;
  shared.set_handler([service, value_ptr](const KafkaStepRequest& req) -> std::optional<KafkaStepReply> {
    REQUIRE(service->reply_raw(req, *value_ptr).is_ok());
    return std::nullopt;
  });
  auto adapter = make_adapter();
  SUBCASE("cut-off JSON") {
    value = "{\"status\": \"ok\", \"output\": [oops";
    Results results;
    adapter->dispatch(pay_call(mock, "s-bad"), results.callback());
    StepResult r = results.first();
    CHECK(r.outcome == Outcome::kTimeout);
    CHECK(r.sent);
    CHECK(r.error.starts_with("step \"pay\" (payments.charge): malformed reply (not JSON): {\"status\""));
  }
  SUBCASE("UTF-16, as a service on another platform might send it") {
    for (char c : std::string(R"({"status":"failed","error":"x"})")) {
      value += c;
      value += '\0';
    }
    Results results;
    const auto start = std::chrono::steady_clock::now();
    adapter->dispatch(pay_call(mock, "s-utf16"), results.callback());
    StepResult r = results.first();
    CHECK(std::chrono::steady_clock::now() - start < milliseconds(5000));  // not its 10 s timeout
    CHECK(r.outcome == Outcome::kTimeout);
    CHECK(r.error.starts_with("step \"pay\" (payments.charge): malformed reply (not JSON): { \" s t a t u s"));
    CHECK(is_valid_utf8(r.error));
    CHECK(r.error.size() <= kMaxServiceTextBytes);
  }
  CHECK(adapter->stats().replies_matched == 1);
  CHECK(adapter->stats().timeouts == 0);
}

TEST_CASE("replies without a correlation id, or for someone else, are dropped") {
  SharedKafka& shared = SharedKafka::get();
  const MockCluster& mock = shared.mock();
  KafkaStepService* service = &shared.service();
  shared.set_handler([&](const KafkaStepRequest& req) -> std::optional<KafkaStepReply> {
    KafkaStepRequest other = req;
    other.correlation_id = "someone-else";
    REQUIRE(service->reply(other, KafkaStepReply::ok()).is_ok());
    return KafkaStepReply::ok({{"mine", true}});
  });
  auto adapter = make_adapter();
  Results results;
  adapter->dispatch(pay_call(mock, "s-other"), results.callback());
  CHECK(results.first().output == Json{{"mine", true}});
  CHECK(eventually([&] { return adapter->stats().replies_dropped >= 1; }));
}

TEST_CASE("a request the producer cannot deliver is a transient failure") {
  MockCluster mock;  // its own: all its brokers go down
  KafkaStepAdapterOptions options;
  options.properties = {{"message.timeout.ms", "1500"}};
  auto adapter = make_adapter(options);
  // A first call that nobody answers sets the reply topic up and connects
  // the producer while the brokers are up.
  Results warmup;
  adapter->dispatch(pay_call(mock, "s-warm", {{"amount", 1}}, Millis{500}), warmup.callback());
  REQUIRE_MESSAGE(warmup.first().outcome == Outcome::kTimeout, warmup.first().error);

  for (int32_t b = 1; b <= 3; ++b) mock.set_down(b);
  Results results;
  adapter->dispatch(pay_call(mock, "s-undelivered"), results.callback());
  StepResult r = results.first();
  // It never reached a broker (RD_KAFKA_MSG_STATUS_NOT_PERSISTED): not sent.
  CHECK(r.outcome == Outcome::kTransient);
  CHECK_FALSE(r.sent);
  CHECK(r.error.starts_with("step \"pay\" (payments.charge): delivery failed: "));
  CHECK(adapter->stats().delivery_failures >= 1);
  for (int32_t b = 1; b <= 3; ++b) mock.set_up(b);
}

TEST_CASE("a request whose delivery fails after it may have reached a broker is unknown") {
  // One broker and one partition, so the warm-up leaves the producer
  // connected to the leader the next request goes to.
  MockCluster mock(1, {"payments.requests", "usher.replies"}, 1);
  KafkaStepAdapterOptions options;
  options.properties = {{"message.timeout.ms", "1500"}, {"request.timeout.ms", "1000"}};
  auto adapter = make_adapter(options);
  Results warmup;
  adapter->dispatch(pay_call(mock, "s-warm", {{"amount", 1}}, Millis{500}), warmup.callback());
  REQUIRE_MESSAGE(warmup.first().outcome == Outcome::kTimeout, warmup.first().error);

  // The broker takes the request but answers after the message's timeout: it
  // is in flight when it expires, so it may be in the topic.
  rd_kafka_mock_broker_set_rtt(mock.get(), 1, 4000);
  Results results;
  adapter->dispatch(pay_call(mock, "s-in-flight"), results.callback());
  StepResult r = results.first();
  CHECK(r.outcome == Outcome::kTimeout);
  CHECK(r.sent);
  CHECK_MESSAGE(r.error.starts_with("step \"pay\" (payments.charge): delivery failed, the request may have "
                                    "reached the broker: "), r.error);
  rd_kafka_mock_broker_set_rtt(mock.get(), 1, 0);
}

TEST_CASE("a request the producer refuses at once (local queue full) never left") {
  MockCluster mock;
  KafkaStepAdapterOptions options;
  options.properties = {{"message.timeout.ms", "1500"}, {"queue.buffering.max.messages", "1"}};
  auto adapter = make_adapter(options);
  Results warmup;
  adapter->dispatch(pay_call(mock, "s-warm", {{"amount", 1}}, Millis{500}), warmup.callback());
  REQUIRE_MESSAGE(warmup.first().outcome == Outcome::kTimeout, warmup.first().error);

  // With the brokers down the first request stays in the producer's queue,
  // which holds one message.
  for (int32_t b = 1; b <= 3; ++b) mock.set_down(b);
  Results queued, refused;
  adapter->dispatch(pay_call(mock, "s-queued"), queued.callback());
  adapter->dispatch(pay_call(mock, "s-refused"), refused.callback());
  REQUIRE(refused.count() == 1);  // answered inline, before dispatch() returned
  StepResult r = refused.first();
  CHECK(r.outcome == Outcome::kTransient);
  CHECK_FALSE(r.sent);
  CHECK(r.error == "step \"pay\" (payments.charge): cannot produce to \"payments.requests\": Local: Queue full");
  CHECK_FALSE(queued.first().sent);  // then its delivery fails, never persisted
  for (int32_t b = 1; b <= 3; ++b) mock.set_up(b);
}

TEST_CASE("a reply topic that does not exist ends the calls waiting for it transient") {
  MockCluster mock;
  // The mock cluster creates topics on first use; a real one with
  // auto.create.topics.enable=false answers like this.
  rd_kafka_mock_topic_set_error(mock.get(), "no.such.replies", RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
  KafkaStepAdapterOptions options;
  options.setup_timeout = Millis{1000};
  auto adapter = make_adapter(options);
  StepCall call = pay_call(mock, "s-noreply");
  call.service.reply_topic = "no.such.replies";
  Results results;
  adapter->dispatch(call, results.callback());
  StepResult r = results.first();
  CHECK(r.outcome == Outcome::kTransient);
  CHECK_FALSE(r.sent);  // nothing was produced
  CHECK_MESSAGE(r.error.find("no.such.replies") != std::string::npos, r.error);
}

TEST_CASE("a service without kafka brokers or topic is a configuration failure") {
  auto adapter = make_adapter();
  StepCall call = pay_call(SharedKafka::get().mock(), "s-conf");
  call.service.topic.clear();
  Results results;
  adapter->dispatch(call, results.callback());
  CHECK(results.first(milliseconds(10)).outcome == Outcome::kFailed);
  CHECK_FALSE(results.first().sent);
  CHECK(results.first().error.find("has no kafka topic") != std::string::npos);
}

TEST_CASE("bad pass-through properties are refused at creation") {
  KafkaStepAdapterOptions options;
  options.properties = {{"no.such.property", "1"}};
  auto adapter = KafkaStepAdapter::create(options);
  REQUIRE_FALSE(adapter.is_ok());
  CHECK(adapter.status().code() == StatusCode::kInvalidArgument);
  CHECK(adapter.status().message().find("no.such.property") != std::string::npos);
}

TEST_CASE("shutdown drops waiting attempts; dispatch after it is transient at once") {
  SharedKafka& shared = SharedKafka::get();
  const MockCluster& mock = shared.mock();
  shared.set_handler(nullptr);
  auto adapter = make_adapter();
  Results waiting;
  adapter->dispatch(pay_call(mock, "s-wait"), waiting.callback());
  CHECK(eventually([&] { return adapter->stats().requests_produced == 1; }));
  adapter->shutdown();
  CHECK(waiting.count() == 0);
  Results after;
  adapter->dispatch(pay_call(mock, "s-after"), after.callback());
  CHECK(after.count() == 1);
  CHECK(after.first().outcome == Outcome::kTransient);
  CHECK_FALSE(after.first().sent);
  adapter->shutdown();  // idempotent
}

}  // namespace
}  // namespace usher::test
