// `usher tail`: the event feed from the CLI, through a real `usher serve`
// (--server) and from the log itself (--db), once and with --follow.
#include <doctest/doctest.h>

#include <map>
#include <sstream>

#include "serve_fixture.h"

namespace usher::test {
namespace {

std::vector<Json> json_lines(const CommandResult& r) {
  INFO("exit " << r.exit_code << "\nstdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  std::vector<Json> out;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    Json j = Json::parse(line, nullptr, false);
    REQUIRE_MESSAGE(!j.is_discarded(), "not a JSON line: " << line);
    out.push_back(std::move(j));
  }
  return out;
}

std::string start_booking(const ServeFixture& f, const std::string& seat) {
  auto r = run_usher("start ticket-sale" + input(seat) + " --wait 10s -q " + f.server_flags());
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  return trimmed(r.out);
}

}  // namespace

TEST_CASE("usher tail prints every saga's events in commit order, the same through the server and from the log") {
  ServeFixture f;
  const std::string a = start_booking(f, "A1");
  const std::string b = start_booking(f, "B2");

  auto served = json_lines(run_usher("tail --json " + f.server_flags()));
  auto logged = json_lines(run_usher("tail --json " + f.db_flags()));
  REQUIRE(served.size() >= 10);  // two sagas of four steps
  CHECK(served == logged);
  std::map<std::string, int64_t> seq;
  int64_t cursor = 0;
  for (const Json& e : served) {
    CHECK(std::stoll(e["cursor"].get<std::string>()) > cursor);
    cursor = std::stoll(e["cursor"].get<std::string>());
    CHECK(e["workflow"] == "ticket-sale");
    CHECK(e["seq"].get<int64_t>() == ++seq[e["saga_id"].get<std::string>()]);
  }
  CHECK(seq.size() == 2);
  CHECK(seq.contains(a));
  CHECK(seq.contains(b));

  SUBCASE("--after a cursor: only the events after it") {
    const std::string third = served[2]["cursor"].get<std::string>();
    auto rest = json_lines(run_usher("tail --json --after " + third + " " + f.server_flags()));
    REQUIRE(rest.size() == served.size() - 3);
    CHECK(rest.front() == served[3]);
  }
  SUBCASE("a table line per event, and where to go on from") {
    auto r = run_usher("tail " + f.server_flags());
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.find(a) != std::string::npos);
    CHECK(r.out.find("SagaStarted") != std::string::npos);
    CHECK(r.out.find("SagaCompleted") != std::string::npos);
    CHECK(r.err.find("tail --after " + served.back()["cursor"].get<std::string>()) != std::string::npos);
  }
  SUBCASE("a cursor that is not one: exit 1, naming it") {
    auto r = run_usher("tail --after nope " + f.server_flags());
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("\"nope\" is not a feed cursor") != std::string::npos);
  }
}

TEST_CASE("usher tail --follow prints events as they are committed, through the server and from the log") {
  ServeFixture f;
  start_booking(f, "A1");

  for (const bool from_log : {false, true}) {
    CAPTURE(from_log);
    const size_t before = json_lines(run_usher("tail --json " + f.db_flags())).size();
    std::vector<std::string> argv{USHER_BINARY_DIR "/cli/usher", "tail", "--follow", "--json"};
    if (from_log) {
      argv.insert(argv.end(), {"--db", f.db()});
    } else {
      argv.insert(argv.end(), {"--server", f.url(), "--token-file", f.token_file()});
    }
    Child tail(argv);
    for (size_t i = 0; i < before; ++i) REQUIRE(tail.read_line().has_value());
    const std::string id = start_booking(f, from_log ? "C3" : "B2");
    auto line = tail.read_line(std::chrono::seconds(10));
    REQUIRE(line.has_value());
    Json first = Json::parse(*line);
    CHECK(first["saga_id"] == id);
    CHECK(first["type"] == "SagaStarted");
    // The followed feed goes on: the saga's last event arrives too.
    bool ended = false;
    while (!ended) {
      auto next = tail.read_line(std::chrono::seconds(10));
      REQUIRE(next.has_value());
      Json e = Json::parse(*next);
      ended = e["saga_id"] == id && e["type"] == "SagaCompleted";
    }
  }
}

}  // namespace usher::test
