// `usher start WORKFLOW --input JSON|@FILE|@- [--wait [DURATION]] [--idempotency-key K]`:
// starts a saga through the API (POST /v1/workflows/{name}/sagas). With --wait
// the server holds the answer until the saga settles or the wait ends (default
// 30s; `--wait 5s` and `--wait=5s` alike), and the exit code says how the saga
// stood then: 0 completed, 4 compensated, 5 stuck, 6 terminated, 7 still
// running (commands.h). Without --wait it is 0 once the saga is started.
#include <iostream>

#include "commands.h"
#include "json_arg.h"
#include "output.h"
#include "saga_source.h"
#include "usher/duration.h"

namespace usher::cli {

namespace {

constexpr const char* kDefaultWait = "30s";

struct StartOptions {
  CommonOptions common;
  std::string workflow;
  std::string input;
  std::string wait;  // empty: do not wait
  std::string idempotency_key;
  bool quiet = false;
};

// The exit code of a `start --wait` whose saga stands in `status`.
int exit_code_for_wait(const std::string& status) {
  if (status == "completed") return kExitOk;
  if (status == "compensated") return kExitCompensated;
  if (status == "stuck") return kExitStuck;
  if (status == "terminated") return kExitTerminated;
  return kExitStillRunning;  // running, compensating: the wait ended first
}

int run_start(StartOptions o) {
  // `usher start --wait booking …`: --wait takes an optional value, so it
  // took the workflow name; give it back.
  if (o.workflow.empty() && !o.wait.empty() && !parse_duration(o.wait)) {
    o.workflow = o.wait;
    o.wait = kDefaultWait;
  }
  if (o.workflow.empty())
    return report(Answer::fail(kExitUsage, "usage: usher start WORKFLOW --input JSON [--wait [DURATION]]"));
  if (o.input.empty())
    return report(Answer::fail(kExitUsage, "--input JSON is required (or --input @file.json, or --input @- for stdin)"));
  auto input = read_json_arg(o.input, "--input");
  if (!input.is_ok()) return report(Answer::fail(kExitUsage, input.status().message()));
  std::optional<Millis> wait;
  if (!o.wait.empty()) {
    wait = parse_duration(o.wait);
    if (!wait) return report(Answer::fail(kExitUsage, "--wait \"" + o.wait + "\" is not a duration such as 10s or 2m"));
  }
  Answer failure;
  auto client = connect_server(o.common, "start", failure);
  if (!client) return report(failure);

  std::string target = "/v1/workflows/" + url_encode(o.workflow) + "/sagas";
  if (wait) target += "?wait=" + usher::format_duration(*wait);
  // The server may hold the answer for the whole wait; give the exchange room beyond it.
  const auto timeout = std::chrono::milliseconds(10'000) + wait.value_or(Millis{0});
  std::optional<std::string> key;
  if (!o.idempotency_key.empty()) key = o.idempotency_key;
  auto response = client->request("POST", target, input->dump(), key, timeout);
  Answer saga = answer_from(response);
  if (!saga.ok()) return report(saga);
  const std::string id = string_at(saga.json, "id").value_or("?");
  const std::string status = string_at(saga.json, "status").value_or("?");
  if (o.common.json) {
    print_json(saga.json);
  } else if (o.quiet) {
    std::cout << id << "\n";
  } else {
    std::cout << "saga " << id << (response->status == 200 ? " (already started with this idempotency key)" : "")
              << ": " << paint(status, status_color(status));
    auto created = time_at(saga.json, "created_at"), updated = time_at(saga.json, "updated_at");
    if (created && updated && status != "running" && status != "compensating" && status != "stuck")
      std::cout << " after " << format_elapsed(*updated - *created);
    if (auto error = string_at(saga.json, "error")) std::cout << ": " << *error;
    std::cout << "\n" << paint("timeline: " + follow_up_command(o.common, "show " + id), Color::kDim) << "\n";
  }
  return wait ? exit_code_for_wait(status) : kExitOk;
}

}  // namespace

void register_start(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<StartOptions>();
  auto* cmd = app.add_subcommand("start",
                                 "Start a saga through the API; with --wait, the exit code says how it ended; needs --server");
  add_common_options(*cmd, options->common);
  cmd->add_option("workflow", options->workflow, "workflow name");
  cmd->add_option("--input", options->input, "the start payload: JSON, @FILE to read it from a file, @- from stdin");
  // `--wait` alone waits 30s; `--wait 2m` and `--wait=2m` choose.
  cmd->add_option("--wait", options->wait,
                  "wait until the saga settles, at most DURATION (default 30s); the exit code then says how it "
                  "ended: 0 completed, 4 compensated, 5 stuck, 6 terminated, 7 still running")
      ->expected(0, 1)
      ->default_str(kDefaultWait);
  cmd->add_option("--idempotency-key", options->idempotency_key, "a repeated key returns the first saga");
  cmd->add_flag("-q,--quiet", options->quiet, "print only the saga id");
  cmd->callback([options, &exit_code] { exit_code = guarded([&] { return run_start(*options); }); });
}

}  // namespace usher::cli
