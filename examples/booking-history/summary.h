// The human-readable summary of what the read model holds, read from its
// tables and views (--summary, and at the end of --once).
#pragma once

#include <string>

struct sqlite3;

namespace booking_history {

// Throws std::runtime_error when SQLite fails.
std::string summarize(sqlite3* db);

}  // namespace booking_history
