// `usher events ID`: a saga's log, one line per event in seq order. Every
// time is printed as RFC 3339 UTC, as the API writes times ("2026-11-21T05:25:00.123Z",
// which `show --at` takes back): the event's own, and the instants its data
// holds as µs since the epoch (a deadline, a retry's `at`). --json prints the
// API's document unchanged.
#include <iostream>

#include "commands.h"
#include "output.h"
#include "saga_source.h"
#include "usher/inspect.h"

namespace usher::cli {

namespace {

// An event's data with its instants (µs since the epoch in the log: `deadline`,
// `at`, any `…_at`) written as RFC 3339 times.
Json readable_data(Json data) {
  if (!data.is_object()) return data;
  for (auto it = data.begin(); it != data.end(); ++it) {
    const std::string& key = it.key();
    const bool instant = key == "deadline" || key == "at" || (key.size() > 3 && key.ends_with("_at"));
    if (instant && it.value().is_number_integer()) it.value() = format_time(it.value().get<int64_t>());
  }
  return data;
}

struct EventsOptions {
  CommonOptions common;
  std::string id;
};

int run_events(const EventsOptions& o) {
  if (o.id.empty()) return report(Answer::fail(kExitUsage, "usage: usher events ID"));
  Answer failure;
  auto source = open_source(o.common, failure);
  if (!source) return report(failure);
  Answer events = source->events(o.id);
  if (!events.ok()) return report(events);
  if (o.common.json) {
    print_json(events.json);
    return kExitOk;
  }
  Table table({"SEQ", "TIME", "TYPE", "STEP", "DATA"});
  if (events.json.contains("events") && events.json["events"].is_array()) {
    for (const Json& e : events.json["events"]) {
      auto when = time_at(e, "occurred_at");
      const Json data = e.contains("data") ? readable_data(e["data"]) : Json();
      table.add_row({e.contains("seq") ? e["seq"].dump() : "-", when ? format_time(*when) : "-",
                     string_at(e, "type").value_or("-"), string_at(e, "step").value_or("-"),
                     data.is_null() || (data.is_object() && data.empty()) ? "" : compact_json(data, 200)});
    }
  }
  table.print(std::cout);
  return kExitOk;
}

}  // namespace

void register_events(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<EventsOptions>();
  auto* cmd = app.add_subcommand("events", "Print a saga's event log");
  add_common_options(*cmd, options->common);
  cmd->add_option("id", options->id, "saga id");
  cmd->callback([options, &exit_code] { exit_code = guarded([&] { return run_events(*options); }); });
}

}  // namespace usher::cli
