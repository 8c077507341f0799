// Counts the fsync(2) and fdatasync(2) calls of this process, with no tracer
// and so at no cost: the executable defines both functions, and since
// libsqlite3 is a shared library its calls bind to these definitions (an
// executable's symbols come first in the global lookup scope) rather than to
// libc's. Each forwards to the system call.
//
// Only the in-process modes use this count; `server` mode preloads the same
// counting into `usher serve` (sync_counter_preload.cpp).
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

namespace {
std::atomic<uint64_t> g_syncs{0};
}

extern "C" int fsync(int fd) {
  g_syncs.fetch_add(1, std::memory_order_relaxed);
  return static_cast<int>(syscall(SYS_fsync, fd));
}

extern "C" int fdatasync(int fd) {
  g_syncs.fetch_add(1, std::memory_order_relaxed);
  return static_cast<int>(syscall(SYS_fdatasync, fd));
}

namespace usher::bench {
uint64_t fsyncs_in_this_process() { return g_syncs.load(std::memory_order_relaxed); }
}  // namespace usher::bench
