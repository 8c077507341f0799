#include "store/open_store.h"

#include "store/postgres/pg.h"
#include "store/postgres/pg_schema.h"
#include "store/publication_store.h"
#include "usher/saga_log.h"

namespace usher {

bool is_postgres_location(std::string_view location) { return pg::is_uri(location); }

std::string describe_saga_log(const std::string& location) {
  return pg::is_uri(location) ? pg::describe(location) : location;
}

Status migrate_saga_log(const std::string& location) { return migrate_store(location); }

Result<std::unique_ptr<SagaStore>> open_store(const std::string& location, const StoreOpenOptions& options) {
  if (pg::is_uri(location)) return open_postgres_store(location, options.max_batch_events, options.migrate);
  return open_sqlite_store(location, options.durability, options.max_batch_events, options.sqlite_vfs);
}

Result<std::unique_ptr<SagaStoreReader>> open_store_reader(const std::string& location, bool read_only) {
  if (pg::is_uri(location)) return open_postgres_reader(location);
  return open_sqlite_reader(location, read_only);
}

// Defined beside their stores (sqlite_publication_store.cpp,
// postgres/pg_publication_store.cpp); open_publication_store is their only caller.
Result<std::unique_ptr<PublicationStore>> open_sqlite_publication_store(const std::string& path);
Result<std::unique_ptr<PublicationStore>> open_postgres_publication_store(const std::string& uri);

Result<std::unique_ptr<PublicationStore>> open_publication_store(const std::string& location) {
  if (pg::is_uri(location)) return open_postgres_publication_store(location);
  return open_sqlite_publication_store(location);
}

Status migrate_store(const std::string& location) {
  if (!pg::is_uri(location)) {
    // SQLite migrates whenever its writer opens the file.
    auto store = open_sqlite_store(location, Durability::kFull);
    if (!store) return store.status();
    (*store)->close();
    return Status::ok();
  }
  auto conn = pg::Connection::open(location, "usher migrate");
  if (!conn) return conn.status();
  return pg::migrate(*conn, pg::describe(location));
}

}  // namespace usher
