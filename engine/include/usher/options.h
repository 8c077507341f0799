// Options for opening an engine. Each says its default and what a crash does.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace usher {

enum class Durability {
  // Default. Every acknowledged start and every logged step result survives a
  // crash of the process and a loss of power (SQLite synchronous=FULL, WAL).
  kFull,
  // synchronous=NORMAL: survives a crash of the process; a power loss may lose
  // the last transactions acknowledged before it. Faster; opt in knowingly.
  kNormal,
};

// Source of time. The engine reads the clock only at its edge and passes time
// into the state machine inside events, so tests can substitute their own.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t now_us() = 0;  // microseconds since the Unix epoch
};
Clock& system_clock();

struct EngineOptions {
  // Where the saga log is: a SQLite file path (created with the current
  // schema if missing; ":memory:" is refused: a saga engine without a durable
  // log is a bug), or a PostgreSQL URI, postgresql://user@host:5432/db?sslmode=…
  std::string db_path = "usher.db";
  // SQLite's synchronous level. PostgreSQL commits as its server's
  // synchronous_commit says (on by default: like kFull).
  Durability durability = Durability::kFull;
  // PostgreSQL: create or upgrade the schema on open (`usher migrate` does it
  // alone). False: refuse a database whose schema is not current. SQLite
  // files are always brought up to date.
  bool migrate_schema = true;
  // Most appends one group commit may take; more wait for the next commit.
  size_t max_batch_events = 8192;
  // Time source for events and timers. Default: the system clock. Must outlive the engine.
  Clock* clock = nullptr;
  // Name of a registered SQLite VFS for the log's write connection, for
  // fault-injection tests (a VFS that fails writes or slows syncs); empty =
  // SQLite's default. A crash behaves as that VFS makes it behave.
  std::string sqlite_vfs;
  // Attempts sent to one service (by name) at once. More wait in the engine,
  // in order, with no timeout running: waiting is not an attempt, so a burst
  // (sagas resumed after a restart, an on-sale opening) cannot burn retry
  // budgets on a slow service.
  size_t max_calls_in_flight_per_service = 1024;
  // Unfinished sagas held in memory. Past it, new starts are refused with
  // kUnavailable (HTTP 503 + Retry-After) until sagas finish; sagas already
  // acknowledged (or recovered) are never dropped. Stuck sagas do not count.
  size_t max_sagas_in_memory = 100'000;
  // Events waiting for the saga log's writer. Past it, new starts are refused
  // with kUnavailable, so a slow disk pushes back on clients instead of
  // growing the queue without end; results of running sagas are still taken.
  size_t max_queued_events = 200'000;
  // PostgreSQL: each engine on the database is a node of a cluster that holds
  // a lease for this long, renewed every sixth of it (README "Several
  // nodes"). A node that dies hands its running sagas over to the others once
  // its lease has ended; one paused or cut off for longer sends and writes
  // nothing more. Shorter takes over sooner and renews more often.
  std::chrono::milliseconds node_lease{3000};
  // Seed for retry jitter; 0 seeds from std::random_device.
  uint64_t seed = 0;
  // Called once per saga transition (for logs and metrics), on the engine thread.
  // Must not block.
  std::function<void(const struct TransitionInfo&)> on_transition;
};

}  // namespace usher
