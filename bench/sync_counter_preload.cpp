// Counts the fsync(2) and fdatasync(2) calls of a process it is preloaded
// into (LD_PRELOAD), at no cost beyond an atomic add: usher-bench runs
// `usher serve` with it in server mode, the out-of-process twin of
// fsync_count.cpp. The count lives in a file (USHER_BENCH_SYNC_COUNTER) mapped
// shared, so it is there however the process ends. A tracer (strace) was used
// before and cost `usher serve` five sixths of its throughput.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>

namespace {

std::atomic<uint64_t>* counter() {
  static std::atomic<uint64_t>* mapped = [] () -> std::atomic<uint64_t>* {
    const char* path = std::getenv("USHER_BENCH_SYNC_COUNTER");
    if (path == nullptr) return nullptr;
    int fd = ::open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return nullptr;
    if (::ftruncate(fd, sizeof(uint64_t)) != 0) {
      ::close(fd);
      return nullptr;
    }
    void* p = ::mmap(nullptr, sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ::close(fd);
    return p == MAP_FAILED ? nullptr : static_cast<std::atomic<uint64_t>*>(p);
  }();
  return mapped;
}

void count() {
  if (auto* c = counter()) c->fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

extern "C" int fsync(int fd) {
  count();
  return static_cast<int>(syscall(SYS_fsync, fd));
}

extern "C" int fdatasync(int fd) {
  count();
  return static_cast<int>(syscall(SYS_fdatasync, fd));
}
