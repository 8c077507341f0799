// usher-booking-history: a read model of concert bookings built from usher's
// event feed (docs/event-feed.md), in its own SQLite database.
//
//   usher-booking-history --server http://127.0.0.1:8080 [--token-file F] --db history.db [--once] [--rebuild]
//   usher-booking-history --kafka BROKERS [--topic usher.saga-events] [--group G] --db history.db [--once] [--rebuild]
//   usher-booking-history --db history.db --summary
//
// Reads the feed over HTTP (long poll of GET /v1/events) or from the Kafka
// topic usher publishes to, folds each concert-booking saga's events into
// one row of `bookings`, and keeps analytics as SQL views over it. See
// README.md for what it shows.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>

#include "http_feed.h"
#include "kafka_feed.h"
#include "read_model.h"
#include "summary.h"

using namespace booking_history;
using namespace std::chrono_literals;

namespace {

// Set by SIGINT/SIGTERM; every wait below is cut into short slices that look at it.
std::atomic<bool> g_stop{false};
extern "C" void on_signal(int) { g_stop.store(true); }

struct Options {
  std::string server, token_file;
  std::string db;
  KafkaFeedOptions kafka;
  int limit = 500;
  std::string wait = "10s";
  bool once = false, rebuild = false, summary = false;
};

// "250ms", "10s", "1m" (as usher writes durations), or a number of seconds.
std::optional<std::chrono::milliseconds> parse_duration(const std::string& text) {
  size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (...) {
    return std::nullopt;
  }
  const std::string unit = text.substr(used);
  double ms = unit == "ms" ? value : unit == "s" || unit.empty() ? value * 1000 : unit == "m" ? value * 60000 : -1;
  if (ms < 0) return std::nullopt;
  return std::chrono::milliseconds(static_cast<int64_t>(ms));
}

// Sleeps up to `d`, less when a signal asks to stop.
void nap(std::chrono::milliseconds d) {
  for (auto until = std::chrono::steady_clock::now() + d; !g_stop.load() && std::chrono::steady_clock::now() < until;)
    std::this_thread::sleep_for(50ms);
}

void report(const char* from, const ApplyCounts& c) {
  std::fprintf(stderr,
               "usher-booking-history: %s: %llu events applied, %llu repeats dropped, %llu of other workflows, "
               "%llu malformed skipped\n",
               from, static_cast<unsigned long long>(c.applied), static_cast<unsigned long long>(c.repeats),
               static_cast<unsigned long long>(c.other_workflows), static_cast<unsigned long long>(c.malformed));
}

// Follows the HTTP feed from the stored cursor. Each page is applied in one
// transaction with its `next`, so a restart continues exactly after the
// last page applied: no event twice, none lost.
int run_http(const Options& o, ReadModel& model, std::chrono::milliseconds wait) {
  std::string token;
  if (!o.token_file.empty()) {
    std::ifstream in(o.token_file);
    if (!in) {
      std::fprintf(stderr, "usher-booking-history: --token-file %s: cannot read it\n", o.token_file.c_str());
      return 1;
    }
    std::stringstream text;
    text << in.rdbuf();
    token = text.str();
    const size_t b = token.find_first_not_of(" \t\r\n"), e = token.find_last_not_of(" \t\r\n");
    token = b == std::string::npos ? "" : token.substr(b, e - b + 1);
  }
  HttpFeed feed(o.server, token);
  std::string cursor = model.position("http");
  ApplyCounts total;
  auto backoff = 1s;
  while (!g_stop.load()) {
    std::string error;
    // --once asks without waiting: an empty page then means "drained".
    auto page = feed.page(cursor, o.limit, o.once ? 0ms : wait, g_stop, error);
    if (!page) {
      if (g_stop.load()) break;
      std::fprintf(stderr, "usher-booking-history: %s: %s\n", o.server.c_str(), error.c_str());
      if (o.once) return 1;
      nap(backoff);  // usher restarting, or the network: try again, more slowly each time
      backoff = std::min<std::chrono::seconds>(backoff * 2, 30s);
      continue;
    }
    backoff = 1s;
    if (page->events.empty()) {
      if (o.once) break;
      continue;
    }
    total += model.apply(page->events, "http", page->next);
    cursor = page->next;
  }
  report(o.server.c_str(), total);
  return 0;
}

// Reads the topic from the group's committed offsets (from the beginning for
// a new group, or with --rebuild). Batches are applied, then their offsets
// committed: at least once, with repeats dropped by (saga_id, seq).
int run_kafka(const Options& o, ReadModel& model) {
  KafkaFeedOptions k = o.kafka;
  k.from_beginning = o.rebuild;
  KafkaFeed feed(k);
  // --once gives the topic a little while to appear; following waits for it.
  feed.assign(g_stop, o.once ? std::chrono::milliseconds(15s) : std::chrono::milliseconds(24h * 365));
  ApplyCounts total;
  auto progress = std::chrono::steady_clock::now();
  while (!g_stop.load()) {
    std::vector<nlohmann::json> events = feed.poll(static_cast<size_t>(o.limit), 200ms);
    if (!events.empty()) {
      total += model.apply(events);
      feed.commit();
      progress = std::chrono::steady_clock::now();
    }
    if (o.once && feed.drained()) break;
    if (o.once && std::chrono::steady_clock::now() - progress > 60s) {
      std::fprintf(stderr, "usher-booking-history: kafka: no event and no end of partition for 60 s; giving up\n");
      return 1;
    }
  }
  report(("kafka " + k.topic).c_str(), total);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"A read model of concert bookings, built from usher's event feed into SQLite."};
  Options o;
  auto* server = app.add_option("--server", o.server, "read the feed from usher over HTTP, e.g. http://127.0.0.1:8080");
  app.add_option("--token-file", o.token_file, "file holding the API token (sent as Authorization: Bearer)")
      ->needs(server);
  auto* kafka = app.add_option("--kafka", o.kafka.brokers, "read the feed from Kafka: bootstrap servers")->excludes(server);
  app.add_option("--topic", o.kafka.topic, "Kafka topic usher publishes to")->capture_default_str()->needs(kafka);
  app.add_option("--group", o.kafka.group_id, "Kafka consumer group (where offsets are committed)")
      ->capture_default_str()
      ->needs(kafka);
  app.add_option("--property", o.kafka.properties, "librdkafka property name=value (e.g. security.protocol=SASL_SSL)")
      ->needs(kafka);
  app.add_option("--db", o.db, "the read model's SQLite database")->required();
  app.add_option("--limit", o.limit, "events per page or batch")->capture_default_str()->check(CLI::Range(1, 1000));
  app.add_option("--wait", o.wait, "HTTP long poll: how long the server may hold an empty page")->capture_default_str();
  app.add_flag("--once", o.once, "read until the feed is drained, print the summary, exit");
  app.add_flag("--rebuild", o.rebuild, "drop the read model and replay the feed from its start");
  app.add_flag("--summary", o.summary, "print the summary of the database and exit (reads no feed)")
      ->excludes(server)
      ->excludes(kafka);
  CLI11_PARSE(app, argc, argv);

  const auto wait = parse_duration(o.wait);
  if (!wait || *wait > 60s) {
    std::fprintf(stderr, "usher-booking-history: --wait %s: expected a duration up to 60s (250ms, 10s)\n", o.wait.c_str());
    return 2;
  }
  if (!o.summary && o.server.empty() && o.kafka.brokers.empty()) {
    std::fprintf(stderr, "usher-booking-history: say where to read: --server URL or --kafka BROKERS (or --summary)\n");
    return 2;
  }

  // Without SA_RESTART nothing blocks through a signal; the loops look at g_stop.
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  try {
    ReadModel model(o.db);
    if (!o.summary) {
      if (o.rebuild) model.reset();
      const int rc = o.server.empty() ? run_kafka(o, model) : run_http(o, model, *wait);
      if (rc != 0) return rc;
    }
    std::fputs(summarize(model.db()).c_str(), stdout);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "usher-booking-history: %s\n", e.what());
    return 1;
  }
  return 0;
}
