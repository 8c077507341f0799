// `usher validate`: output and exit codes of the built binary.
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "support/read_file.h"

namespace {

struct Run {
  int exit_code = -1;
  std::string out;  // stdout and stderr, each to its own file
  std::string err;
};

Run run_usher(const std::string& args) {
  const std::string base = (std::filesystem::temp_directory_path() / ("usher-validate-" + std::to_string(::getpid()))).string();
  const std::string cmd = USHER_BINARY_DIR "/cli/usher " + args + " >" + base + ".out 2>" + base + ".err";
  int status = std::system(cmd.c_str());
  Run r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = usher::test::read_file(base + ".out");
  r.err = usher::test::read_file(base + ".err");
  std::filesystem::remove(base + ".out");
  std::filesystem::remove(base + ".err");
  return r;
}

}  // namespace

TEST_CASE("usher validate prints one ok line per valid workflow and exits 0") {
  auto r = run_usher("validate " USHER_SOURCE_DIR "/workflows/concert-booking.yaml");
  CHECK(r.exit_code == 0);
  CHECK(r.err == "");
  CHECK(r.out == "ok  concert-booking v3  4 steps  pivot=confirm  " USHER_SOURCE_DIR "/workflows/concert-booking.yaml\n");

  auto dir = run_usher("validate " USHER_SOURCE_DIR "/workflows");
  CHECK(dir.exit_code == 0);
  CHECK(dir.out.find("ok  group-booking v1  5 steps  pivot=confirm") != std::string::npos);
  CHECK(dir.out.find("ok  seat-exchange v1  6 steps  pivot=reissue") != std::string::npos);
}

TEST_CASE("usher validate prints every problem as file:line:col and exits 1") {
  auto dir = std::filesystem::temp_directory_path() / ("usher-validate-dir-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string bad = (dir / "bad.yaml").string();
  std::ofstream(bad) << "saga: bad\n"
                        "services: { seats: { local: {} } }\n"
                        "steps:\n"
                        "  - name: pay\n"
                        "    call: seats.hold\n"
                        "    compensation: { call: seats.release }\n"
                        "    timeout: 5 secs\n";
  auto r = run_usher("validate " + bad + " " USHER_SOURCE_DIR "/workflows/group-booking.yaml");
  CHECK(r.exit_code == 1);
  CHECK(r.err == bad + ":6:5: step \"pay\": unknown field \"compensation\" (did you mean \"compensate\"?)\n" + bad +
                     ":7:14: step \"pay\": invalid duration \"5 secs\" for \"timeout\" (expected a number followed "
                     "by ms, s, m, h or d, e.g. \"250ms\" or \"5s\")\n");
  CHECK(r.out.find("ok  group-booking v1") == 0);

  auto missing = run_usher("validate " + (dir / "nope.yaml").string());
  CHECK(missing.exit_code == 1);
  CHECK(missing.err == (dir / "nope.yaml").string() + ": file does not exist\n");
  std::filesystem::remove_all(dir);
}

TEST_CASE("usher validate refuses an input reference the input schema does not declare, and exits 1") {
  auto dir = std::filesystem::temp_directory_path() / ("usher-validate-input-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string bad = (dir / "typo.yaml").string();
  std::ofstream(bad) << "saga: typo\n"
                        "services:\n"
                        "  seats: { http: { url: \"http://127.0.0.1:7101\" } }\n"
                        "  shop: { http: { url: \"ftp://shop.example.com\" } }\n"
                        "input:\n"
                        "  type: object\n"
                        "  required: [eventId, seat]\n"
                        "  properties:\n"
                        "    eventId: { type: string }\n"
                        "    seat: { type: string }\n"
                        "steps:\n"
                        "  - name: reserve\n"
                        "    call: seats.hold\n"
                        "    with: { eventId: \"${input.eventID}\", seat: \"${input.seat}\" }\n";
  auto r = run_usher("validate " + bad);
  CHECK(r.exit_code == 1);
  CHECK(r.out == "");
  CHECK(r.err == bad + ":4:24: service \"shop\": url \"ftp://shop.example.com\": unsupported scheme \"ftp\" "
                       "(expected http[s]://host[:port][/path])\n" +
                     bad + ":14:22: step \"reserve\": ${input.eventID}: the input schema declares no property "
                           "\"eventID\" (did you mean \"eventId\"?)\n");
  std::filesystem::remove_all(dir);
}

TEST_CASE("usher validate without a file is a usage error (exit 2)") {
  auto r = run_usher("validate");
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("give at least one workflow file or directory") != std::string::npos);
}
