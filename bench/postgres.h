// The benchmark on PostgreSQL (usher-bench --db URI): each run starts from an
// empty database, and its durability cost is the server's WAL syncs
// (pg_stat_wal.wal_sync, PostgreSQL 14+), since usher's own process makes none.
#pragma once

#include <optional>
#include <string>

namespace usher::bench {

// Drops and recreates the public schema of the database `uri` names, so the
// engine migrates an empty one. False with `error` set on failure.
bool reset_postgres(const std::string& uri, std::string& error);

// The server's WAL syncs so far (every database of the cluster); nullopt if
// they cannot be read. Backends report theirs when they exit, so read it
// after the engine has closed its connections.
std::optional<double> wal_syncs(const std::string& uri);

// The pid of the server's postmaster, as this machine's /proc sees it (the
// parent of this connection's backend); nullopt if the server is elsewhere
// or cannot be asked. Its process tree's CPU is the server's CPU.
std::optional<int> postmaster_pid(const std::string& uri);

}  // namespace usher::bench
