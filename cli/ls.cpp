// `usher ls [--status S] [--workflow W] [--limit N] [--after CURSOR]`: sagas,
// newest first (saga ids are time-ordered, so this is by start time).
#include <iostream>

#include "commands.h"
#include "output.h"
#include "saga_source.h"

namespace usher::cli {

namespace {

struct LsOptions {
  CommonOptions common;
  std::string status;
  std::string workflow;
  size_t limit = 50;
  std::string after;
};

int run_ls(const LsOptions& o) {
  SagaFilter filter;
  if (!o.status.empty()) {
    filter.status = parse_saga_status(o.status);
    if (!filter.status)
      return report(Answer::fail(kExitUsage, "unknown status \"" + o.status +
                                                 "\" (expected running, compensating, completed, compensated or stuck)"));
  }
  if (!o.workflow.empty()) filter.workflow = o.workflow;
  if (o.limit == 0) return report(Answer::fail(kExitUsage, "--limit must be at least 1"));
  filter.limit = o.limit;
  if (!o.after.empty()) filter.after = o.after;

  Answer failure;
  auto source = open_source(o.common, failure);
  if (!source) return report(failure);
  Answer page = source->list(filter);
  if (!page.ok()) return report(page);
  if (o.common.json) {
    print_json(page.json);
    return kExitOk;
  }
  const Json& sagas = page.json["sagas"];
  if (!sagas.is_array() || sagas.empty()) {
    std::cout << "no sagas\n";
    return kExitOk;
  }
  Table table({"ID", "WORKFLOW", "STATUS", "CURRENT STEP", "CREATED (UTC)", "UPDATED (UTC)"});
  for (const Json& s : sagas) {
    std::string workflow = string_at(s, "workflow").value_or("-");
    if (s.contains("version") && s["version"].is_number_integer())
      workflow += " v" + std::to_string(s["version"].get<int64_t>());
    const std::string status = string_at(s, "status").value_or("-");
    table.add_row({string_at(s, "id").value_or("-"), workflow, paint(status, status_color(status)),
                   string_at(s, "current_step").value_or("-"), table_time(string_at(s, "created_at")),
                   table_time(string_at(s, "updated_at"))});
  }
  table.print(std::cout);
  if (auto next = string_at(page.json, "next"))
    std::cout << paint("more: usher ls --after " + *next, Color::kDim) << "\n";
  return kExitOk;
}

}  // namespace

void register_ls(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<LsOptions>();
  auto* cmd = app.add_subcommand("ls", "List sagas, newest first");
  add_common_options(*cmd, options->common);
  cmd->add_option("--status", options->status, "only sagas in this status: running|compensating|completed|compensated|stuck");
  cmd->add_option("--workflow", options->workflow, "only sagas of this workflow");
  cmd->add_option("--limit", options->limit, "at most this many sagas (default 50)");
  cmd->add_option("--after", options->after, "the page after this cursor (printed as `more:` by the previous page)");
  cmd->callback([options, &exit_code] { exit_code = guarded([&] { return run_ls(*options); }); });
}

}  // namespace usher::cli
