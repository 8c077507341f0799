#include "cgroup.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

namespace usher::bench {
namespace {

// CFS accounts quotas per period; 100 ms is the kernel's default period.
constexpr long kPeriodUs = 100'000;

const char* kV2Root = "/sys/fs/cgroup";
const char* kV1Cpu = "/sys/fs/cgroup/cpu";

bool exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// One write(2), so the kernel's answer (EINVAL, EBUSY, EACCES) reaches `error`.
bool write_file(const std::string& path, const std::string& text, std::string& error) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    error = "cannot open " + path + ": " + std::strerror(errno);
    return false;
  }
  bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  if (!ok) error = "cannot write '" + text + "' to " + path + ": " + std::strerror(errno);
  close(fd);
  return ok;
}

bool make_dir(const std::string& path, std::string& error) {
  if (mkdir(path.c_str(), 0755) == 0) return true;
  error = "cannot create " + path + ": " + std::strerror(errno);
  if (errno == EACCES || errno == EPERM || errno == EROFS) error += " (not writable: run as root, or delegate a cgroup)";
  return false;
}

bool has_word(const std::string& text, const std::string& word) {
  std::istringstream in(text);
  for (std::string w; in >> w;)
    if (w == word) return true;
  return false;
}

}  // namespace

std::optional<CpuQuotaGroups> CpuQuotaGroups::create(unsigned count, double cpus, std::string& error) {
  const long quota_us = std::lround(cpus * kPeriodUs);
  if (quota_us < 1000) {
    error = "a CPU share below 0.01 cannot be set as a quota";
    return std::nullopt;
  }
  CpuQuotaGroups g;
  const bool v2 = exists(std::string(kV2Root) + "/cgroup.controllers");
  const bool v1 = !v2 && exists(std::string(kV1Cpu) + "/cpu.cfs_quota_us");
  if (!v1 && !v2) {
    error = "no cgroup cpu controller: neither cgroup v2 (/sys/fs/cgroup/cgroup.controllers) nor cgroup v1's cpu "
            "hierarchy (/sys/fs/cgroup/cpu/cpu.cfs_quota_us) is mounted";
    return std::nullopt;
  }
  const std::string root = v2 ? kV2Root : kV1Cpu;
  g.describe_ = v2 ? "cgroup v2 (cpu.max under /sys/fs/cgroup)" : "cgroup v1 (cpu.cfs_quota_us under /sys/fs/cgroup/cpu)";
  if (v2) {
    if (!has_word(read_all(root + "/cgroup.controllers"), "cpu")) {
      error = "cgroup v2 is mounted at /sys/fs/cgroup, but its cgroup.controllers offers no cpu controller";
      return std::nullopt;
    }
    // Make cpu available to the root's children (a no-op when it already is).
    if (!has_word(read_all(root + "/cgroup.subtree_control"), "cpu") &&
        !write_file(root + "/cgroup.subtree_control", "+cpu", error)) {
      error += " (the cpu controller cannot be enabled for /sys/fs/cgroup's children)";
      return std::nullopt;
    }
  }
  for (unsigned i = 0; i < count; ++i) {
    std::string dir = root + "/usher-bench-" + std::to_string(getpid()) + "-node-" + std::to_string(i + 1);
    if (!make_dir(dir, error)) return std::nullopt;
    g.groups_.push_back(dir);  // from here on the destructor removes it
    bool set = v2 ? write_file(dir + "/cpu.max", std::to_string(quota_us) + " " + std::to_string(kPeriodUs), error)
                  : write_file(dir + "/cpu.cfs_period_us", std::to_string(kPeriodUs), error) &&
                        write_file(dir + "/cpu.cfs_quota_us", std::to_string(quota_us), error);
    if (!set) return std::nullopt;
  }
  return std::optional<CpuQuotaGroups>(std::move(g));
}

CpuQuotaGroups::CpuQuotaGroups(CpuQuotaGroups&& other) noexcept
    : groups_(std::exchange(other.groups_, {})),
      describe_(std::move(other.describe_)) {}

CpuQuotaGroups& CpuQuotaGroups::operator=(CpuQuotaGroups&& other) noexcept {
  if (this != &other) {
    remove();
    groups_ = std::exchange(other.groups_, {});
    describe_ = std::move(other.describe_);
  }
  return *this;
}

CpuQuotaGroups::~CpuQuotaGroups() { remove(); }

Throttling CpuQuotaGroups::throttling() const {
  Throttling t;
  for (const std::string& dir : groups_) {
    std::istringstream in(read_all(dir + "/cpu.stat"));
    std::string key;
    uint64_t value = 0;
    while (in >> key >> value) {
      if (key == "nr_periods") t.periods += value;
      if (key == "nr_throttled") t.throttled += value;
    }
  }
  return t;
}

void CpuQuotaGroups::remove() {
  for (const std::string& dir : groups_) rmdir(dir.c_str());
  groups_.clear();
}

}  // namespace usher::bench
