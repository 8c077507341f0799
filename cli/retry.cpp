// `usher retry ID [--note T]`: resumes a stuck saga where it gave up, with a
// fresh retry budget and the same idempotency keys. Refused (exit 1) when the
// saga is not stuck. With --status (and --workflow, --dry-run) instead of an
// ID, every saga listed (saga_action.h).
#include "commands.h"
#include "saga_action.h"

namespace usher::cli {

void register_retry(CLI::App& app, int& exit_code) {
  struct Options {
    SagaActionOptions action;
    std::string note;
  };
  auto options = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("retry", "Resume a stuck saga with a fresh retry budget; needs --server");
  add_saga_action_options(*cmd, options->action);
  cmd->add_option("--note", options->note, "why, recorded with the retry in the saga's log");
  cmd->callback([options, &exit_code] {
    exit_code = guarded([&] {
      Json body = Json::object();
      if (!options->note.empty()) body["note"] = options->note;
      return run_saga_action(options->action, "retry", body);
    });
  });
}

}  // namespace usher::cli
