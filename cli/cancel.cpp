// `usher cancel ID`: asks a running saga to compensate. Refused (exit 1) once
// its pivot was sent or when it is not running.
#include "commands.h"
#include "saga_action.h"

namespace usher::cli {

void register_cancel(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<SagaActionOptions>();
  auto* cmd = app.add_subcommand("cancel", "Cancel a running saga (it compensates); needs --server");
  add_common_options(*cmd, options->common);
  cmd->add_option("id", options->id, "saga id");
  cmd->callback([options, &exit_code] { exit_code = guarded([&] { return run_saga_action(*options, "cancel"); }); });
}

}  // namespace usher::cli
