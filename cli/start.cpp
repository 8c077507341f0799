// `usher start WORKFLOW --input JSON|@FILE [--wait[=DURATION]] [--idempotency-key K]`:
// starts a saga through the API (POST /v1/workflows/{name}/sagas). With --wait
// the server holds the answer until the saga settles or the wait ends (default
// 30s). Starting a saga is not a failure whatever its outcome, so the exit code
// is 0 for a completed and a compensated saga alike; scripts read the status
// from --json or `usher show`.
#include <fstream>
#include <iostream>
#include <sstream>

#include "commands.h"
#include "output.h"
#include "saga_source.h"
#include "usher/duration.h"

namespace usher::cli {

namespace {

struct StartOptions {
  CommonOptions common;
  std::string workflow;
  std::string input;
  std::string wait;  // empty: do not wait
  std::string idempotency_key;
  bool quiet = false;
};

// The input JSON from --input: inline, or the file after '@'.
Result<Json> read_input(const std::string& spec) {
  std::string text = spec;
  if (!spec.empty() && spec.front() == '@') {
    std::ifstream in(spec.substr(1));
    if (!in) return Status::invalid_argument("cannot read input file " + spec.substr(1));
    std::ostringstream all;
    all << in.rdbuf();
    text = all.str();
  }
  Json input = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (input.is_discarded()) return Status::invalid_argument("--input is not valid JSON: " + text.substr(0, 120));
  return input;
}

int run_start(const StartOptions& o) {
  if (o.workflow.empty()) return report(Answer::fail(kExitUsage, "usage: usher start WORKFLOW --input JSON [--wait]"));
  if (o.input.empty()) return report(Answer::fail(kExitUsage, "--input JSON (or --input @file.json) is required"));
  auto input = read_input(o.input);
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
  if (o.common.json) {
    print_json(saga.json);
  } else if (o.quiet) {
    std::cout << id << "\n";
  } else {
    const std::string status = string_at(saga.json, "status").value_or("?");
    std::cout << "saga " << id << (response->status == 200 ? " (already started with this idempotency key)" : "")
              << ": " << paint(status, status_color(status));
    auto created = time_at(saga.json, "created_at"), updated = time_at(saga.json, "updated_at");
    if (created && updated && status != "running" && status != "compensating")
      std::cout << " after " << format_elapsed(*updated - *created);
    if (auto error = string_at(saga.json, "error")) std::cout << ": " << *error;
    std::cout << "\n" << paint("timeline: usher show " + id, Color::kDim) << "\n";
  }
  return kExitOk;
}

}  // namespace

void register_start(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<StartOptions>();
  auto* cmd = app.add_subcommand("start", "Start a saga through the API; needs --server");
  add_common_options(*cmd, options->common);
  cmd->add_option("workflow", options->workflow, "workflow name");
  cmd->add_option("--input", options->input, "the start payload: JSON, or @FILE to read it from a file");
  // `--wait` alone waits 30s; `--wait=2m` chooses.
  cmd->add_flag("--wait{30s}", options->wait, "wait until the saga settles, at most DURATION (default 30s)");
  cmd->add_option("--idempotency-key", options->idempotency_key, "a repeated key returns the first saga");
  cmd->add_flag("-q,--quiet", options->quiet, "print only the saga id");
  cmd->callback([options, &exit_code] { exit_code = guarded([&] { return run_start(*options); }); });
}

}  // namespace usher::cli
