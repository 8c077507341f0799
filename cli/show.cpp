// `usher show ID [--at TIME]`: the timeline of one saga. With --at, the saga
// folded from the events up to that moment, and only those events' lines.
// TIME is any time usher prints: RFC 3339 with or without a fraction
// ("2026-11-21T05:25:00.123Z", "…:00Z", "…:00+01:00", as `events`, `show` and
// --json write them) or the tables' UTC form without a zone ("2026-11-21
// 05:25:00", as `ls` writes it), read as UTC.
#include <cctype>
#include <cstdio>
#include <iostream>

#include "commands.h"
#include "output.h"
#include "saga_source.h"
#include "timeline.h"
#include "usher/inspect.h"

namespace usher::cli {

namespace {

// Events are stamped in microseconds but printed in milliseconds, so a time
// copied from `usher events` or `show` must cover its whole millisecond to
// include the event it was copied from: `--at T` means "up to the end of T at
// the precision it was written in" (…:27.713Z keeps events up to .713999,
// …:27Z up to .999999).
int64_t end_of_precision(const std::string& text, int64_t us) {
  size_t digits = 0;
  if (text.size() > 19 && text[19] == '.')
    while (20 + digits < text.size() && std::isdigit(static_cast<unsigned char>(text[20 + digits]))) ++digits;
  int64_t unit = 1;
  for (size_t i = digits; i < 6; ++i) unit *= 10;
  return us + unit - 1;
}

// --at's text as µs since the epoch. A time without a zone is the tables'
// "2026-11-21 05:25:00[.123]", which is UTC (their headers say so).
std::optional<int64_t> parse_at(const std::string& text) {
  if (auto us = parse_time(text)) return us;
  size_t end = 19;
  if (text.size() > end && text[end] == '.')
    for (++end; end < text.size() && std::isdigit(static_cast<unsigned char>(text[end]));) ++end;
  if (text.size() < 19 || end != text.size()) return std::nullopt;
  return parse_time(text + "Z");
}

// RFC 3339 with microseconds, so the server cuts where the log does.
std::string micros_time(int64_t us) {
  std::string t = format_time(us);  // …:27.713Z
  char extra[8];
  std::snprintf(extra, sizeof extra, "%03d", static_cast<int>(((us % 1000) + 1000) % 1000));
  return t.substr(0, t.size() - 1) + extra + "Z";
}

struct ShowOptions {
  CommonOptions common;
  std::string id;
  std::string at;
};

int run_show(const ShowOptions& o) {
  if (o.id.empty()) return report(Answer::fail(kExitUsage, "usage: usher show ID [--at TIME]"));
  std::optional<std::string> at_text;
  std::optional<int64_t> at_us;
  if (!o.at.empty()) {
    at_us = parse_at(o.at);
    if (!at_us)
      return report(Answer::fail(kExitUsage, "--at \"" + o.at +
                                                 "\" is not an RFC 3339 time, e.g. 2026-11-21T05:25:00Z or "
                                                 "\"2026-11-21 05:25:00\" (UTC)"));
    at_us = end_of_precision(o.at, *at_us);
    at_text = micros_time(*at_us);
  }
  Answer failure;
  auto source = open_source(o.common, failure);
  if (!source) return report(failure);
  Answer saga = source->saga(o.id, at_text, at_us);
  if (!saga.ok()) return report(saga);
  if (o.common.json) {
    print_json(saga.json);
    return kExitOk;
  }
  Answer events = source->events(o.id);
  if (!events.ok()) return report(events);
  if (at_us && events.json.contains("events") && events.json["events"].is_array()) {
    // The same cut the fold made: events that occurred at or before the moment.
    Json kept = Json::array();
    for (const Json& e : events.json["events"]) {
      auto when = time_at(e, "occurred_at");
      if (when && *when <= *at_us) kept.push_back(e);
    }
    events.json["events"] = std::move(kept);
  }
  render_timeline(std::cout, saga.json, &events.json);
  if (at_us) std::cout << "\n" << paint("as of " + o.at + " (--at)", Color::kDim) << "\n";
  return kExitOk;
}

}  // namespace

void register_show(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<ShowOptions>();
  auto* cmd = app.add_subcommand("show", "Show a saga's timeline: steps, attempts, compensations");
  add_common_options(*cmd, options->common);
  cmd->add_option("id", options->id, "saga id");
  cmd->add_option("--at", options->at,
                  "show the saga as it stood at this time: RFC 3339, or UTC as tables print it (\"2026-11-21 05:25:00\")");
  cmd->callback([options, &exit_code] { exit_code = guarded([&] { return run_show(*options); }); });
}

}  // namespace usher::cli
