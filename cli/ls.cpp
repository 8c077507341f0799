// `usher ls [--status S] [--workflow W] [--key K] [--correlation C]
// [--since TIME] [--until TIME] [--limit N] [--after CURSOR]`: sagas, newest
// first (saga ids are time-ordered, so this is by start time), filtered as
// GET /v1/sagas filters them, the same from --db and --server.
#include <iostream>
#include <optional>
#include <tuple>

#include "commands.h"
#include "output.h"
#include "saga_source.h"
#include "usher/inspect.h"

namespace usher::cli {

namespace {

// The API's bounds on a page (GET /v1/sagas), kept here too so that --db
// pages as --server does.
constexpr size_t kDefaultLimit = 50;
constexpr size_t kMaxLimit = 1000;

struct LsOptions {
  CommonOptions common;
  std::string status;
  std::string workflow;
  size_t limit = kDefaultLimit;
  std::string after;
  std::string key;
  std::string correlation;
  std::string since;
  std::string until;
};

// A flag value as a POSIX shell reads it back: quoted unless plainly one word.
std::string shell_word(const std::string& text) {
  const bool plain = !text.empty() && text.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                              "0123456789_-./:@%+=,") == std::string::npos;
  if (plain) return text;
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

// The flags that chose this page, so that the next page's command keeps them
// (follow_up_command adds --db or --server).
std::string filter_flags(const LsOptions& o) {
  std::string flags;
  auto add = [&](const char* flag, const std::string& value) {
    if (!value.empty()) flags += std::string(" ") + flag + " " + shell_word(value);
  };
  add("--status", o.status);
  add("--workflow", o.workflow);
  add("--key", o.key);
  add("--correlation", o.correlation);
  add("--since", o.since);
  add("--until", o.until);
  if (o.limit != kDefaultLimit) flags += " --limit " + std::to_string(o.limit);
  return flags;
}

// RFC 3339, or a time as `ls` prints it ("2026-11-21 05:25:00", UTC).
std::optional<int64_t> parse_flag_time(const std::string& text) {
  if (auto us = parse_time(text)) return us;
  return parse_time(text + "Z");  // no zone: UTC, as the table's header says
}

int run_ls(const LsOptions& o) {
  SagaFilter filter;
  if (!o.status.empty()) {
    filter.status = parse_saga_status(o.status);
    if (!filter.status)
      return report(Answer::fail(kExitUsage, "unknown status \"" + o.status +
                                                 "\" (expected running, compensating, completed, compensated, stuck "
                                                 "or terminated)"));
  }
  if (!o.workflow.empty()) filter.workflow = o.workflow;
  if (o.limit < 1 || o.limit > kMaxLimit)
    return report(Answer::fail(kExitUsage, "--limit must be from 1 to " + std::to_string(kMaxLimit)));
  filter.limit = o.limit;
  if (!o.after.empty()) {
    if (!is_saga_id(o.after))
      return report(Answer::fail(kExitUsage, "--after \"" + o.after +
                                                 "\" is not a cursor: give the saga id a previous page printed after "
                                                 "`more: usher ls --after`"));
    filter.after = o.after;
  }
  if (!o.key.empty()) filter.idempotency_key = o.key;
  if (!o.correlation.empty()) filter.correlation_id = o.correlation;
  for (auto [flag, text, bound] : {std::tuple{"--since", &o.since, &filter.created_after},
                                   std::tuple{"--until", &o.until, &filter.created_before}}) {
    if (text->empty()) continue;
    *bound = parse_flag_time(*text);
    if (!*bound)
      return report(Answer::fail(kExitUsage, std::string(flag) + " \"" + *text +
                                                 "\" is not a time: use RFC 3339 (2026-12-06T10:00:00Z, "
                                                 "2026-12-06T11:00:00.250+01:00) or a time as `usher ls` prints it "
                                                 "(2026-12-06 10:00:00, UTC)"));
  }

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
    std::cout << paint("more: " + follow_up_command(o.common, "ls --after " + *next + filter_flags(o)), Color::kDim)
              << "\n";
  return kExitOk;
}

}  // namespace

void register_ls(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<LsOptions>();
  auto* cmd = app.add_subcommand("ls", "List sagas, newest first");
  add_common_options(*cmd, options->common);
  cmd->add_option("--status", options->status,
                  "only sagas in this status: running|compensating|completed|compensated|stuck|terminated");
  cmd->add_option("--workflow", options->workflow, "only sagas of this workflow");
  cmd->add_option("--key", options->key, "only the saga started with this idempotency key");
  cmd->add_option("--correlation", options->correlation, "only sagas started with this correlation id");
  cmd->add_option("--since", options->since,
                  "only sagas started at or after TIME (RFC 3339, or as `ls` prints it, in UTC)");
  cmd->add_option("--until", options->until, "only sagas started before TIME (as --since)");
  cmd->add_option("--limit", options->limit, "at most this many sagas, 1 to 1000 (default 50)");
  cmd->add_option("--after", options->after, "the page after this cursor (printed as `more:` by the previous page)");
  cmd->callback([options, &exit_code] { exit_code = guarded([&] { return run_ls(*options); }); });
}

}  // namespace usher::cli
