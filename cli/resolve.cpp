// `usher resolve ID --step S --outcome succeeded|failed [--output JSON] --note T`:
// the operator states what happened to a stuck saga's stuck step (a refund made
// by hand, a ticket found issued), and the saga goes on as if the service had
// answered so (docs/semantics.md (operator actions)). --output (a JSON object, inline, @FILE or @-)
// goes only with succeeded: it is the step's output that later steps read.
// Refused (exit 1) when the saga is not stuck, S is not the stuck step, or the
// outcome is not allowed there. With --status (and --workflow, --dry-run)
// instead of an ID, every saga listed (saga_action.h), all with the same step,
// outcome, output and note.
#include "commands.h"
#include "json_arg.h"
#include "output.h"
#include "saga_action.h"

namespace usher::cli {

namespace {

struct ResolveOptions {
  SagaActionOptions action;
  std::string step;
  std::string outcome;
  std::string output;  // JSON, @FILE or @-; empty: none
  std::string note;
};

bool blank(const std::string& text) { return text.find_first_not_of(" \t\r\n") == std::string::npos; }

int run_resolve(const ResolveOptions& o) {
  if (Answer target = check_saga_action_target(o.action, "resolve"); !target.ok()) return report(target);
  if (o.step.empty()) return report(Answer::fail(kExitUsage, "--step NAME is required: the step the saga is stuck at"));
  if (o.outcome != "succeeded" && o.outcome != "failed")
    return report(Answer::fail(kExitUsage, o.outcome.empty() ? "--outcome succeeded|failed is required"
                                                             : "--outcome \"" + o.outcome +
                                                                   "\" is not succeeded or failed"));
  if (blank(o.note))
    return report(Answer::fail(kExitUsage, "--note TEXT is required: say what happened to the step and how you know"));
  Json body{{"step", o.step}, {"outcome", o.outcome}, {"note", o.note}};
  if (!o.output.empty()) {
    if (o.outcome != "succeeded")
      return report(Answer::fail(kExitUsage, "--output goes only with --outcome succeeded (a failed step has no output)"));
    auto output = read_json_arg(o.output, "--output");
    if (!output.is_ok()) return report(Answer::fail(kExitUsage, output.status().message()));
    if (!output->is_object())
      return report(Answer::fail(kExitUsage, "--output must be a JSON object, the step's output (e.g. '{\"paymentId\":\"p-1\"}')"));
    body["output"] = std::move(output.value());
  }
  return run_saga_action(o.action, "resolve", body);
}

}  // namespace

void register_resolve(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<ResolveOptions>();
  auto* cmd = app.add_subcommand("resolve",
                                 "State the outcome of a stuck saga's step; the saga goes on from there; needs --server");
  add_saga_action_options(*cmd, options->action);
  cmd->add_option("--step", options->step, "the step the saga is stuck at (required)");
  cmd->add_option("--outcome", options->outcome, "what happened to it: succeeded|failed (required)");
  cmd->add_option("--output", options->output,
                  "with succeeded: the step's output, a JSON object; @FILE reads a file, @- standard input");
  cmd->add_option("--note", options->note, "what happened and how you know (required), recorded in the saga's log");
  cmd->callback([options, &exit_code] { exit_code = guarded([&] { return run_resolve(*options); }); });
}

}  // namespace usher::cli
