// `publish: { kafka: … }`: usher serve publishes the event feed to a Kafka
// topic (a mock cluster), read back with kcat: every event, key = saga id,
// headers usher-saga-id/-seq/-type, each saga's events in seq order; exactly
// once while nothing crashes, and nothing lost through SIGKILLs (repeats
// then allowed, as the contract says: at least once).
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "serve/serve_rig.h"

using nlohmann::json;
namespace http = boost::beast::http;
using namespace usher::test;
using namespace std::chrono_literals;

namespace {

constexpr const char* kTopic = "usher.saga-events";

struct Message {
  std::string key;
  std::map<std::string, std::string> headers;
  json value;
};

// The output of a shell command; its exit code in `exit_code` when asked.
std::string run(const std::string& command, int* exit_code = nullptr) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) out.append(buf, n);
  const int status = ::pclose(pipe);
  if (exit_code) *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

// Every message of the topic, read with kcat from the beginning to the end
// of each partition.
std::vector<Message> consume(const std::string& brokers) {
  const std::string text = run("timeout 60 /usr/bin/kcat -C -q -b " + brokers + " -t " + kTopic +
                               " -o beginning -e -f '%k\\t%h\\t%s\\n'");
  std::vector<Message> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    const size_t a = line.find('\t'), b = line.find('\t', a + 1);
    REQUIRE_MESSAGE(b != std::string::npos, "not a message line: " << line);
    Message m;
    m.key = line.substr(0, a);
    std::istringstream hs(line.substr(a + 1, b - a - 1));
    for (std::string h; std::getline(hs, h, ',');)
      if (size_t eq = h.find('='); eq != std::string::npos) m.headers[h.substr(0, eq)] = h.substr(eq + 1);
    m.value = json::parse(line.substr(b + 1), nullptr, false);
    out.push_back(std::move(m));
  }
  return out;
}

// The whole feed, as GET /v1/events gives it.
std::vector<json> feed(uint16_t port) {
  std::vector<json> all;
  std::string after;
  for (;;) {
    auto r = request(port, http::verb::get, "/v1/events?limit=1000" + (after.empty() ? "" : "&after=" + after));
    REQUIRE(r.status == 200);
    json page = r.json();
    if (page["events"].empty()) return all;
    for (json& e : page["events"]) all.push_back(std::move(e));
    after = page["next"].get<std::string>();
  }
}

std::string start(uint16_t port, int i) {
  // Amounts above 1000 are declined: a share of the sagas compensate.
  const std::string body = R"({"userId":"u)" + std::to_string(i) + R"(","concertId":"c1","seat":"S)" +
                           std::to_string(i) + R"(","amount":)" + (i % 4 == 0 ? "5000" : "120") + "}";
  auto r = request(port, http::verb::post, "/v1/workflows/concert-booking/sagas", body,
                   {{"Idempotency-Key", "order-" + std::to_string(i)}});
  REQUIRE(r.status / 100 == 2);
  return r.json()["id"].get<std::string>();
}

// Checks the topic against the feed: every event there with its key and
// headers; each saga's events, once repeats are dropped, in seq order.
// Returns the number of repeats.
size_t check_topic(const std::vector<Message>& messages, const std::vector<json>& events) {
  std::map<std::string, std::vector<int64_t>> seqs;  // first sightings, per saga, in topic order
  std::set<std::pair<std::string, int64_t>> seen;
  size_t repeats = 0;
  for (const Message& m : messages) {
    REQUIRE_MESSAGE(m.value.is_object(), "a message value is not JSON");
    const std::string id = m.value["saga_id"].get<std::string>();
    const int64_t seq = m.value["seq"].get<int64_t>();
    CHECK(m.key == id);
    CHECK(m.headers.at("usher-saga-id") == id);
    CHECK(m.headers.at("usher-seq") == std::to_string(seq));
    CHECK(m.headers.at("usher-type") == m.value["type"].get<std::string>());
    if (!seen.insert({id, seq}).second) {
      ++repeats;
      continue;
    }
    seqs[id].push_back(seq);
  }
  for (const json& e : events) {
    const std::string id = e["saga_id"].get<std::string>();
    CHECK_MESSAGE(seen.contains({id, e["seq"].get<int64_t>()}), "not published: " << e.dump());
  }
  for (const auto& [id, list] : seqs) {
    for (size_t i = 0; i < list.size(); ++i)
      CHECK_MESSAGE(list[i] == static_cast<int64_t>(i) + 1, "saga " << id << ": seq " << list[i] << " at " << i);
  }
  CHECK(seen.size() == events.size());
  // The message is the feed's event itself.
  std::map<std::pair<std::string, int64_t>, json> by_key;
  for (const json& e : events) by_key[{e["saga_id"].get<std::string>(), e["seq"].get<int64_t>()}] = e;
  for (const Message& m : messages) {
    auto it = by_key.find({m.value["saga_id"].get<std::string>(), m.value["seq"].get<int64_t>()});
    if (it != by_key.end()) CHECK(m.value == it->second);
  }
  return repeats;
}

}  // namespace

TEST_CASE("usher serve publishes the event feed to Kafka: every event once, and through SIGKILLs none lost, each "
          "saga's in seq order") {
  TempDir dir;
  Services services;
  const std::string brokers = services.kafka.brokers;
  const std::string config = dir.file("usher.yaml");
  std::ofstream(config) << "publish:\n  kafka:\n    brokers: \"" << brokers << "\"\n    topic: " << kTopic << "\n";
  auto server = std::make_unique<Server>(dir, std::vector<std::string>{"--config", config});

  // No crash: what the topic holds is the feed, once.
  for (int i = 1; i <= 6; ++i) start(server->port, i);
  settle(server->port);
  json health = wait_published(server->port);
  CHECK(health["publication"]["name"] == std::string("kafka:") + kTopic);
  CHECK(health["publication"]["error"].is_null());
  auto events = feed(server->port);
  REQUIRE(events.size() >= 6 * 8);
  CHECK(check_topic(consume(brokers), events) == 0);
  auto metrics = request(server->port, http::verb::get, "/metrics").body;
  CHECK(metrics.find("usher_publication_active{publication=\"kafka:usher.saga-events\"} 1") != std::string::npos);
  CHECK(metrics.find("usher_publication_lag_events{publication=\"kafka:usher.saga-events\"} 0") != std::string::npos);

  // SIGKILLs while sagas run and events are being published; the restarted
  // server goes on from the stored position.
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 10; ++i) start(server->port, 100 + round * 10 + i);
    std::this_thread::sleep_for(std::chrono::milliseconds(150 + round * 150));
    server.reset();  // SIGKILL
    server = std::make_unique<Server>(dir, std::vector<std::string>{"--config", config});
  }
  settle(server->port);
  wait_published(server->port);
  events = feed(server->port);
  REQUIRE(events.size() >= 36 * 8);
  const size_t repeats = check_topic(consume(brokers), events);
  MESSAGE("publication through 3 SIGKILLs: " << events.size() << " events, " << repeats << " published again");
}

TEST_CASE("a publish: section without brokers, or with a key usher does not know, stops usher serve naming the key") {
  TempDir dir;
  struct Case {
    std::string yaml, says;
  };
  for (const Case& c : {Case{"publish:\n  kafka:\n    topic: t\n", "publish.kafka.brokers"},
                        Case{"publish:\n  kafka:\n    brokers: b:9092\n    partitions: 3\n", "publish.kafka.partitions"},
                        Case{"publish:\n  rabbitmq: {}\n", "publish.rabbitmq"},
                        Case{"publish: yes\n", "publish"}}) {
    std::ofstream(dir.file("bad.yaml")) << c.yaml;
    int exit_code = -1;
    const std::string out = run(std::string(USHER_BINARY_DIR "/cli/usher serve --config ") + dir.file("bad.yaml") +
                                    " --db " + dir.file("x.db") + " --listen 127.0.0.1:0 2>&1",
                                &exit_code);
    CAPTURE(c.yaml);
    CHECK(exit_code == 2);
    CHECK_MESSAGE(out.find(c.says) != std::string::npos, out);
  }
}

TEST_CASE("two nodes on one PostgreSQL log: one publishes, the other stands by and takes over when the first is "
          "SIGKILLed, and the topic has every event") {
  if (!testing_postgres()) return;  // a SQLite log has one node
  TempDir dir;
  Services services;
  const std::string brokers = services.kafka.brokers;
  const std::string config = dir.file("usher.yaml");
  std::ofstream(config) << "publish:\n  kafka:\n    brokers: \"" << brokers << "\"\n    topic: " << kTopic << "\n";
  std::array<std::unique_ptr<Server>, 2> nodes;
  for (auto& n : nodes) n = std::make_unique<Server>(dir, std::vector<std::string>{"--config", config});
  auto state = [&](size_t i) {
    return request(nodes[i]->port, http::verb::get, "/healthz").json()["publication"].value("state", "");
  };
  // Exactly one claims the publication.
  size_t publisher = 2;
  for (int i = 0; i < 200 && publisher == 2; ++i) {
    if (state(0) == "publishing") publisher = 0;
    else if (state(1) == "publishing") publisher = 1;
    else std::this_thread::sleep_for(50ms);
  }
  REQUIRE(publisher != 2);
  const size_t other = 1 - publisher;
  for (int i = 0; i < 40 && state(other) != "standby"; ++i) std::this_thread::sleep_for(50ms);
  CHECK(state(other) == "standby");
  CHECK(state(publisher) == "publishing");

  for (int i = 1; i <= 6; ++i) start(nodes[i % 2]->port, i);
  settle(nodes[other]->port);
  nodes[publisher].reset();  // SIGKILL: its connection closes, and its claim with it
  for (int i = 7; i <= 12; ++i) start(nodes[other]->port, i);
  for (int i = 0; i < 200 && state(other) != "publishing"; ++i) std::this_thread::sleep_for(50ms);
  CHECK(state(other) == "publishing");
  settle(nodes[other]->port);
  wait_published(nodes[other]->port);
  const auto events = feed(nodes[other]->port);
  REQUIRE(events.size() >= 12 * 8);
  const size_t repeats = check_topic(consume(brokers), events);
  MESSAGE("publication taken over by the other node: " << events.size() << " events, " << repeats
                                                         << " published again");
}
