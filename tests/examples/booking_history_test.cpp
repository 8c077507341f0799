// usher-booking-history (examples/booking-history) against a real usher serve
// that also publishes its feed to Kafka: the bookings table agrees with the
// API, a second run adds only what is new, --rebuild gives the same tables,
// the Kafka path gives the same bookings as the HTTP path, and repeated or
// malformed events change nothing.
#include <doctest/doctest.h>
#include <sqlite3.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
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
const std::string kBin = USHER_BINARY_DIR "/examples/booking-history/usher-booking-history";

struct Run {
  int exit_code = -1;
  std::string out, err;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs usher-booking-history with `args`; its stdout and stderr apart.
Run history(const TempDir& dir, const std::string& args) {
  const std::string err = dir.file("history.err");
  Run r;
  FILE* pipe = ::popen((kBin + " " + args + " 2>" + err).c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) r.out.append(buf, n);
  const int status = ::pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = slurp(err);
  return r;
}

// The rows of `sql` on the database at `path`, each as "col|col|…" (NULL as "∅").
std::vector<std::string> rows(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  // A follower may be writing the database right now: wait for its lock
  // rather than read nothing.
  sqlite3_busy_timeout(db, 10'000);
  sqlite3_stmt* stmt = nullptr;
  REQUIRE_MESSAGE(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK, sqlite3_errmsg(db));
  std::vector<std::string> out;
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    std::string row;
    for (int c = 0; c < sqlite3_column_count(stmt); ++c) {
      const unsigned char* t = sqlite3_column_text(stmt, c);
      row += std::string(c ? "|" : "") + (t ? reinterpret_cast<const char*>(t) : "∅");
    }
    out.push_back(row);
  }
  const std::string error = rc == SQLITE_DONE ? "" : sqlite3_errmsg(db);
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  REQUIRE_MESSAGE(error.empty(), "reading " << path << ": " << error);
  return out;
}

std::vector<std::string> bookings(const std::string& path) { return rows(path, "SELECT * FROM bookings ORDER BY saga_id"); }

// Every table and view of the read model, as text: what a rebuild must reproduce.
std::vector<std::string> dump(const std::string& path) {
  std::vector<std::string> all;
  for (const char* q : {"SELECT * FROM bookings ORDER BY saga_id", "SELECT * FROM feed_position ORDER BY source",
                        "SELECT * FROM bookings_per_concert_day ORDER BY concert_id, day",
                        "SELECT * FROM compensation_rate", "SELECT * FROM compensation_reasons ORDER BY reason",
                        "SELECT * FROM confirm_times ORDER BY saga_id", "SELECT * FROM confirm_time_average"}) {
    all.push_back(std::string("-- ") + q);
    for (std::string& r : rows(path, q)) all.push_back(std::move(r));
  }
  return all;
}

// A booking; amounts over 1000 are declined by payments and compensated.
std::string book(uint16_t port, int i, const std::string& concert, int amount) {
  const json body = {{"userId", "fan-" + std::to_string(i)},
                     {"concertId", concert},
                     {"seat", "S" + std::to_string(i)},
                     {"amount", amount}};
  auto r = request(port, http::verb::post, "/v1/workflows/concert-booking/sagas", body.dump(),
                   {{"Idempotency-Key", "order-" + std::to_string(i)}});
  REQUIRE(r.status / 100 == 2);
  return r.json()["id"].get<std::string>();
}

json sagas(uint16_t port) {
  auto r = request(port, http::verb::get, "/v1/sagas?workflow=concert-booking&limit=1000");
  REQUIRE(r.status == 200);
  return r.json()["sagas"];
}

const json& step(const json& saga, const std::string& name) {
  for (const json& s : saga["steps"])
    if (s["name"] == name) return s;
  FAIL("no step " << name);
  static json none;
  return none;
}

// The bookings table against the API's sagas: one row each, same status,
// input, times and ticket; the reason of a compensated one names the failed step.
void check_against_api(const std::string& db, const json& api) {
  std::map<std::string, std::vector<std::string>> table;
  for (const std::string& row :
       rows(db, "SELECT saga_id, status, user_id, concert_id, seat, amount, started_at, finished_at, outcome, reason, "
                "ticket_id, confirm_ms FROM bookings")) {
    std::vector<std::string> cols;
    std::istringstream in(row);
    for (std::string c; std::getline(in, c, '|');) cols.push_back(c);
    table[cols.at(0)] = cols;
  }
  REQUIRE(table.size() == api.size());
  for (const json& s : api) {
    const std::string id = s["id"].get<std::string>();
    REQUIRE_MESSAGE(table.contains(id), "no booking for saga " << id);
    const auto& c = table[id];
    CAPTURE(s.dump());
    CHECK(c[1] == s["status"].get<std::string>());
    CHECK(c[2] == s["input"]["userId"].get<std::string>());
    CHECK(c[3] == s["input"]["concertId"].get<std::string>());
    CHECK(c[4] == s["input"]["seat"].get<std::string>());
    CHECK(c[5] == std::to_string(s["input"]["amount"].get<int64_t>()));
    CHECK(c[6] == s["created_at"].get<std::string>());
    CHECK(c[7] == s["updated_at"].get<std::string>());  // the last event ended it
    CHECK(c[8] == s["status"].get<std::string>());
    if (s["status"] == "completed") {
      CHECK(c[9] == "∅");
      CHECK(c[10] == step(s, "confirm")["output"]["ticketId"].get<std::string>());
      CHECK(std::stoll(c[11]) >= 0);
    } else {
      REQUIRE(s["status"] == "compensated");
      // The adapter's error names the step; the reason says it once.
      const std::string error = step(s, "pay")["error"].get<std::string>();
      CHECK(error.find("card declined") != std::string::npos);
      CHECK(c[9].rfind("pay: payments.charge: card declined", 0) == 0);
      CHECK(error.ends_with(c[9].substr(std::string("pay: payments.charge: ").size())));
      CHECK(c[10] == "∅");
      CHECK(c[11] == "∅");
    }
  }
}

}  // namespace

TEST_CASE("usher-booking-history builds the bookings read model from the feed, over HTTP and from Kafka, idempotently") {
  TempDir dir;
  Services services;
  const std::string brokers = services.kafka.brokers;
  const std::string config = dir.file("usher.yaml");
  std::ofstream(config) << "publish:\n  kafka:\n    brokers: \"" << brokers << "\"\n    topic: " << kTopic << "\n";
  Server server(dir, {"--config", config});
  const std::string url = "http://127.0.0.1:" + std::to_string(server.port);
  const std::string a = dir.file("a.db"), b = dir.file("b.db"), c = dir.file("c.db"), d = dir.file("d.db");

  // 1. Four bookings at two concerts, one declined at each; the HTTP path.
  book(server.port, 1, "arena-2026", 120);
  book(server.port, 2, "arena-2026", 2400);
  book(server.port, 3, "club-2026", 80);
  book(server.port, 4, "club-2026", 5000);
  settle(server.port);
  Run first = history(dir, "--server " + url + " --db " + a + " --once");
  REQUIRE_MESSAGE(first.exit_code == 0, first.err);
  MESSAGE("first run:\n" << first.out << first.err);
  CHECK(first.out.find("bookings: 4 (2 completed, 2 compensated, 0 stuck)\n") == 0);
  CHECK(first.out.find("compensation rate: 50.0 %") != std::string::npos);
  CHECK(first.out.find("(2 confirmed)") != std::string::npos);
  check_against_api(a, sagas(server.port));
  const std::string today = sagas(server.port)[0]["created_at"].get<std::string>().substr(0, 10);
  CHECK(rows(a, "SELECT * FROM bookings_per_concert_day ORDER BY concert_id") ==
        std::vector<std::string>{"arena-2026|" + today + "|2", "club-2026|" + today + "|2"});
  CHECK(rows(a, "SELECT ended, compensated, percent FROM compensation_rate") ==
        std::vector<std::string>{"4|2|50.0"});
  {
    auto reasons = rows(a, "SELECT reason, bookings FROM compensation_reasons ORDER BY reason");
    REQUIRE(reasons.size() == 2);  // the declines name their amounts
    for (const std::string& r : reasons) CHECK(r.rfind("pay: ", 0) == 0);
  }
  CHECK(rows(a, "SELECT confirmed FROM confirm_time_average") == std::vector<std::string>{"2"});
  // --summary reads the same database without reading the feed.
  Run summary = history(dir, "--db " + a + " --summary");
  CHECK(summary.exit_code == 0);
  CHECK(summary.out == first.out);

  // 2. Again: nothing new, nothing changes. Then two more bookings: only
  // those are added, the rest stays as it was.
  const auto before = dump(a);
  Run again = history(dir, "--server " + url + " --db " + a + " --once");
  REQUIRE_MESSAGE(again.exit_code == 0, again.err);
  CHECK(again.err.find(": 0 events applied, 0 repeats dropped") != std::string::npos);
  CHECK(dump(a) == before);
  const auto old_rows = bookings(a);
  book(server.port, 5, "arena-2026", 300);
  book(server.port, 6, "arena-2026", 1500);
  settle(server.port);
  Run more = history(dir, "--server " + url + " --db " + a + " --once");
  REQUIRE_MESSAGE(more.exit_code == 0, more.err);
  CHECK(more.out.find("bookings: 6 (3 completed, 3 compensated, 0 stuck)\n") == 0);
  CHECK(more.err.find(" 0 repeats dropped") != std::string::npos);  // the cursor continued where it was
  check_against_api(a, sagas(server.port));
  {
    const auto new_rows = bookings(a);
    std::set<std::string> now(new_rows.begin(), new_rows.end());
    for (const std::string& r : old_rows) CHECK_MESSAGE(now.contains(r), "changed: " << r);
    CHECK(new_rows.size() == old_rows.size() + 2);
  }

  // 3. --rebuild on a copy: the same tables, row for row.
  std::filesystem::copy_file(a, c);
  Run rebuilt = history(dir, "--server " + url + " --db " + c + " --once --rebuild");
  REQUIRE_MESSAGE(rebuilt.exit_code == 0, rebuilt.err);
  CHECK(dump(c) == dump(a));
  CHECK(rebuilt.out == more.out);

  // 4. From Kafka: the same bookings as over HTTP.
  wait_published(server.port);
  const std::string from_kafka = "--kafka " + brokers + " --topic " + kTopic;
  Run kafka = history(dir, from_kafka + " --db " + b + " --once");
  REQUIRE_MESSAGE(kafka.exit_code == 0, kafka.err);
  MESSAGE("kafka run:\n" << kafka.out << kafka.err);
  CHECK(bookings(b) == bookings(a));
  CHECK(kafka.out == more.out);

  // 5. Repeats: a second consumer group reads the whole topic again into
  // the same database; every event is dropped as already applied.
  Run repeat = history(dir, from_kafka + " --group second-reader --db " + b + " --once");
  REQUIRE_MESSAGE(repeat.exit_code == 0, repeat.err);
  CHECK(repeat.err.find(": 0 events applied,") != std::string::npos);
  CHECK(bookings(b) == bookings(a));
  // The first group committed its offsets: it reads nothing at all.
  Run resumed = history(dir, from_kafka + " --db " + b + " --once");
  REQUIRE_MESSAGE(resumed.exit_code == 0, resumed.err);
  CHECK(resumed.err.find(": 0 events applied, 0 repeats dropped") != std::string::npos);
  // --rebuild from Kafka replays the topic from its start, whatever the group committed.
  Run kafka_rebuild = history(dir, from_kafka + " --db " + b + " --once --rebuild");
  REQUIRE_MESSAGE(kafka_rebuild.exit_code == 0, kafka_rebuild.err);
  CHECK(bookings(b) == bookings(a));

  // 6. Bad input on the topic is skipped with a warning: not JSON, not an
  // object, a missing seq, an unknown type (it still counts as the saga's event).
  const std::string bad = dir.file("bad.txt");
  std::ofstream(bad) << "not json at all\n[1,2,3]\n"
                     << R"({"saga_id":"x","workflow":"concert-booking","type":"SagaStarted","data":{},"occurred_at":"2026-01-01T00:00:00Z"})"
                     << "\n"
                     << R"({"saga_id":"bogus","workflow":"concert-booking","seq":1,"type":"SagaRenamed","step":null,"data":{},"occurred_at":"2026-01-01T00:00:00.000Z"})"
                     << "\n";
  int kcat_status = std::system(("/usr/bin/kcat -P -b " + brokers + " -t " + kTopic + " -l " + bad).c_str());
  REQUIRE(kcat_status == 0);
  Run skipping = history(dir, from_kafka + " --group third-reader --db " + d + " --once");
  REQUIRE_MESSAGE(skipping.exit_code == 0, skipping.err);
  MESSAGE("bad input:\n" << skipping.err);
  CHECK(skipping.err.find("skipped an event: not JSON") != std::string::npos);
  CHECK(skipping.err.find("skipped an event: not a JSON object: [1,2,3]") != std::string::npos);
  CHECK(skipping.err.find("\"seq\" is missing") != std::string::npos);
  CHECK(skipping.err.find("unknown event type \"SagaRenamed\"") != std::string::npos);
  CHECK(skipping.err.find("3 malformed skipped") != std::string::npos);
  CHECK(rows(d, "SELECT * FROM bookings WHERE saga_id != 'bogus' ORDER BY saga_id") == bookings(a));

  // 7. Following (no --once): a booking made while it long-polls arrives,
  // and SIGTERM ends it at once (not after the poll's 30 s wait), with exit 0.
  const std::string e = dir.file("e.db");
  Child follower({kBin, "--server", url, "--db", e, "--wait", "30s"});
  // The file exists a moment before its tables do.
  auto ready = [&] {
    return std::filesystem::exists(e) &&
           rows(e, "SELECT count(*) FROM sqlite_master WHERE name = 'bookings'") == std::vector<std::string>{"1"};
  };
  auto count = [&] { return ready() ? std::stoi(rows(e, "SELECT count(*) FROM bookings").at(0)) : -1; };
  auto wait_for = [&](int n) {
    for (int i = 0; i < 200 && count() != n; ++i) std::this_thread::sleep_for(50ms);
    CHECK(count() == n);
  };
  wait_for(6);
  book(server.port, 7, "club-2026", 90);
  settle(server.port);
  wait_for(7);
  const auto stopped_at = std::chrono::steady_clock::now();
  CHECK(follower.signal_and_wait(SIGTERM, 5s) == std::optional<int>(0));
  CHECK(std::chrono::steady_clock::now() - stopped_at < 5s);  // far below the poll's 30 s wait
  check_against_api(e, sagas(server.port));
}
