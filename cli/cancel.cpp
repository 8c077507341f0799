// `usher cancel ID [--note T]`: asks a running saga to compensate. Refused
// (exit 1) once its pivot was sent or when it is not running (a stuck saga is
// retried, resolved or terminated instead). With --status (and --workflow,
// --dry-run) instead of an ID, every saga listed (saga_action.h).
#include "commands.h"
#include "saga_action.h"

namespace usher::cli {

void register_cancel(CLI::App& app, int& exit_code) {
  struct Options {
    SagaActionOptions action;
    std::string note;
  };
  auto options = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("cancel", "Cancel a running saga (it compensates); needs --server");
  add_saga_action_options(*cmd, options->action);
  cmd->add_option("--note", options->note, "why, recorded with the cancel request in the saga's log");
  cmd->callback([options, &exit_code] {
    exit_code = guarded([&] {
      Json body = Json::object();
      if (!options->note.empty()) body["note"] = options->note;
      return run_saga_action(options->action, "cancel", body);
    });
  });
}

}  // namespace usher::cli
