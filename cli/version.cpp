// `usher version` (also `usher --version`) and `usher help [COMMAND]` (also
// `usher --help`, `usher COMMAND --help`).
#include <iostream>

#include "commands.h"
#include "saga_source.h"

#ifndef USHER_CLI_VERSION
#error "USHER_CLI_VERSION must be defined (cli/CMakeLists.txt passes the project version)"
#endif

namespace usher::cli {

const char* version_text() { return "usher " USHER_CLI_VERSION; }

void register_version(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand("version", "Print usher's version");
  cmd->callback([&exit_code] {
    std::cout << version_text() << "\n";
    exit_code = kExitOk;
  });
}

void register_help(CLI::App& app, int& exit_code) {
  auto command = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("help", "Print the commands, or one command's flags: usher help COMMAND");
  cmd->add_option("command", *command, "the command to describe");
  cmd->callback([&app, command, &exit_code] {
    // App::help() describes the subcommand that was parsed (this one), so
    // the formatter is asked for the page wanted.
    const auto formatter = app.get_formatter();
    if (command->empty()) {
      std::cout << formatter->make_help(&app, "usher", CLI::AppFormatMode::Normal);
      exit_code = kExitOk;
      return;
    }
    CLI::App* sub = nullptr;
    try {
      sub = app.get_subcommand(*command);
    } catch (const CLI::OptionNotFound&) {
    }
    if (sub == nullptr) {
      std::string names;
      for (const CLI::App* s : app.get_subcommands({})) names += (names.empty() ? "" : ", ") + s->get_name();
      exit_code = report(Answer::fail(kExitUsage, "no command \"" + *command + "\" (commands: " + names + ")"));
      return;
    }
    std::cout << formatter->make_help(sub, "usher " + sub->get_name(), CLI::AppFormatMode::Normal);
    exit_code = kExitOk;
  });
}

}  // namespace usher::cli
