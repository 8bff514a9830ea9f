// Turns mem_sli.bpf.c's maps into scry_mem_* metrics at scrape time.
#pragma once

#include <prometheus/collectable.h>

#include <mutex>

#include "scry/bpf_loader.h"
#include "scry/workloads.h"

namespace scry::mem {

// Per workload (container, or cgroup of a host service): stalls, faults, OOM kills, VM growth. Only the
// families whose features are available.
class WorkloadCollector : public prometheus::Collectable {
 public:
  WorkloadCollector(const BpfObject& bpf, WorkloadSeries series);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const BpfObject& bpf_;
  mutable std::mutex mutex_;
  mutable WorkloadSeries series_;
};

// Node-wide: the same events of every observed task, whatever its cgroup.
class NodeCollector : public prometheus::Collectable {
 public:
  explicit NodeCollector(const BpfObject& bpf);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const BpfObject& bpf_;
};

}  // namespace scry::mem
