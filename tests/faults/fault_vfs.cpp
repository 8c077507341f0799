// The fault VFS: a shim over "unix". Each file it opens is our FaultFile
// followed, in the same allocation SQLite makes (szOsFile), by the unix VFS's
// own file object, which does the real work.
#include "fault_vfs.h"

#include <sqlite3.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>

namespace usher::test {
namespace {

std::atomic<WriteFault> g_fault{WriteFault::kNone};
std::atomic<int64_t> g_sync_delay_ms{0};
std::atomic<uint64_t> g_failed_writes{0};
std::atomic<uint64_t> g_syncs{0};

sqlite3_vfs* g_real = nullptr;
sqlite3_vfs g_vfs;

struct FaultFile {
  sqlite3_file base;    // pMethods = kMethods once the real open succeeded
  sqlite3_file* real;   // points just past this struct
};

sqlite3_file* real_of(sqlite3_file* f) { return reinterpret_cast<FaultFile*>(f)->real; }

// The error a write gets while a fault is on, or SQLITE_OK.
int write_fault(int io_error) {
  switch (g_fault.load()) {
    case WriteFault::kNone:
      return SQLITE_OK;
    case WriteFault::kIoError:
      ++g_failed_writes;
      return io_error;
    case WriteFault::kDiskFull:
      ++g_failed_writes;
      return SQLITE_FULL;
  }
  return SQLITE_OK;
}

int x_close(sqlite3_file* f) {
  sqlite3_file* r = real_of(f);
  int rc = r->pMethods ? r->pMethods->xClose(r) : SQLITE_OK;
  f->pMethods = nullptr;
  return rc;
}
int x_read(sqlite3_file* f, void* buf, int n, sqlite3_int64 off) {
  sqlite3_file* r = real_of(f);
  return r->pMethods->xRead(r, buf, n, off);
}
int x_write(sqlite3_file* f, const void* buf, int n, sqlite3_int64 off) {
  if (int rc = write_fault(SQLITE_IOERR_WRITE); rc != SQLITE_OK) return rc;
  sqlite3_file* r = real_of(f);
  return r->pMethods->xWrite(r, buf, n, off);
}
int x_truncate(sqlite3_file* f, sqlite3_int64 size) {
  // A full disk does not stop a file from shrinking; an I/O error does.
  if (g_fault.load() == WriteFault::kIoError) {
    ++g_failed_writes;
    return SQLITE_IOERR_TRUNCATE;
  }
  sqlite3_file* r = real_of(f);
  return r->pMethods->xTruncate(r, size);
}
int x_sync(sqlite3_file* f, int flags) {
  if (int64_t ms = g_sync_delay_ms.load(); ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  ++g_syncs;
  sqlite3_file* r = real_of(f);
  return r->pMethods->xSync(r, flags);
}
int x_file_size(sqlite3_file* f, sqlite3_int64* size) {
  sqlite3_file* r = real_of(f);
  return r->pMethods->xFileSize(r, size);
}
int x_lock(sqlite3_file* f, int level) {
  sqlite3_file* r = real_of(f);
  return r->pMethods->xLock(r, level);
}
int x_unlock(sqlite3_file* f, int level) {
  sqlite3_file* r = real_of(f);
  return r->pMethods->xUnlock(r, level);
}
int x_check_reserved_lock(sqlite3_file* f, int* out) {
  sqlite3_file* r = real_of(f);
  return r->pMethods->xCheckReservedLock(r, out);
}
int x_file_control(sqlite3_file* f, int op, void* arg) {
  sqlite3_file* r = real_of(f);
  return r->pMethods->xFileControl(r, op, arg);
}
int x_sector_size(sqlite3_file* f) {
  sqlite3_file* r = real_of(f);
  return r->pMethods->xSectorSize(r);
}
int x_device_characteristics(sqlite3_file* f) {
  sqlite3_file* r = real_of(f);
  return r->pMethods->xDeviceCharacteristics(r);
}
// The shared-memory index of WAL mode: memory-mapped, not written through
// xWrite, so it is passed on untouched (SQLite keeps it consistent itself).
int x_shm_map(sqlite3_file* f, int page, int size, int extend, void volatile** out) {
  sqlite3_file* r = real_of(f);
  return r->pMethods->xShmMap(r, page, size, extend, out);
}
int x_shm_lock(sqlite3_file* f, int offset, int n, int flags) {
  sqlite3_file* r = real_of(f);
  return r->pMethods->xShmLock(r, offset, n, flags);
}
void x_shm_barrier(sqlite3_file* f) {
  sqlite3_file* r = real_of(f);
  r->pMethods->xShmBarrier(r);
}
int x_shm_unmap(sqlite3_file* f, int del) {
  sqlite3_file* r = real_of(f);
  return r->pMethods->xShmUnmap(r, del);
}
int x_fetch(sqlite3_file* f, sqlite3_int64 off, int n, void** out) {
  sqlite3_file* r = real_of(f);
  return r->pMethods->xFetch(r, off, n, out);
}
int x_unfetch(sqlite3_file* f, sqlite3_int64 off, void* p) {
  sqlite3_file* r = real_of(f);
  return r->pMethods->xUnfetch(r, off, p);
}

// Version 3, as WAL needs xShm* and the unix VFS provides them; x_open
// refuses a real file whose methods are older, rather than call a null slot.
const sqlite3_io_methods kMethods = {
    3,
    x_close,
    x_read,
    x_write,
    x_truncate,
    x_sync,
    x_file_size,
    x_lock,
    x_unlock,
    x_check_reserved_lock,
    x_file_control,
    x_sector_size,
    x_device_characteristics,
    x_shm_map,
    x_shm_lock,
    x_shm_barrier,
    x_shm_unmap,
    x_fetch,
    x_unfetch,
};

int x_open(sqlite3_vfs* /*vfs*/, const char* name, sqlite3_file* f, int flags, int* out_flags) {
  auto* ff = reinterpret_cast<FaultFile*>(f);
  ff->base.pMethods = nullptr;
  ff->real = reinterpret_cast<sqlite3_file*>(ff + 1);
  int rc = g_real->xOpen(g_real, name, ff->real, flags, out_flags);
  if (rc != SQLITE_OK) return rc;
  if (ff->real->pMethods == nullptr || ff->real->pMethods->iVersion < 3) {
    if (ff->real->pMethods) ff->real->pMethods->xClose(ff->real);
    return SQLITE_CANTOPEN;
  }
  ff->base.pMethods = &kMethods;
  return SQLITE_OK;
}

}  // namespace

FaultVfs& FaultVfs::install() {
  static FaultVfs vfs;
  static std::once_flag once;
  std::call_once(once, [] {
    g_real = sqlite3_vfs_find("unix");
    if (g_real == nullptr) std::abort();  // only built where SQLite has its unix VFS
    // Every other method (delete, access, full path, randomness, time...) is
    // the unix VFS's own, with its own pAppData, so they behave identically.
    g_vfs = *g_real;
    g_vfs.pNext = nullptr;
    g_vfs.zName = kFaultVfsName;
    g_vfs.szOsFile = static_cast<int>(sizeof(FaultFile)) + g_real->szOsFile;
    g_vfs.xOpen = x_open;
    if (sqlite3_vfs_register(&g_vfs, /*makeDflt=*/0) != SQLITE_OK) std::abort();
  });
  return vfs;
}

void FaultVfs::fail_writes(WriteFault fault) { g_fault = fault; }
void FaultVfs::slow_syncs(std::chrono::milliseconds delay) { g_sync_delay_ms = delay.count(); }
void FaultVfs::clear() {
  g_fault = WriteFault::kNone;
  g_sync_delay_ms = 0;
}
uint64_t FaultVfs::failed_writes() const { return g_failed_writes.load(); }
uint64_t FaultVfs::syncs() const { return g_syncs.load(); }

}  // namespace usher::test
