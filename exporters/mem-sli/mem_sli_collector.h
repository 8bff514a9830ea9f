// Turns mem_sli.bpf.c's maps into scry_mem_* metrics at scrape time.
#pragma once

#include <prometheus/collectable.h>

#include <map>
#include <memory>
#include <mutex>
#include <optional>

#include "scry/bpf_loader.h"
#include "scry/cgroup.h"
#include "scry/identity.h"
#include "scry/workloads.h"

namespace scry::mem {

// Page faults as a memory cgroup (memory.stat) or the node (/proc/vmstat) counts them.
struct FaultCounts {
  uint64_t faults = 0, major = 0;
};
// pgfault and pgmajfault of memory.stat or /proc/vmstat content; nullopt if either is missing.
std::optional<FaultCounts> ParseFaultCounts(const std::string& content);

// Per workload (container, or cgroup of a host service): stalls, faults, OOM kills, VM growth. Only the
// families whose features are available. With memcg set, faults come from the memory cgroups of the
// workloads with events and of every cgroup holding observed processes.
class WorkloadCollector : public prometheus::Collectable {
 public:
  WorkloadCollector(const BpfObject& bpf, std::shared_ptr<Workloads> workloads,
                    std::shared_ptr<const CgroupControllerFiles> memcg);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  // The faults of a workload's memory cgroup; once the cgroup is gone, the last ones read.
  std::optional<FaultCounts> MemcgFaults(uint64_t cgroup_id) const;

  const BpfObject& bpf_;
  std::shared_ptr<Workloads> workloads_;
  std::shared_ptr<const CgroupControllerFiles> memcg_;
  mutable std::mutex mutex_;
  mutable WorkloadSeries series_;
  mutable std::map<uint64_t, FaultCounts> last_memcg_faults_;
};

// Node-wide: the same events of every observed task, whatever its cgroup. With vmstat_root set, faults
// are the kernel's own node-wide counts (<vmstat_root>/proc/vmstat).
class NodeCollector : public prometheus::Collectable {
 public:
  NodeCollector(const BpfObject& bpf, std::string vmstat_root);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const BpfObject& bpf_;
  std::string vmstat_root_;
};

}  // namespace scry::mem
