// Opening a saga store. The executor and the readers see only SagaStore and
// SagaStoreReader; which implementation serves them is decided here, by the
// location's form.
#pragma once

#include <memory>
#include <string>

#include "store/saga_store.h"
#include "usher/options.h"

namespace usher {

// Opens or creates a SQLite log file, applies forward migrations, sets WAL and
// the synchronous level, starts the writer thread. A file whose schema version
// is newer than kSagaLogSchemaVersion is refused with kDataLoss. `vfs` names a
// registered SQLite VFS for the write connection (fault-injection tests);
// empty = SQLite's default.
Result<std::unique_ptr<SagaStore>> open_sqlite_store(const std::string& path, Durability durability,
                                                     size_t max_batch_events = 8192, const std::string& vfs = {});

// A read connection on a SQLite log file, without a store (the CLI's --db).
// read_only: SQLITE_OPEN_READONLY; the file must exist.
Result<std::unique_ptr<SagaStoreReader>> open_sqlite_reader(const std::string& path, bool read_only);

// Connects to a PostgreSQL database by libpq URI (postgresql://…; TLS via
// sslmode, passwords from the URI, PG* variables or ~/.pgpass), brings its
// schema up to date (or, with migrate = false, refuses one that is not
// current), starts the writer thread. Durability is the server's
// synchronous_commit.
Result<std::unique_ptr<SagaStore>> open_postgres_store(const std::string& uri, size_t max_batch_events = 8192,
                                                       bool migrate = true);

// A read connection on a PostgreSQL saga log, without a store.
Result<std::unique_ptr<SagaStoreReader>> open_postgres_reader(const std::string& uri);

// A node registry connection on a PostgreSQL saga log (node_registry.h).
Result<std::unique_ptr<NodeRegistry>> open_postgres_registry(const std::string& uri);

// Creates or upgrades the schema of the log at `location` (`usher migrate`).
Status migrate_store(const std::string& location);

// By location: a postgresql:// (or postgres://) URI is PostgreSQL, anything
// else a SQLite file path. SQLite always migrates on open; `vfs` is SQLite's.
struct StoreOpenOptions {
  Durability durability = Durability::kFull;
  size_t max_batch_events = 8192;
  bool migrate = true;
  std::string sqlite_vfs;
};
Result<std::unique_ptr<SagaStore>> open_store(const std::string& location, const StoreOpenOptions& options);
Result<std::unique_ptr<SagaStoreReader>> open_store_reader(const std::string& location, bool read_only);

}  // namespace usher
