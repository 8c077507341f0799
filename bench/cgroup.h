// CPU quotas for the cluster benchmark: each `usher serve` node runs in a
// cgroup of its own, held to a fixed share of one CPU (cpu.cfs_quota_us /
// cpu.cfs_period_us on cgroup v1, cpu.max on cgroup v2).
//
// Layout: <cpu hierarchy>/usher-bench-<pid>-node-<i>, side by side at the
// top, each with the default weight (cpu.shares 1024, cpu.weight 100). So
// when the machine is busy each node competes like one process, as it would
// without cgroups. (Under a common parent the N nodes together would weigh
// one process, and more nodes would get less CPU each for that reason alone.)
// A process joins a group by writing its pid to the group's cgroup.procs
// (spawn() does it in the child, before exec, so every thread of the node
// starts inside the quota). remove() deletes the groups; they must be empty,
// i.e. their processes reaped.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace usher::bench {

// What a group's cpu.stat says: CFS periods that had runnable work and those
// in which the group used up its quota and was stopped until the next one.
struct Throttling {
  uint64_t periods = 0;
  uint64_t throttled = 0;
};

class CpuQuotaGroups {
 public:
  // Creates `count` groups, each held to `cpus` (e.g. 0.25) of one CPU per
  // 100 ms period. Nullopt with `error` saying what is missing or not
  // writable (needs root, or a delegated cgroup).
  static std::optional<CpuQuotaGroups> create(unsigned count, double cpus, std::string& error);

  CpuQuotaGroups(CpuQuotaGroups&&) noexcept;
  CpuQuotaGroups& operator=(CpuQuotaGroups&&) noexcept;  // removes this one's groups first
  CpuQuotaGroups(const CpuQuotaGroups&) = delete;
  ~CpuQuotaGroups();  // remove()

  // The file a process writes its pid to, to join group `i`.
  std::string procs_file(unsigned i) const { return groups_[i] + "/cgroup.procs"; }
  // Summed over the groups.
  Throttling throttling() const;
  // "cgroup v1 (/sys/fs/cgroup/cpu)" or "cgroup v2 (/sys/fs/cgroup)".
  const std::string& describe() const { return describe_; }
  // Deletes the groups (rmdir); they must hold no process by then.
  void remove();

 private:
  CpuQuotaGroups() = default;

  std::vector<std::string> groups_;
  std::string describe_;
};

}  // namespace usher::bench
