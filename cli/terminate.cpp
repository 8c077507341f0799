// `usher terminate ID --reason T`: ends a stuck saga as `terminated`; nothing
// more is sent for it, and what it did stays as it stands (docs/semantics.md (operator actions)).
// Refused (exit 1) when the saga is not stuck. With --status (and --workflow,
// --dry-run) instead of an ID, every saga listed (saga_action.h).
#include "commands.h"
#include "output.h"
#include "saga_action.h"

namespace usher::cli {

void register_terminate(CLI::App& app, int& exit_code) {
  struct Options {
    SagaActionOptions action;
    std::string reason;
  };
  auto options = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("terminate", "End a stuck saga as terminated; nothing more is sent; needs --server");
  add_saga_action_options(*cmd, options->action);
  cmd->add_option("--reason", options->reason, "why (required), recorded in the saga's log");
  cmd->callback([options, &exit_code] {
    exit_code = guarded([&] {
      if (Answer target = check_saga_action_target(options->action, "terminate"); !target.ok()) return report(target);
      if (options->reason.find_first_not_of(" \t\r\n") == std::string::npos)
        return report(Answer::fail(kExitUsage, "--reason TEXT is required: say why the saga is ended"));
      return run_saga_action(options->action, "terminate", Json{{"reason", options->reason}});
    });
  });
}

}  // namespace usher::cli
