// Turns block.bpf.c's maps into scry_block_* metrics at scrape time.
#pragma once

#include <prometheus/collectable.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "scry/bpf_loader.h"
#include "scry/decoders.h"
#include "scry/workloads.h"

namespace scry::block {

const char* OpName(uint32_t op);

// Per disk and operation: latency, sizes, requests, bytes, errors.
// Devices that leave /proc/diskstats (a deleted loop device, an unplugged disk) keep their last name
// for a grace period, then their series and map entries go.
class DiskCollector : public prometheus::Collectable {
 public:
  explicit DiskCollector(const BpfObject& bpf);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  // The device's name, or nullopt once it has been gone for the grace period (then its entries go).
  std::optional<std::string> DeviceLabel(uint32_t dev) const;

  const BpfObject& bpf_;
  bool queue_time_, service_time_;
  mutable std::mutex mutex_;
  mutable DiskNames disks_;
  struct Missing {
    std::chrono::steady_clock::time_point since;
    std::string name;
  };
  mutable std::map<uint32_t, std::string> names_;  // last name seen per device
  mutable std::map<uint32_t, Missing> missing_;
};

// Per workload (container, or cgroup of a host service) and disk: I/O latency from first sight of the
// request to completion.
class CgroupCollector : public prometheus::Collectable {
 public:
  CgroupCollector(const BpfObject& bpf, WorkloadSeries series);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const BpfObject& bpf_;
  mutable std::mutex mutex_;
  mutable WorkloadSeries series_;
  mutable DiskNames disks_;
};

// Page cache accesses, additions, dirtied: only the counters whose hooks attached.
class PageCacheCollector : public prometheus::Collectable {
 public:
  explicit PageCacheCollector(const BpfObject& bpf);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const BpfObject& bpf_;
};

}  // namespace scry::block
