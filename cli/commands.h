// Subcommands of the `usher` CLI. Each register_* adds one subcommand whose
// callback stores the process exit code in `exit_code`.
//
// Exit codes (documented in the README): 0 ok; 1 the command ran but found a
// problem (invalid workflow, saga not found, refused action); 2 usage error;
// 3 could not reach the server or open the database.
#pragma once

#include <CLI/CLI.hpp>

namespace usher::cli {

void register_validate(CLI::App& app, int& exit_code);
void register_serve(CLI::App& app, int& exit_code);
void register_start(CLI::App& app, int& exit_code);
void register_ls(CLI::App& app, int& exit_code);
void register_show(CLI::App& app, int& exit_code);
void register_events(CLI::App& app, int& exit_code);
void register_cancel(CLI::App& app, int& exit_code);
void register_retry(CLI::App& app, int& exit_code);
void register_stats(CLI::App& app, int& exit_code);
void register_migrate(CLI::App& app, int& exit_code);
void register_nodes(CLI::App& app, int& exit_code);

}  // namespace usher::cli
