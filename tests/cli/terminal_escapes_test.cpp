// Nothing a client or a service put in a saga reaches the operator's
// terminal raw: a seat holding a title change (OSC … BEL), a screen clear
// with C1 CSI and a line break goes through usher start, and every command
// that shows it (tables and --json, through the server and from the log)
// prints it written out.
#include <doctest/doctest.h>

#include "serve_fixture.h"

namespace usher::test {
namespace {

// The control bytes in `out` other than the newlines between lines: C0, DEL,
// and the two-byte UTF-8 of U+0080–U+009F.
std::string raw_controls(const std::string& out) {
  std::string found;
  for (size_t i = 0; i < out.size(); ++i) {
    const auto c = static_cast<unsigned char>(out[i]);
    const bool c1 = c == 0xC2 && i + 1 < out.size() && static_cast<unsigned char>(out[i + 1]) < 0xA0 &&
                    static_cast<unsigned char>(out[i + 1]) >= 0x80;
    if ((c < 0x20 && c != '\n') || c == 0x7F || c1) found += "byte " + std::to_string(c) + " at " + std::to_string(i) + "; ";
  }
  return found;
}

}  // namespace

TEST_CASE("a saga's values with terminal escapes are printed written out by every command, never raw") {
  ServeFixture f;
  // JSON escapes in the input: the saga holds ESC, BEL, C1 CSI and a newline themselves.
  const std::string seat = R"(A1\u001b]0;pwned\u0007\u009b2J\nforged line)";
  auto started = run_usher("start ticket-sale --input '{\"userId\":\"u\\u001b[31m\",\"concertId\":\"c1\",\"seat\":\"" +
                           seat + "\",\"amount\":10}' --wait 10s -q " + f.server_flags());
  INFO(started.err);
  REQUIRE(started.exit_code == 0);
  const std::string id = trimmed(started.out);
  // The log holds the characters themselves (not the escapes): shown as stored.
  CHECK(saga(f, id)["input"]["seat"] == "A1\x1b]0;pwned\x07\xc2\x9b" "2J\nforged line");

  for (const std::string& source : std::vector<std::string>{f.server_flags(), f.db_flags()}) {
    for (const std::string& command : std::vector<std::string>{"show " + id, "show --json " + id, "events " + id, "events --json " + id,
                                       "ls", "ls --json", "tail", "tail --json"}) {
      CAPTURE(command);
      CAPTURE(source);
      auto r = run_usher(command + " " + source);
      REQUIRE(r.exit_code == 0);
      CHECK_MESSAGE(raw_controls(r.out).empty(), raw_controls(r.out));
      CHECK_MESSAGE(raw_controls(r.err).empty(), raw_controls(r.err));
      // (`tail` and `ls` tables show no input or data; the rest do.)
      if (command != "tail" && command.find("ls") != 0)
        CHECK_MESSAGE(r.out.find(R"(\u001b]0;pwned\u0007\u009b2J)") != std::string::npos, r.out);
    }
  }
  // --json output is still JSON, with the values intact.
  Json shown = parse_json_output(run_usher("show --json " + id + " " + f.db_flags()));
  CHECK(shown["input"]["seat"] == "A1\x1b]0;pwned\x07\xc2\x9b" "2J\nforged line");
  CHECK(shown["input"]["userId"] == "u\x1b[31m");
}

}  // namespace usher::test
