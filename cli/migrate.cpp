// `usher migrate`: creates the saga log's schema or upgrades it to the version
// this usher writes, then exits. `usher serve` does the same on start unless
// told --no-migrate, so running it alone is for deployments that change the
// schema as a step of their own (a role allowed DDL, before the servers start).
#include <iostream>

#include "commands.h"
#include "serve_config.h"
#include "usher/saga_log.h"

namespace usher::cli {
namespace {

struct MigrateFlags {
  std::string config, db;
};

int migrate(const MigrateFlags& flags) {
  ServeConfig config;
  if (!flags.config.empty()) {
    auto loaded = load_serve_config(flags.config, config);
    if (!loaded.is_ok()) {
      std::cerr << "usher migrate: " << loaded.status().message() << "\n";
      return 2;
    }
    config = loaded.value();
  }
  if (!flags.db.empty()) config.db = flags.db;
  const std::string shown = describe_saga_log(config.db);
  if (Status s = migrate_saga_log(config.db); !s.is_ok()) {
    std::cerr << "usher migrate: " << s.message() << "\n";
    return s.code() == StatusCode::kDataLoss ? 1 : 3;
  }
  std::cout << "saga log " << shown << " is at schema version "
            << (is_postgres_location(config.db) ? kPostgresSchemaVersion : kSagaLogSchemaVersion) << "\n";
  return 0;
}

}  // namespace

void register_migrate(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand("migrate", "Create or upgrade the saga log's schema, then exit");
  auto flags = std::make_shared<MigrateFlags>();
  cmd->add_option("--config", flags->config, "YAML config file whose db: names the log")->type_name("FILE");
  cmd->add_option("--db", flags->db, "saga log: a SQLite file or a postgresql:// URI [usher.db]")
      ->type_name("FILE|URI");
  cmd->callback([flags, &exit_code] { exit_code = migrate(*flags); });
}

}  // namespace usher::cli
