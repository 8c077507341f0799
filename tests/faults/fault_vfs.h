// A SQLite VFS for storage fault tests: registered under kFaultVfsName, it
// passes every call to SQLite's default "unix" VFS, except that it can be told
// to fail writes (as an I/O error or as a full disk) and to make xSync slow.
// Open a database with it through EngineOptions::sqlite_vfs or the saga log's
// open, then switch faults on and off while the engine runs.
//
// The faults are process-wide, like SQLite's VFS registry: every connection
// opened through this VFS sees them at once, from any thread. Connections
// opened with the default VFS (the engine's readers, a test's own checker)
// are never affected, and share locks with it, as both end in the unix VFS.
#pragma once

#include <chrono>
#include <cstdint>

namespace usher::test {

inline constexpr const char* kFaultVfsName = "usher-fault";

enum class WriteFault {
  kNone,
  kIoError,   // xWrite and xTruncate fail with SQLITE_IOERR_WRITE / _TRUNCATE
  kDiskFull,  // xWrite fails with SQLITE_FULL, as the unix VFS reports ENOSPC
};

class FaultVfs {
 public:
  // Registers the VFS (once; not as the default) and returns it.
  static FaultVfs& install();

  void fail_writes(WriteFault fault);
  // Every xSync sleeps this long before syncing; zero for none.
  void slow_syncs(std::chrono::milliseconds delay);
  // No faults, no delay.
  void clear();

  uint64_t failed_writes() const;  // writes refused since install()
  uint64_t syncs() const;          // xSync calls passed on since install()

 private:
  FaultVfs() = default;
};

// Clears every fault when a test scope ends, however it ends, so a failed
// CHECK cannot leave the next test with a disk that refuses writes.
class FaultScope {
 public:
  FaultScope() : vfs_(FaultVfs::install()) { vfs_.clear(); }
  ~FaultScope() { vfs_.clear(); }
  FaultScope(const FaultScope&) = delete;
  FaultScope& operator=(const FaultScope&) = delete;
  FaultVfs* operator->() { return &vfs_; }

 private:
  FaultVfs& vfs_;
};

}  // namespace usher::test
