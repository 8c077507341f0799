// `usher events ID`: a saga's log, one line per event in seq order.
#include <iostream>

#include "commands.h"
#include "output.h"
#include "saga_source.h"

namespace usher::cli {

namespace {

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
  Table table({"SEQ", "TIME (UTC)", "TYPE", "STEP", "DATA"});
  if (events.json.contains("events") && events.json["events"].is_array()) {
    for (const Json& e : events.json["events"]) {
      auto when = time_at(e, "occurred_at");
      const Json data = e.contains("data") ? e["data"] : Json();
      table.add_row({e.contains("seq") ? e["seq"].dump() : "-",
                     when ? table_time(string_at(e, "occurred_at")) + clock_time(*when).substr(8) : "-",
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
