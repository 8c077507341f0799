// `usher show ID [--at TIME]`: the timeline of one saga. With --at, the saga
// folded from the events up to that moment, and only those events' lines.
#include <iostream>

#include "commands.h"
#include "output.h"
#include "saga_source.h"
#include "timeline.h"
#include "usher/inspect.h"

namespace usher::cli {

namespace {

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
    at_us = parse_time(o.at);
    if (!at_us)
      return report(Answer::fail(kExitUsage, "--at \"" + o.at + "\" is not an RFC 3339 time, e.g. 2026-11-21T05:25:00Z"));
    at_text = o.at;
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
  if (at_text) std::cout << "\n" << paint("as of " + format_time(*at_us) + " (--at)", Color::kDim) << "\n";
  return kExitOk;
}

}  // namespace

void register_show(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<ShowOptions>();
  auto* cmd = app.add_subcommand("show", "Show a saga's timeline: steps, attempts, compensations");
  add_common_options(*cmd, options->common);
  cmd->add_option("id", options->id, "saga id");
  cmd->add_option("--at", options->at, "show the saga as it stood at this RFC 3339 time");
  cmd->callback([options, &exit_code] { exit_code = run_show(*options); });
}

}  // namespace usher::cli
