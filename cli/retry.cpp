// `usher retry ID`: resumes a stuck saga where it gave up. Refused (exit 1)
// when the saga is not stuck.
#include "commands.h"
#include "saga_action.h"

namespace usher::cli {

void register_retry(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<SagaActionOptions>();
  auto* cmd = app.add_subcommand("retry", "Resume a stuck saga; needs --server");
  add_common_options(*cmd, options->common);
  cmd->add_option("id", options->id, "saga id");
  cmd->callback([options, &exit_code] { exit_code = guarded([&] { return run_saga_action(*options, "retry"); }); });
}

}  // namespace usher::cli
