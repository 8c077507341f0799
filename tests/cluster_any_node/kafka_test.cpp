// Kafka replies reach the node that owns the saga (docs/cluster.md, "Any node
// answers"): every node reads the whole reply topic, the node whose attempt a
// reply answers takes it, the others drop it. Two `usher serve` nodes on one
// PostgreSQL database send their steps to a librdkafka mock cluster in the
// test process, answered by a KafkaStepService there.
#include <doctest/doctest.h>

#include <condition_variable>
#include <cstdio>
#include <deque>

#include "adapters/kafka/kafka_fixture.h"
#include "cluster_any_node/any_node_harness.h"

using namespace usher::any_node;

namespace {

// The step service: every request on payments.requests is answered ok
// (output {"ref": its idempotency key}) `latency` after it arrived, from a
// thread of its own, so many sagas are in flight at once. Records who sent
// each request (the usher-node header).
class DelayedReplies {
 public:
  struct Request {
    std::string saga, step, kind, node, correlation;
    double at_ms = 0;
  };

  DelayedReplies(const usher::test::MockCluster& mock, std::chrono::milliseconds latency) : latency_(latency) {
    replier_ = std::thread([this] { reply_loop(); });
    service_ = usher::test::start_service(mock, [this](const usher::KafkaStepRequest& req) {
      auto it = req.headers.find("usher-node");
      std::lock_guard lock(mu_);
      requests_.push_back({req.saga_id, req.step, req.kind, it == req.headers.end() ? "" : it->second,
                           req.correlation_id, wall_now_ms()});
      due_.push_back({std::chrono::steady_clock::now() + latency_, req});
      wake_.notify_one();
      return std::optional<usher::KafkaStepReply>();
    });
    std::lock_guard lock(mu_);
    ready_ = true;
    wake_.notify_one();
  }
  ~DelayedReplies() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
      wake_.notify_one();
    }
    replier_.join();
    service_->stop();
  }

  std::vector<Request> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  struct Due {
    std::chrono::steady_clock::time_point at;
    usher::KafkaStepRequest request;
  };

  void reply_loop() {
    std::unique_lock lock(mu_);
    for (;;) {
      if (stop_) return;
      if (!ready_ || due_.empty()) {
        wake_.wait(lock);
        continue;
      }
      if (std::chrono::steady_clock::now() < due_.front().at) {
        wake_.wait_until(lock, due_.front().at);
        continue;
      }
      Due d = std::move(due_.front());
      due_.pop_front();
      lock.unlock();
      auto status = service_->reply(d.request, usher::KafkaStepReply::ok({{"ref", d.request.idempotency_key}}));
      if (!status.is_ok())
        std::fprintf(stderr, "reply to %s not sent: %s\n", d.request.correlation_id.c_str(), status.to_string().c_str());
      lock.lock();
    }
  }

  const std::chrono::milliseconds latency_;
  mutable std::mutex mu_;  // guards everything below but the threads' handles
  std::condition_variable wake_;
  std::vector<Request> requests_;
  std::deque<Due> due_;  // in arrival order, so in due order
  bool ready_ = false;   // service_ is set
  bool stop_ = false;
  std::thread replier_;
  std::unique_ptr<usher::KafkaStepService> service_;
};

// Three steps, all over Kafka to payments.requests; answers come back on
// usher.replies, the topic every node reads.
void write_kafka_workflow(const TempDir& dir, const usher::test::MockCluster& mock) {
  std::string y;
  y += "saga: kafka-booking\nversion: 1\ndescription: any node answers, over Kafka\n";
  y += "services:\n  pay: { kafka: { brokers: \"" + mock.bootstraps() + "\", topic: payments.requests } }\n";
  y += "timeout: 10m\n";
  y += "defaults:\n  timeout: 5s\n";
  y += "  retry: { attempts: unlimited, backoff: 100ms, multiplier: 2, max_backoff: 400ms }\n";
  y += "steps:\n";
  y += "  - name: reserve\n    call: pay.hold\n    with: { saga: \"${saga.id}\" }\n";
  y += "    compensate: { call: pay.release, with: { saga: \"${saga.id}\" } }\n";
  y += "  - name: charge\n    call: pay.charge\n    with: { saga: \"${saga.id}\" }\n";
  y += "  - name: notify\n    type: retriable\n    call: pay.send\n    with: { saga: \"${saga.id}\" }\n";
  write_yaml(dir, "kafka-booking", y, "");
}

// Starts a saga on `node`; its id.
std::string start_kafka(Node& node, int n) {
  auto r = start_on(node.port(), seat(n), "kafka-" + std::to_string(n), "", "kafka-booking");
  REQUIRE_MESSAGE(r.status == 201, "start " << n << " on pid " << node.pid() << ": " << r.status << " " << r.error
                                            << r.body);
  return id_of(r);
}

std::string statuses(const std::string& database) {
  return PgCluster::shared().query(database,
                                   "SELECT string_agg(status || ' ' || n, ', ') FROM (SELECT status, count(*) AS n "
                                   "FROM sagas GROUP BY status) AS s");
}

}  // namespace

TEST_CASE("sagas started on two nodes with Kafka steps all complete, each on the node that started it, though both "
          "nodes read every reply") {
  usher::test::MockCluster mock;
  DelayedReplies service(mock, 100ms);
  TempDir dir;
  write_kafka_workflow(dir, mock);
  const std::string database = cluster_database(dir);
  Cluster cluster(dir, database, 2);
  const int64_t a = cluster.node(0).first_id(), b = cluster.node(1).first_id();

  std::map<std::string, int64_t> started_on;
  for (int n = 0; n < 30; ++n) {
    Node& node = cluster.node(n % 2);
    started_on[start_kafka(node, n)] = n % 2 == 0 ? a : b;
  }
  const bool settled = eventually([&] { return cluster.unsettled() == 0; }, 30s);
  CHECK_MESSAGE(settled, statuses(database) << "\n" << cluster.cluster_lines());

  const Log log = read_log(database);
  Findings f;
  for (const auto& [id, node] : started_on) {
    const LoggedSaga& saga = log.at(id);
    if (saga.status != "completed") f.add("saga not completed", describe(saga));
    if (saga.owner != node || saga.fence != 1) f.add("saga changed hands", "started on node " + std::to_string(node) + ": " + describe(saga));
    for (const LoggedEvent& e : saga.events)
      if (e.node != node) f.add("event by another node", "started on node " + std::to_string(node) + ": " + describe(saga));
  }
  for (const auto& r : service.requests())
    if (started_on.contains(r.saga) && r.node != std::to_string(started_on[r.saga]))
      f.add("request from another node", r.saga + " " + r.step + ":" + r.kind + " from node '" + r.node + "'");
  f.check({"saga not completed", "saga changed hands", "event by another node", "request from another node"});
  MESSAGE(started_on.size() << " sagas on nodes " << a << " and " << b << ": " << statuses(database) << "; "
                            << service.requests().size() << " Kafka requests");
}

TEST_CASE("the Kafka sagas of a node killed mid-run are taken over by the other node and complete: the call sent "
          "again is answered to the new owner") {
  usher::test::MockCluster mock;
  DelayedReplies service(mock, 300ms);
  TempDir dir;
  write_kafka_workflow(dir, mock);
  const std::string database = cluster_database(dir);
  Cluster cluster(dir, database, 2);
  Node& killed = cluster.node(0);
  Node& survivor = cluster.node(1);
  const int64_t a = killed.first_id(), b = survivor.first_id();

  // Sagas on both nodes, one every 40 ms, until the kill; then on B alone.
  std::set<std::string> all;
  int n = 0;
  for (; n < 60; ++n) {
    all.insert(start_kafka(cluster.node(static_cast<size_t>(n % 2)), n));
    std::this_thread::sleep_for(40ms);
  }
  const std::set<std::string> owned = cluster.owned_by(a);
  const double killed_at = wall_now_ms();
  killed.kill();
  REQUIRE_MESSAGE(!owned.empty(), "node " << a << " had no saga running when killed: " << statuses(database));
  for (; n < 80; ++n) {
    all.insert(start_kafka(survivor, n));
    std::this_thread::sleep_for(40ms);
  }

  const bool taken = eventually([&] { return cluster.owned_by(a).empty(); }, 20s);
  const double taken_ms = wall_now_ms() - killed_at;
  CHECK_MESSAGE(taken, "node " << a << " still owns " << cluster.owned_by(a).size() << " running sagas 20 s after "
                               << "its SIGKILL\n" << cluster.cluster_lines());
  // Lease (3 s) plus a sweep (0.5 s), with room for a loaded machine.
  CHECK_MESSAGE(taken_ms < 6000, "the sagas of node " << a << " were taken over " << taken_ms << " ms after its kill");
  const bool settled = eventually([&] { return cluster.unsettled() == 0; }, 30s);
  CHECK_MESSAGE(settled, statuses(database) << "\n" << cluster.cluster_lines());

  const Log log = read_log(database);
  const auto requests = service.requests();
  Findings f;
  for (const std::string& id : all) {
    const LoggedSaga& saga = log.at(id);
    if (saga.status != "completed") f.add("saga not completed", describe(saga));
  }
  size_t finished_by_killed = 0;
  for (const std::string& id : owned) {
    const LoggedSaga& saga = log.at(id);
    // Finished by the killed node itself, between reading `owned` and the
    // kill: nothing was left to take over. Its last COMMIT, sent before
    // SIGKILL took effect, may be applied just after it (as kill_test.cpp
    // allows), but no more than that one transaction.
    if (saga.owner == a && saga.status == "completed") {
      std::set<double> late_commits;
      for (const LoggedEvent& e : saga.events)
        if (e.node == a && e.committed_ms > killed_at) late_commits.insert(e.committed_ms);
      if (late_commits.size() > 1) f.add("event by the killed node after its kill", describe(saga));
      ++finished_by_killed;
      continue;
    }
    if (saga.owner != b || saga.fence != 2) f.add("not taken over by the survivor", describe(saga));
    // The survivor sent the call in flight again and took its reply: the
    // step it re-sent succeeded under its name.
    std::set<std::string> resent;
    for (const auto& r : requests)
      if (r.saga == id && r.node == std::to_string(b) && r.at_ms > killed_at) resent.insert(r.step);
    if (resent.empty()) f.add("no call sent again by the survivor", describe(saga));
    bool by_survivor = false;
    for (const LoggedEvent& e : saga.events) {
      if (e.type == "StepSucceeded" && resent.contains(e.step) && e.node == b) by_survivor = true;
      if (e.node == a && e.committed_ms > killed_at) f.add("event by the killed node after its kill", describe(saga));
    }
    if (!by_survivor) f.add("no reply to the survivor's call taken", describe(saga));
  }
  for (const auto& r : requests)
    if (r.node == std::to_string(a) && r.at_ms > killed_at + 100)
      f.add("request from the killed node", r.saga + " " + r.step);
  CHECK_MESSAGE(finished_by_killed < owned.size(),
                "every saga node " << a << " owned finished before its kill: nothing was taken over");
  f.check({"saga not completed", "not taken over by the survivor", "no call sent again by the survivor",
           "event by the killed node after its kill", "no reply to the survivor's call taken",
           "request from the killed node"});
  MESSAGE(all.size() << " sagas; node " << a << " killed owning " << owned.size() << " running sagas ("
                     << finished_by_killed << " finished by it as it went), all owned by node " << b << " after "
                     << static_cast<int64_t>(taken_ms) << " ms; " << statuses(database) << "; " << requests.size()
                     << " Kafka requests");
}
