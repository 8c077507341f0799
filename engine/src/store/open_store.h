// Opening a saga store. The executor and the readers see only SagaStore and
// SagaStoreReader; which implementation serves them is decided here.
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

}  // namespace usher
