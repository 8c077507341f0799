// usher-kafka-sandbox [--brokers 3] [--topics a,b] [--partitions 4]
//
// Starts librdkafka's mock cluster: brokers that speak the real Kafka protocol
// on 127.0.0.1 ports, keep everything in memory and need no ZooKeeper, JVM or
// disk. Prints one line `bootstrap.servers=HOST:PORT,...` (then flushes, so a
// script or test can read it from a pipe) and runs until SIGINT or SIGTERM.
//
// Not a real broker: data is lost when it stops, and transactions and some
// admin requests are missing. Enough for usher's producer, its reply consumer,
// kcat and the example services.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <csignal>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace {

volatile std::sig_atomic_t g_stop = 0;
extern "C" void on_signal(int) { g_stop = 1; }

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"A local Kafka mock cluster (librdkafka) for trying usher's Kafka steps."};
  int brokers = 3;
  std::string topics = "payments.requests,usher.replies";
  int partitions = 4;
  app.add_option("--brokers", brokers, "number of brokers")->check(CLI::Range(1, 16));
  app.add_option("--topics", topics, "topics to create, comma-separated (others are created on first use)");
  app.add_option("--partitions", partitions, "partitions of each created topic")->check(CLI::Range(1, 64));
  CLI11_PARSE(app, argc, argv);

  // The mock cluster lives inside a client handle; this one is never used for
  // anything else. Its log lines go to stderr; notices are silenced because
  // it has, on purpose, no bootstrap.servers of its own.
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "4", err, sizeof err);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!rk) {
    std::fprintf(stderr, "usher-kafka-sandbox: %s\n", err);
    return 1;
  }
  rd_kafka_mock_cluster_t* cluster = rd_kafka_mock_cluster_new(rk, brokers);
  if (!cluster) {
    std::fprintf(stderr, "usher-kafka-sandbox: cannot start the mock cluster\n");
    rd_kafka_destroy(rk);
    return 1;
  }
  for (const std::string& topic : split(topics)) {
    const int replication = brokers < 3 ? brokers : 3;
    if (rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(cluster, topic.c_str(), partitions, replication)) {
      std::fprintf(stderr, "usher-kafka-sandbox: topic %s: %s\n", topic.c_str(), rd_kafka_err2str(e));
      rd_kafka_mock_cluster_destroy(cluster);
      rd_kafka_destroy(rk);
      return 1;
    }
  }

  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::printf("bootstrap.servers=%s\n", rd_kafka_mock_cluster_bootstraps(cluster));
  std::fflush(stdout);
  std::fprintf(stderr, "usher-kafka-sandbox: %d broker(s), topics %s; Ctrl-C to stop\n", brokers, topics.c_str());

  // The cluster runs on its own thread; this one only waits for a signal.
  while (!g_stop) rd_kafka_poll(rk, 200);

  rd_kafka_mock_cluster_destroy(cluster);
  rd_kafka_destroy(rk);
  return 0;
}
