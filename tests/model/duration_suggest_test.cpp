// Durations ("250ms" … "1d") and did-you-mean suggestions.
#include <doctest/doctest.h>

#include "model/suggest.h"
#include "usher/duration.h"

using usher::Millis;
using usher::format_duration;
using usher::parse_duration;

TEST_CASE("parses durations in ms, s, m, h and d") {
  CHECK(parse_duration("250ms") == Millis{250});
  CHECK(parse_duration("5s") == Millis{5'000});
  CHECK(parse_duration("10m") == Millis{600'000});
  CHECK(parse_duration("2h") == Millis{7'200'000});
  CHECK(parse_duration("1d") == Millis{86'400'000});
  CHECK(parse_duration("0s") == Millis{0});
  CHECK(parse_duration("1.5s") == Millis{1'500});
  CHECK(parse_duration("36500d") == usher::kMaxDuration);
  for (const char* bad : {"", "5", "s", "5 s", "5 secs", "5S", "-1s", "1.5ms", "1.s", ".5s", "36501d",
                          "9999999999999d", "5sec", "1e3ms"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_duration(bad).has_value());
  }
}

TEST_CASE("formats durations in the largest exact unit") {
  CHECK(format_duration(Millis{250}) == "250ms");
  CHECK(format_duration(Millis{1'500}) == "1.5s");
  CHECK(format_duration(Millis{5'000}) == "5s");
  CHECK(format_duration(Millis{600'000}) == "10m");
  CHECK(format_duration(Millis{7'200'000}) == "2h");
  CHECK(format_duration(Millis{86'400'000}) == "1d");
  CHECK(format_duration(Millis{0}) == "0s");
  for (const char* text : {"250ms", "5s", "10m", "2h", "1d", "90s"}) CHECK(format_duration(*parse_duration(text)) == text);
}

TEST_CASE("a duration that is not whole seconds is written in seconds with its milliseconds") {
  CHECK(format_duration(Millis{1'234}) == "1.234s");
  CHECK(format_duration(Millis{1'050}) == "1.05s");
  CHECK(format_duration(Millis{61'250}) == "61.25s");
  CHECK(format_duration(Millis{90'000}) == "90s");
  CHECK(format_duration(Millis{5'400'000}) == "90m");
  CHECK(format_duration(Millis{120'000}) == "2m");  // not "120s" or "120000ms", whatever the transport
  CHECK(format_duration(Millis{-1'500}) == "-1.5s");
}

TEST_CASE("what format_duration writes, parse_duration reads back to the same value") {
  for (int64_t ms : {int64_t{1}, int64_t{999}, int64_t{1'001}, int64_t{59'999}, int64_t{60'001}, int64_t{3'599'999},
                     int64_t{86'400'001}, int64_t{123'456'789}, usher::kMaxDuration.count() - 1,
                     usher::kMaxDuration.count()}) {
    CAPTURE(ms);
    auto back = parse_duration(format_duration(Millis{ms}));
    REQUIRE(back.has_value());
    CHECK(*back == Millis{ms});
  }
}

TEST_CASE("suggests the closest name for a likely typo only") {
  const std::vector<std::string> fields = {"name", "type", "call", "with", "compensate", "http", "timeout", "retry"};
  CHECK(usher::did_you_mean("compensation", fields) == " (did you mean \"compensate\"?)");
  CHECK(usher::did_you_mean("timout", fields) == " (did you mean \"timeout\"?)");
  CHECK(usher::did_you_mean("Call", fields) == " (did you mean \"call\"?)");
  CHECK(usher::did_you_mean("retyr", fields) == " (did you mean \"retry\"?)");
  CHECK(usher::did_you_mean("payload", fields) == "");
  CHECK(usher::did_you_mean("", fields) == "");
  CHECK(usher::edit_distance("paymnets", "payments") == 1);
  CHECK(usher::edit_distance("kitten", "sitting") == 3);
  CHECK_FALSE(usher::closest_match(std::string(1000, 'a'), fields).has_value());
}
