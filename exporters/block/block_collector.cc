#include "block_collector.h"

#include <linux/types.h>

#include <algorithm>

#include "block.h"
#include "scry/bpf_maps.h"
#include "scry/histogram.h"
#include "scry/log.h"
#include "scry/metrics.h"

namespace scry::block {

using prometheus::MetricType;

namespace {
// A device that left /proc/diskstats this long ago: its series and map entries go.
constexpr auto kGoneDeviceGrace = std::chrono::minutes(5);
}  // namespace

const char* OpName(uint32_t op) {
  switch (op) {
    case BLOCK_OP_READ: return "read";
    case BLOCK_OP_WRITE: return "write";
    case BLOCK_OP_DISCARD: return "discard";
    case BLOCK_OP_FLUSH: return "flush";
    default: return "other";
  }
}

DiskCollector::DiskCollector(const BpfObject& bpf) : bpf_(bpf) {
  const HookResult* insert = bpf.Hook("rq_insert");
  service_time_ = bpf.FeatureAvailable("latency");
  queue_time_ = service_time_ && insert && insert->mode != AttachMode::None;
}

std::optional<std::string> DiskCollector::DeviceLabel(uint32_t dev) const {
  auto now = std::chrono::steady_clock::now();
  if (auto name = disks_.Lookup(KernelDevMajor(dev), KernelDevMinor(dev))) {
    missing_.erase(dev);
    names_[dev] = *name;
    return name;
  }
  auto known = names_.find(dev);
  std::string last = known != names_.end()
                         ? known->second
                         : std::to_string(KernelDevMajor(dev)) + ":" + std::to_string(KernelDevMinor(dev));
  auto [it, inserted] = missing_.try_emplace(dev, Missing{now, last});
  if (now - it->second.since <= kGoneDeviceGrace) return it->second.name;
  missing_.erase(it);
  names_.erase(dev);
  return std::nullopt;
}

std::vector<prometheus::MetricFamily> DiskCollector::Collect() const {
  std::lock_guard lock(mutex_);
  auto queue = MakeFamily("scry_block_queue_duration_seconds",
                          "Time requests waited in the I/O scheduler, from insert to issue to the driver.",
                          MetricType::Histogram);
  auto service = MakeFamily("scry_block_service_duration_seconds",
                            "Time the device took to serve requests, from issue to completion.", MetricType::Histogram);
  auto size = MakeFamily("scry_block_request_size_bytes", "Size of completed requests.", MetricType::Histogram);
  auto requests = MakeFamily("scry_block_requests_total", "Completed requests.", MetricType::Counter);
  auto bytes = MakeFamily("scry_block_bytes_total", "Bytes of completed requests.", MetricType::Counter);
  auto errors = MakeFamily("scry_block_errors_total", "Requests that completed with an error, by errno name.",
                           MetricType::Counter);

  std::vector<block_disk_key> gone_disks;
  std::vector<block_error_key> gone_errors;
  ForEachEntry<block_disk_key, block_disk_stats>(bpf_.MapFd("disk_stats"), [&](const block_disk_key& k,
                                                                                const block_disk_stats& s) {
    auto device = DeviceLabel(k.dev);
    if (!device) {
      gone_disks.push_back(k);
      return;
    }
    Labels labels{{"device", *device}, {"op", OpName(k.op)}};
    auto sizes = ToPrometheus(s.size, kSizeBytes);
    AddCounter(requests, labels, static_cast<double>(sizes.sample_count));
    AddCounter(bytes, labels, static_cast<double>(s.size.sum));
    AddHistogram(size, labels, std::move(sizes));
    if (queue_time_) AddHistogram(queue, labels, ToPrometheus(s.queue, kLatencySeconds));
    if (service_time_) AddHistogram(service, labels, ToPrometheus(s.service, kLatencySeconds));
  });
  ForEachEntry<block_error_key, __u64>(bpf_.MapFd("errors"), [&](const block_error_key& k, __u64 n) {
    auto device = DeviceLabel(k.dev);
    if (!device) {
      gone_errors.push_back(k);
      return;
    }
    AddCounter(errors, {{"device", *device}, {"op", OpName(k.op)}, {"error", ErrnoName(k.error)}},
               static_cast<double>(n));
  });
  for (const auto& k : gone_disks) bpf_map_delete_elem(bpf_.MapFd("disk_stats"), &k);
  for (const auto& k : gone_errors) bpf_map_delete_elem(bpf_.MapFd("errors"), &k);

  std::vector<prometheus::MetricFamily> out;
  if (queue_time_) out.push_back(std::move(queue));
  if (service_time_) out.push_back(std::move(service));
  out.push_back(std::move(size));
  out.push_back(std::move(requests));
  out.push_back(std::move(bytes));
  out.push_back(std::move(errors));
  return out;
}

CgroupCollector::CgroupCollector(const BpfObject& bpf, WorkloadSeries series)
    : bpf_(bpf), series_(std::move(series)) {}

std::vector<prometheus::MetricFamily> CgroupCollector::Collect() const {
  std::lock_guard lock(mutex_);
  auto latency = MakeFamily("scry_block_cgroup_io_duration_seconds",
                            "I/O latency of requests submitted by tasks of the workload (container, or cgroup of "
                            "a host service), from insert (or issue) to completion.",
                            MetricType::Histogram);
  int fd = bpf_.MapFd("cgroup_latency");

  // (workload labels, device) -> histogram; workloads past the cap merge into cgroup="other".
  std::map<std::pair<Labels, std::string>, scry_hist> series;
  std::vector<block_cgroup_key> expired;
  series_.Begin();
  ForEachEntry<block_cgroup_key, scry_hist>(fd, [&](const block_cgroup_key& k, const scry_hist& h) {
    auto verdict = series_.Label(k.cgroup_id);
    if (verdict.action == WorkloadSeries::Action::kDelete) expired.push_back(k);
    if (verdict.action != WorkloadSeries::Action::kExport) return;
    auto key = std::make_pair(std::move(verdict.labels), disks_.Name(KernelDevMajor(k.dev), KernelDevMinor(k.dev)));
    Merge(series[std::move(key)], h);
  });
  series_.End();
  for (const auto& k : expired) bpf_map_delete_elem(fd, &k);
  for (const auto& [key, hist] : series) {
    Labels labels = key.first;
    labels.push_back({"device", key.second});
    AddHistogram(latency, std::move(labels), ToPrometheus(hist, kLatencySeconds));
  }
  std::vector<prometheus::MetricFamily> out;
  out.push_back(std::move(latency));
  return out;
}

PageCacheCollector::PageCacheCollector(const BpfObject& bpf) : bpf_(bpf) {}

std::vector<prometheus::MetricFamily> PageCacheCollector::Collect() const {
  struct Counter {
    const char* feature;
    const char* name;
    const char* help;
    uint32_t index;
  };
  static const Counter counters[] = {
      {"page_cache_accesses", "scry_block_page_cache_accesses_total",
       "Page cache accesses (folios marked accessed).", PAGE_CACHE_ACCESSES},
      {"page_cache_additions", "scry_block_page_cache_additions_total",
       "Folios added to the page cache: page cache misses.", PAGE_CACHE_ADDITIONS},
      {"page_cache_dirtied", "scry_block_page_cache_dirtied_total", "Page cache folios dirtied.",
       PAGE_CACHE_DIRTIED},
  };
  std::vector<prometheus::MetricFamily> out;
  int fd = bpf_.MapFd("page_cache");
  for (const auto& c : counters) {
    if (!bpf_.FeatureAvailable(c.feature)) continue;  // unavailable is not zero
    auto family = MakeFamily(c.name, c.help, MetricType::Counter);
    AddCounter(family, {}, static_cast<double>(SumPerCpu(fd, c.index)));
    out.push_back(std::move(family));
  }
  return out;
}

}  // namespace scry::block
