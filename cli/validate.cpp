// `usher validate FILE|DIR...`: loads each workflow as the server would and
// prints every problem as "file:line:col: message" on stderr, one "ok" line per
// valid workflow on stdout. Exit 0 when everything is valid, 1 when any file
// has a problem, 2 when no file was given.
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "usher/definition.h"

namespace usher::cli {
namespace {

void print_ok(const Definition& def) {
  std::cout << "ok  " << def.name << " v" << def.version << "  " << def.steps.size()
            << (def.steps.size() == 1 ? " step" : " steps") << "  pivot="
            << (def.pivot ? def.steps[*def.pivot].name : std::string("none")) << "  " << def.file << "\n";
}

int validate(const std::vector<std::string>& paths) {
  bool failed = false;
  auto report = [&failed](const std::vector<Diagnostic>& diagnostics) {
    for (const auto& d : diagnostics) std::cerr << d.to_string() << "\n";
    failed = failed || !diagnostics.empty();
  };
  for (const auto& path : paths) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
      DirectoryLoad dir = load_definition_dir(path);
      report(dir.diagnostics);
      for (const auto& def : dir.definitions) print_ok(*def);
      if (dir.definitions.empty() && dir.diagnostics.empty()) {
        std::cerr << path << ": no *.yaml or *.yml workflow files\n";
        failed = true;
      }
    } else {
      LoadResult r = load_definition_file(path);
      report(r.diagnostics);
      if (r.ok()) print_ok(*r.definition);
    }
  }
  return failed ? 1 : 0;
}

}  // namespace

void register_validate(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand("validate", "Check workflow files (or every *.yaml in a directory)");
  // Held by the callback: CLI11 keeps the subcommand, and so the lambda, alive until exit.
  auto paths = std::make_shared<std::vector<std::string>>();
  cmd->add_option("paths", *paths, "workflow files or directories")->type_name("FILE|DIR");
  cmd->callback([paths, cmd, &exit_code] {
    if (paths->empty()) {
      // Checked here rather than with ->required(): CLI11 would exit with its
      // own code (106), and a usage error is 2 throughout usher.
      std::cerr << "usher validate: give at least one workflow file or directory\n\n" << cmd->help();
      exit_code = 2;
      return;
    }
    exit_code = validate(*paths);
  });
}

}  // namespace usher::cli
