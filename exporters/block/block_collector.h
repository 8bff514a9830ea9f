// Turns block.bpf.c's maps into scry_block_* metrics at scrape time.
#pragma once

#include <prometheus/collectable.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "scry/bpf_loader.h"
#include "scry/cgroup.h"
#include "scry/decoders.h"

namespace scry::block {

const char* OpName(uint32_t op);

// Per disk and operation: latency, sizes, requests, bytes, errors.
class DiskCollector : public prometheus::Collectable {
 public:
  explicit DiskCollector(const BpfObject& bpf);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const BpfObject& bpf_;
  bool queue_time_, service_time_;
  mutable DiskNames disks_;
};

// Per cgroup and disk: I/O latency from first sight of the request to completion.
class CgroupCollector : public prometheus::Collectable {
 public:
  CgroupCollector(const BpfObject& bpf, std::string cgroup_root, size_t max_cgroups);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const BpfObject& bpf_;
  size_t max_cgroups_;
  mutable CgroupPaths cgroups_;
  mutable DiskNames disks_;
  mutable std::mutex mutex_;
  // When each cgroup id was first seen without a path; after a grace period its entries go.
  mutable std::map<uint64_t, std::chrono::steady_clock::time_point> unresolved_since_;
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
