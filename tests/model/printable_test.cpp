// usher::printable: control characters written out, everything else kept.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "usher/printable.h"

using usher::printable;

TEST_CASE("printable writes out C0, DEL and C1 controls and keeps ordinary text in any script") {
  CHECK(printable("seat A1") == "seat A1");
  CHECK(printable("Zürich → 東京 🎫") == "Zürich → 東京 🎫");
  // A title change (OSC … BEL) and a screen clear (CSI 2 J), with ESC and with C1 CSI.
  CHECK(printable("\x1b]0;pwned\x07") == "\\u001b]0;pwned\\u0007");
  CHECK(printable("\x1b[2J") == "\\u001b[2J");
  CHECK(printable("\xc2\x9b" "2J") == "\\u009b2J");
  CHECK(printable("\xc2\x85") == "\\u0085");     // NEL
  CHECK(printable("\xc2\xa0") == "\xc2\xa0");    // U+00A0 is not a control
  CHECK(printable("a\nb\rc\td") == "a\\u000ab\\u000dc\\u0009d");
  CHECK(printable(std::string("x\0y", 3)) == "x\\u0000y");
  CHECK(printable("\x7f") == "\\u007f");
  CHECK(printable("\xff\xfe") == "\xEF\xBF\xBD\xEF\xBF\xBD");  // not UTF-8: U+FFFD
  CHECK(printable("\xc2") == "\xEF\xBF\xBD");                  // cut sequence
}

TEST_CASE("printable keeps JSON text JSON: its escapes are JSON string escapes") {
  nlohmann::json j = {{"seat", "\xc2\x9b" "31mred"}, {"note", "\x7f"}};
  const std::string dumped = j.dump();  // nlohmann leaves DEL and C1 raw
  const std::string safe = printable(dumped);
  CHECK(safe.find('\x7f') == std::string::npos);
  CHECK(safe.find("\xc2\x9b") == std::string::npos);
  CHECK(nlohmann::json::parse(safe) == j);
}
