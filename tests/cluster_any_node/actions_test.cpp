// Operator actions sent to node B for a saga node A holds (docs/cluster.md,
// "Any node answers"): B moves the saga to itself under a new fence, sends
// its call in flight again, applies the action; A writes and sends nothing
// more for it.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "cluster_any_node/any_node_harness.h"

using namespace usher::any_node;

namespace {

// A and B on a database of their own, the booking on `service`.
struct TwoNodes {
  explicit TwoNodes(const TempDir& dir) : database(cluster_database(dir)), cluster(dir, database, 2) {}
  Node& a() { return cluster.node(0); }
  Node& b() { return cluster.node(1); }
  std::string lines() const { return cluster.cluster_lines(); }

  std::string database;
  Cluster cluster;
};

// A saga started on A that got stuck there. By default its charge was
// refused, so it compensated, and its release was refused too; with
// `operations` {"send"}, its notification (after the pivot) was refused. The
// service refuses them until the test switches it back.
std::string stuck_on_a(TwoNodes& nodes, SwitchService& service, int n,
                       const std::vector<std::string>& operations = {"charge", "release"}) {
  for (const std::string& operation : operations) service.set(operation, SwitchService::refuse());
  auto r = start_on(nodes.a().port(), seat(n));
  REQUIRE_MESSAGE(r.status == 201, r.status << " " << r.error << r.body);
  const std::string id = id_of(r);
  REQUIRE(!id.empty());
  REQUIRE_MESSAGE(reaches(nodes.database, id, "stuck"),
                  "saga " << id << " is " << status_of(nodes.database, id) << ", not stuck\n" << nodes.lines());
  const LoggedSaga saga = read_log(nodes.database).at(id);
  REQUIRE_MESSAGE(saga.owner == nodes.a().first_id(), describe(saga));
  REQUIRE_MESSAGE(saga.fence == 1, describe(saga));
  return id;
}

}  // namespace

TEST_CASE("a cancel sent to B for a saga whose call A holds in flight moves the saga to B, which compensates it; "
          "A writes and sends nothing more for it") {
  TempDir dir;
  SwitchService service;
  service.set("hold", SwitchService::slow(3s));
  write_switch_workflow(dir, service);
  TwoNodes nodes(dir);
  const int64_t a = nodes.a().first_id(), b = nodes.b().first_id();

  auto started = start_on(nodes.a().port(), seat(1));
  REQUIRE_MESSAGE(started.status == 201, started.status << " " << started.error << started.body);
  const std::string id = id_of(started);
  REQUIRE(eventually([&] { return !service.calls("hold").empty(); }, 10s));
  REQUIRE(service.calls("hold").front().node == std::to_string(a));

  // B's own attempt of the hold is answered quickly; A's is still held.
  service.set("hold", SwitchService::slow(300ms));
  const double cancel_sent = wall_now_ms();
  auto cancelled = act_on(nodes.b().port(), id, "cancel");
  CHECK_MESSAGE(cancelled.status == 202, cancelled.status << " " << cancelled.error << cancelled.body);
  if (cancelled.status == 202) CHECK(id_of(cancelled) == id);

  CHECK_MESSAGE(reaches(nodes.database, id, "compensated"),
                "saga " << id << " is " << status_of(nodes.database, id) << "\n" << nodes.lines());
  // A's held hold is answered 3 s after it arrived; then A must drop the saga
  // at its next append, without sending anything.
  const double held_answered = wall_ms(service.calls("hold").front().at) + 3000;
  std::this_thread::sleep_for(std::chrono::milliseconds(
      std::max<int64_t>(0, static_cast<int64_t>(held_answered + 1000 - wall_now_ms()))));

  const LoggedSaga saga = read_log(nodes.database).at(id);
  check_moved(saga, a, b);
  const auto from_a = calls_after(service, id, a, cancel_sent);
  CHECK_MESSAGE(from_a.empty(), "node " << a << " sent calls after the cancel went to node " << b << ":"
                                        << describe(from_a));
  const auto from_b = calls_after(service, id, b, cancel_sent);
  bool released = false;
  for (const auto& c : from_b) released |= c.operation == "release" && c.status == 200;
  CHECK_MESSAGE(released, "node " << b << " did not release the hold:" << describe(from_b));
  MESSAGE("saga " << id << ": " << describe(saga) << "\ncalls:" << describe(service.calls()));
}

TEST_CASE("a retry sent to B for a saga stuck on A moves it to B, which finishes its compensation") {
  TempDir dir;
  SwitchService service;
  write_switch_workflow(dir, service);
  TwoNodes nodes(dir);
  const int64_t a = nodes.a().first_id(), b = nodes.b().first_id();
  const std::string id = stuck_on_a(nodes, service, 2);

  service.set("release", SwitchService::ok());
  const double retry_sent = wall_now_ms();
  auto retried = act_on(nodes.b().port(), id, "retry", {{"note", "the seat service is back"}});
  CHECK_MESSAGE(retried.status == 202, retried.status << " " << retried.error << retried.body);
  if (retried.status == 202) CHECK(id_of(retried) == id);
  CHECK_MESSAGE(reaches(nodes.database, id, "compensated"),
                "saga " << id << " is " << status_of(nodes.database, id) << "\n" << nodes.lines());

  const LoggedSaga saga = read_log(nodes.database).at(id);
  check_moved(saga, a, b);
  CHECK(calls_after(service, id, a, retry_sent).empty());
  const auto from_b = calls_after(service, id, b, retry_sent);
  CHECK_MESSAGE((from_b.size() == 1 && from_b[0].operation == "release" && from_b[0].status == 200),
                "wanted one release from node " << b << ":" << describe(from_b));
}

TEST_CASE("a retry sent to B for a saga stuck after its pivot on A moves it to B, which completes it") {
  TempDir dir;
  SwitchService service;
  write_switch_workflow(dir, service);
  TwoNodes nodes(dir);
  const int64_t a = nodes.a().first_id(), b = nodes.b().first_id();
  const std::string id = stuck_on_a(nodes, service, 5, {"send"});

  service.set("send", SwitchService::ok());
  const double retry_sent = wall_now_ms();
  auto retried = act_on(nodes.b().port(), id, "retry");
  CHECK_MESSAGE(retried.status == 202, retried.status << " " << retried.error << retried.body);
  CHECK_MESSAGE(reaches(nodes.database, id, "completed"),
                "saga " << id << " is " << status_of(nodes.database, id) << "\n" << nodes.lines());

  const LoggedSaga saga = read_log(nodes.database).at(id);
  check_moved(saga, a, b);
  CHECK(calls_after(service, id, a, retry_sent).empty());
  const auto from_b = calls_after(service, id, b, retry_sent);
  CHECK_MESSAGE((from_b.size() == 1 && from_b[0].operation == "send" && from_b[0].status == 200),
                "wanted one notification from node " << b << ":" << describe(from_b));
}

TEST_CASE("a resolve sent to B for a saga stuck on A moves it to B, which goes on as the operator said") {
  TempDir dir;
  SwitchService service;
  write_switch_workflow(dir, service);
  TwoNodes nodes(dir);
  const int64_t a = nodes.a().first_id(), b = nodes.b().first_id();
  const std::string id = stuck_on_a(nodes, service, 3);

  // The operator released the seat by hand: the saga has nothing left to undo.
  const double resolve_sent = wall_now_ms();
  auto resolved = act_on(nodes.b().port(), id, "resolve",
                         {{"step", "reserve"}, {"outcome", "succeeded"}, {"output", json::object()},
                          {"note", "released by hand"}});
  REQUIRE_MESSAGE((resolved.status == 200 || resolved.status == 202),
                resolved.status << " " << resolved.error << resolved.body);
  CHECK_MESSAGE(reaches(nodes.database, id, "compensated", 10s),
                "saga " << id << " is " << status_of(nodes.database, id) << "\n" << nodes.lines());

  const LoggedSaga saga = read_log(nodes.database).at(id);
  check_moved(saga, a, b);
  bool logged = false;
  for (const LoggedEvent& e : saga.events) logged |= e.type == "OperatorResolved" && e.node == b;
  CHECK_MESSAGE(logged, "no OperatorResolved by node " << b << "\n" << describe(saga));
  CHECK(calls_after(service, id, a, resolve_sent).empty());
  const auto from_b = calls_after(service, id, b, resolve_sent);
  CHECK_MESSAGE(from_b.empty(), "the resolved release was sent again:" << describe(from_b));
}

TEST_CASE("a terminate sent to B for a saga stuck on A moves it to B and ends it terminated; nothing more is sent") {
  TempDir dir;
  SwitchService service;
  write_switch_workflow(dir, service);
  TwoNodes nodes(dir);
  const int64_t a = nodes.a().first_id(), b = nodes.b().first_id();
  const std::string id = stuck_on_a(nodes, service, 4);

  service.set("release", SwitchService::ok());
  const double terminate_sent = wall_now_ms();
  auto terminated = act_on(nodes.b().port(), id, "terminate", {{"reason", "refunded out of band"}});
  REQUIRE_MESSAGE((terminated.status == 200 || terminated.status == 202),
                terminated.status << " " << terminated.error << terminated.body);
  CHECK_MESSAGE(reaches(nodes.database, id, "terminated", 10s),
                "saga " << id << " is " << status_of(nodes.database, id) << "\n" << nodes.lines());

  std::this_thread::sleep_for(500ms);
  const LoggedSaga saga = read_log(nodes.database).at(id);
  check_moved(saga, a, b);
  bool logged = false;
  for (const LoggedEvent& e : saga.events) logged |= e.type == "SagaTerminated" && e.node == b;
  CHECK_MESSAGE(logged, "no SagaTerminated by node " << b << "\n" << describe(saga));
  const auto after = calls_after(service, id, a, terminate_sent);
  CHECK_MESSAGE(after.empty(), "node " << a << " sent after the terminate:" << describe(after));
  const auto from_b = calls_after(service, id, b, terminate_sent);
  CHECK_MESSAGE(from_b.empty(), "node " << b << " sent after the terminate:" << describe(from_b));
}
