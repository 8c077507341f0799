// `usher stats`: how many sagas are in each status, and since when the oldest
// running or compensating one has been going.
//
// Counted by the database from its indexes, no saga read: --db with
// LogInspector::stats, --server with GET /v1/stats, which answers the same;
// --json prints that document either way:
// {"sagas":{"running":n,"compensating":n,"completed":n,"compensated":n,"stuck":n,"terminated":n},
//  "total":n,"oldest_unfinished_created_at":RFC 3339|null}.
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
  for (const char* name : {"running", "compensating", "completed", "compensated", "stuck", "terminated"}) {
    const int64_t n = by_status.is_object() ? by_status.value(name, int64_t{0}) : 0;
    table.add_row({paint(name, n ? status_color(name) : Color::kNone), std::to_string(n)});
  }
  table.add_row({"total", std::to_string(stats.json.value("total", int64_t{0}))});
  table.print(std::cout);
  if (auto oldest = string_at(stats.json, "oldest_unfinished_created_at"))
    std::cout << "oldest running or compensating saga started " << table_time(oldest) << " (UTC)\n";
  return kExitOk;
}

}  // namespace

void register_stats(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<CommonOptions>();
  auto* cmd = app.add_subcommand(
      "stats", "Count sagas by status, from the database's indexes (--db, or --server through GET /v1/stats)");
  add_common_options(*cmd, *options);
  cmd->callback([options, &exit_code] { exit_code = guarded([&] { return run_stats(*options); }); });
}

}  // namespace usher::cli
