// The `usher` command line. Each subcommand lives in its own file and is added
// to the app by a register_* function declared in commands.h.
#include <CLI/CLI.hpp>

#include "commands.h"

int main(int argc, char** argv) {
  CLI::App app{"usher: a durable saga orchestration engine for ticketing workflows"};
  app.require_subcommand(1);
  app.set_version_flag("--version", usher::cli::version_text(), "Print usher's version");
  int exit_code = 0;
  usher::cli::register_validate(app, exit_code);
  usher::cli::register_serve(app, exit_code);
  usher::cli::register_start(app, exit_code);
  usher::cli::register_ls(app, exit_code);
  usher::cli::register_show(app, exit_code);
  usher::cli::register_events(app, exit_code);
  usher::cli::register_cancel(app, exit_code);
  usher::cli::register_retry(app, exit_code);
  usher::cli::register_resolve(app, exit_code);
  usher::cli::register_terminate(app, exit_code);
  usher::cli::register_stats(app, exit_code);
  usher::cli::register_migrate(app, exit_code);
  usher::cli::register_nodes(app, exit_code);
  usher::cli::register_tail(app, exit_code);
  usher::cli::register_version(app, exit_code);
  usher::cli::register_help(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version are "errors" that exit 0; every real usage error
    // exits 2, whatever CLI11's own code for it is (see commands.h).
    return app.exit(e) == 0 ? 0 : 2;
  }
  return exit_code;
}
