// `usher stats`: how many sagas are in each status.
//
// --db counts with LogInspector::stats (one query on the sagas table). The API
// has no counting route, so --server counts by listing each status page by
// page (see ServerSource::stats); --json prints the same document either way:
// {"sagas":{"running":n,"compensating":n,"completed":n,"compensated":n,"stuck":n},"total":n}.
#include <iostream>

#include "commands.h"
#include "output.h"
#include "saga_source.h"

namespace usher::cli {

namespace {

int run_stats(const CommonOptions& o) {
  Answer failure;
  auto source = open_source(o, failure);
  if (!source) return report(failure);
  Answer stats = source->stats();
  if (!stats.ok()) return report(stats);
  if (o.json) {
    print_json(stats.json);
    return kExitOk;
  }
  Table table({"STATUS", "SAGAS"});
  const Json& by_status = stats.json["sagas"];
  for (const char* name : {"running", "compensating", "completed", "compensated", "stuck"}) {
    const int64_t n = by_status.is_object() ? by_status.value(name, int64_t{0}) : 0;
    table.add_row({paint(name, n ? status_color(name) : Color::kNone), std::to_string(n)});
  }
  table.add_row({"total", std::to_string(stats.json.value("total", int64_t{0}))});
  table.print(std::cout);
  return kExitOk;
}

}  // namespace

void register_stats(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<CommonOptions>();
  auto* cmd = app.add_subcommand(
      "stats", "Count sagas by status (--server counts by listing each status through the API)");
  add_common_options(*cmd, *options);
  cmd->callback([options, &exit_code] { exit_code = guarded([&] { return run_stats(*options); }); });
}

}  // namespace usher::cli
