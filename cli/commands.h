// Subcommands of the `usher` CLI. Each register_* adds one subcommand whose
// callback stores the process exit code in `exit_code`.
//
// Exit codes (every command):
//   0 ok;
//   1 the command ran but found a problem: invalid workflow, saga not found,
//     an action refused by the server (409 not stuck, 401/403 token), or, in a
//     batch action, one saga or more refused;
//   2 usage error: unknown flag, missing or malformed argument, a command that
//     changes a saga given --db;
//   3 could not reach the server (or it answered 5xx), or could not open the
//     database.
// `usher start --wait` says how the saga ended when the wait did (scripts can
// branch on it without parsing --json):
//   0 completed;
//   4 compensated (it failed and was undone);
//   5 stuck (an operator must retry, resolve or terminate it);
//   6 terminated (ended by an operator);
//   7 still running or compensating when the wait ended.
// Without --wait, `start` exits 0 once the saga is started, whatever follows.
#pragma once

#include <CLI/CLI.hpp>

namespace usher::cli {

inline constexpr int kExitCompensated = 4;
inline constexpr int kExitStuck = 5;
inline constexpr int kExitTerminated = 6;
inline constexpr int kExitStillRunning = 7;

void register_validate(CLI::App& app, int& exit_code);
void register_serve(CLI::App& app, int& exit_code);
void register_start(CLI::App& app, int& exit_code);
void register_ls(CLI::App& app, int& exit_code);
void register_show(CLI::App& app, int& exit_code);
void register_events(CLI::App& app, int& exit_code);
void register_cancel(CLI::App& app, int& exit_code);
void register_retry(CLI::App& app, int& exit_code);
void register_resolve(CLI::App& app, int& exit_code);
void register_terminate(CLI::App& app, int& exit_code);
void register_stats(CLI::App& app, int& exit_code);
void register_migrate(CLI::App& app, int& exit_code);
void register_nodes(CLI::App& app, int& exit_code);
void register_tail(CLI::App& app, int& exit_code);
// `usher version` and `usher help [COMMAND]`.
void register_version(CLI::App& app, int& exit_code);
void register_help(CLI::App& app, int& exit_code);

// "usher 0.1.0": the project version CMake passes as USHER_VERSION.
const char* version_text();

}  // namespace usher::cli
