// Turns sched_sli.bpf.c's maps into scry_sched_* metrics, and watches for hung tasks.
#pragma once

#include <linux/types.h>
#include <prometheus/collectable.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "sched_sli.h"
#include "scry/bpf_loader.h"
#include "scry/workloads.h"

namespace scry::sched {

// "sleep", "iowait", "uninterruptible", "preempted".
const char* OffReasonName(uint32_t reason);

// Adds b into a (histograms and counters).
void Merge(sched_cgroup_stats& a, const sched_cgroup_stats& b);

// Per workload (unless per_workload is false) and node-wide, from the cgroup_stats map. Node-wide series
// include cgroups that could not be labelled and those whose entries were deleted (kept in retired_), so
// they never go down.
class SchedCollector : public prometheus::Collectable {
 public:
  SchedCollector(const BpfObject& bpf, WorkloadSeries series, bool per_workload, bool long_runs);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const BpfObject& bpf_;
  bool per_workload_, long_runs_;
  mutable std::mutex mutex_;
  mutable WorkloadSeries series_;
  mutable sched_cgroup_stats retired_{};
};

// Tasks in uninterruptible sleep for longer than a threshold, from the blocked_tasks iterator, checked
// every second: a gauge per workload and node-wide, and one log line per episode.
class HungTaskMonitor : public prometheus::Collectable {
 public:
  HungTaskMonitor(const BpfObject& bpf, WorkloadSeries series, std::shared_ptr<IdentityResolver> resolver,
                  std::chrono::nanoseconds threshold);
  ~HungTaskMonitor() override;
  void Start();
  // Stops the checks (before the BPF object goes away).
  void Stop();
  // One look at the blocked tasks (Start repeats it every second).
  void Scan();
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const BpfObject& bpf_;
  std::shared_ptr<IdentityResolver> resolver_;
  std::chrono::nanoseconds threshold_;
  mutable std::mutex mutex_;
  mutable WorkloadSeries series_;
  std::map<uint64_t, uint64_t> hung_by_cgroup_;  // cgroup id -> hung tasks at the last scan
  uint64_t hung_ = 0;
  uint64_t scan_errors_ = 0;
  // Episodes (pid, switch count) -> when the sleep began (monotonic ns), and those already logged.
  std::map<std::pair<uint32_t, uint64_t>, uint64_t> blocked_since_;
  std::set<std::pair<uint32_t, uint64_t>> reported_;
  std::thread thread_;
  std::condition_variable stop_cv_;
  bool stop_ = false;
};

}  // namespace scry::sched
