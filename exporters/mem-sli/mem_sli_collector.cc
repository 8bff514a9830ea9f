#include "mem_sli_collector.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <filesystem>
#include <map>
#include <set>

#include "mem_sli_decode.h"
#include "scry/bpf_maps.h"
#include "scry/cgroup_slots.h"
#include "scry/files.h"
#include "scry/histogram.h"
#include "scry/metrics.h"

namespace scry::mem {

using prometheus::MetricType;

namespace {

// The CPUs' lines of the `cpus` array (struct mem_cpu; element 0, the epoch, left out), in one batch
// read where the kernel has it.
std::vector<mem_cpu> ReadCpuLines(int fd) {
  std::vector<mem_cpu> elements(1 + PossibleCpus());
  std::vector<uint32_t> keys(elements.size());
  uint32_t count = static_cast<uint32_t>(elements.size()), out_batch = 0;
  if (bpf_map_lookup_batch(fd, nullptr, &out_batch, keys.data(), elements.data(), &count, nullptr) != 0 &&
      !(errno == ENOENT && count == elements.size()))
    for (uint32_t key = 0; key < elements.size(); key++)
      if (bpf_map_lookup_elem(fd, &key, &elements[key]) != 0) elements[key] = {};
  return {elements.begin() + 1, elements.end()};
}

// The counters of one workload slot summed over CPUs, with the faults still waiting in the CPUs' lines.
// Each CPU's share comes from a read of its counters between two reads of its line with no move of
// waiting faults between them; `lines` is the latest read of the lines and is kept up to date. After a
// few tries a CPU that keeps moving (tasks of several cgroups faulting in turn on it) is read as it is.
bool ReadSlot(int stats_fd, int cpus_fd, uint32_t slot, uint64_t cgroup_id, std::vector<mem_cpu>& lines,
              mem_cgroup_stats* total) {
  constexpr int kTries = 4;
  std::vector<mem_cgroup_stats> per_cpu(lines.size());
  std::vector<bool> done(lines.size());
  size_t left = lines.size();
  *total = {};
  for (int attempt = 0; attempt < kTries && left > 0; attempt++) {
    if (bpf_map_lookup_elem(stats_fd, &slot, per_cpu.data()) != 0) return false;
    std::vector<mem_cpu> after = ReadCpuLines(cpus_fd);
    for (size_t cpu = 0; cpu < lines.size(); cpu++) {
      if (done[cpu]) continue;
      mem_cgroup_stats share{};
      if (!CpuShare(per_cpu[cpu], lines[cpu], after[cpu], slot, cgroup_id, &share)) {
        if (attempt + 1 < kTries) continue;
        mem_cpu settled = after[cpu];
        settled.moves = 0;
        CpuShare(per_cpu[cpu], settled, settled, slot, cgroup_id, &share);
      }
      Add(*total, share);
      done[cpu] = true;
      left--;
    }
    lines = std::move(after);
  }
  return true;
}

// Histogram families of the stall kinds, with the feature each needs.
struct StallFamily {
  uint32_t kind;
  const char* feature;
  const char* name;
  const char* help;
  bool kind_label;  // reclaim kinds share one family, told apart by kind=
};
const StallFamily kStallFamilies[] = {
    {MEM_STALL_MEMCG_RECLAIM, "memcg_reclaim", "reclaim_stall_seconds",
     "Time tasks stalled in memory reclaim: kind=memcg to stay under a memory cgroup limit, kind=direct "
     "because the node was short of memory.",
     true},
    {MEM_STALL_DIRECT_RECLAIM, "direct_reclaim", "reclaim_stall_seconds", nullptr, true},
    {MEM_STALL_COMPACTION, "compaction", "compaction_stall_seconds",
     "Time tasks stalled in direct memory compaction (per zone compacted).", false},
    {MEM_STALL_SWAPIN, "swap_in", "swapin_duration_seconds",
     "Page faults that read a page back from swap, and how long they took.", false},
};

// Families keyed by name, in first-use order.
class Families {
 public:
  prometheus::MetricFamily& Get(const std::string& name, const char* help, MetricType type) {
    auto it = index_.find(name);
    if (it != index_.end()) return out_[it->second];
    index_[name] = out_.size();
    out_.push_back(MakeFamily(name, help ? help : "", type));
    return out_.back();
  }
  std::vector<prometheus::MetricFamily> Take() { return std::move(out_); }

 private:
  std::map<std::string, size_t> index_;
  std::vector<prometheus::MetricFamily> out_;
};

void AddStallFamilies(Families& fams, const BpfObject& bpf, const std::string& prefix) {
  for (const auto& f : kStallFamilies)
    if (f.help && (bpf.FeatureAvailable(f.feature) ||
                   (f.kind == MEM_STALL_MEMCG_RECLAIM && bpf.FeatureAvailable("direct_reclaim"))))
      fams.Get(prefix + f.name, f.help, MetricType::Histogram);
}

void AddStall(Families& fams, const BpfObject& bpf, const std::string& prefix, Labels labels, uint32_t kind,
              const scry_hist& h) {
  for (const auto& f : kStallFamilies) {
    if (f.kind != kind || !bpf.FeatureAvailable(f.feature)) continue;
    if (f.kind_label) labels.push_back({"kind", StallKindName(kind)});
    AddHistogram(fams.Get(prefix + f.name, nullptr, MetricType::Histogram), std::move(labels),
                 ToPrometheus(h, kLatencySeconds));
  }
}

}  // namespace

std::optional<FaultCounts> ParseFaultCounts(const std::string& content) {
  auto stat = ParseFlatKeyed(content);
  auto faults = stat.find("pgfault"), major = stat.find("pgmajfault");
  if (faults == stat.end() || major == stat.end()) return std::nullopt;
  return FaultCounts{faults->second, major->second};
}

WorkloadCollector::WorkloadCollector(const BpfObject& bpf, std::shared_ptr<Workloads> workloads,
                                     std::shared_ptr<const CgroupControllerFiles> memcg)
    : bpf_(bpf), workloads_(std::move(workloads)), memcg_(std::move(memcg)), series_(workloads_->MakeSeries()) {}

std::optional<FaultCounts> WorkloadCollector::MemcgFaults(uint64_t cgroup_id) const {
  auto resolved = workloads_->resolver()->Resolve(cgroup_id);
  if (resolved.status == IdentityResolver::Status::kLive)
    if (auto content = memcg_->Read(resolved.identity.cgroup, "memory.stat"))
      if (auto counts = ParseFaultCounts(*content)) return counts;
  auto last = last_memcg_faults_.find(cgroup_id);
  if (resolved.ok() && last != last_memcg_faults_.end()) return last->second;
  return std::nullopt;
}

std::vector<prometheus::MetricFamily> WorkloadCollector::Collect() const {
  std::lock_guard lock(mutex_);
  struct Agg {
    mem_cgroup_stats stats{};
    std::map<uint32_t, scry_hist> stalls;
    uint64_t oom[MEM_OOM_SCOPE_NR] = {};
  };
  std::map<Labels, Agg> workloads;
  std::map<Labels, std::set<uint64_t>> exported;  // the cgroups behind each label set
  int stats_fd = bpf_.MapFd("cgroup_stats"), slots_fd = bpf_.MapFd("cgroup_slots"), stalls_fd = bpf_.MapFd("stalls"),
      oom_fd = bpf_.MapFd("oom_kills");
  std::vector<std::pair<uint64_t, uint32_t>> gone_slots;
  std::vector<mem_stall_key> gone_stalls;
  std::vector<mem_oom_key> gone_oom;

  series_.Begin();
  {
    int cpus_fd = bpf_.MapFd("cpus");
    std::vector<mem_cpu> lines = ReadCpuLines(cpus_fd);
    ForEachEntry<uint64_t, uint32_t>(slots_fd, [&](uint64_t cgroup_id, uint32_t slot) {
      auto verdict = series_.Label(cgroup_id);
      if (verdict.action == WorkloadSeries::Action::kDelete) gone_slots.emplace_back(cgroup_id, slot);
      if (verdict.action != WorkloadSeries::Action::kExport) return;
      exported[verdict.labels].insert(cgroup_id);
      mem_cgroup_stats total;
      if (ReadSlot(stats_fd, cpus_fd, slot, cgroup_id, lines, &total)) Add(workloads[verdict.labels].stats, total);
    });
  }
  ForEachEntry<mem_stall_key, scry_hist>(stalls_fd, [&](const mem_stall_key& k, const scry_hist& h) {
    auto verdict = series_.Label(k.cgroup_id);
    if (verdict.action == WorkloadSeries::Action::kDelete) gone_stalls.push_back(k);
    if (verdict.action != WorkloadSeries::Action::kExport) return;
    exported[verdict.labels].insert(k.cgroup_id);
    Merge(workloads[verdict.labels].stalls[k.kind], h);
  });
  ForEachEntry<mem_oom_key, __u64>(oom_fd, [&](const mem_oom_key& k, __u64 n) {
    auto verdict = series_.Label(k.cgroup_id);
    if (verdict.action == WorkloadSeries::Action::kDelete) gone_oom.push_back(k);
    if (verdict.action != WorkloadSeries::Action::kExport) return;
    exported[verdict.labels].insert(k.cgroup_id);
    workloads[verdict.labels].oom[k.scope & 1] += n;
  });
  // Workloads with no event since the start have faults too, and their other series start at 0.
  if (memcg_)
    for (uint64_t cgroup_id : workloads_->ObservedCgroups())
      if (auto verdict = series_.Label(cgroup_id); verdict.action == WorkloadSeries::Action::kExport) {
        exported[verdict.labels].insert(cgroup_id);
        workloads[verdict.labels];
      }
  series_.End();
  ReleaseSlots<mem_cgroup_stats>(bpf_, gone_slots, "cgroup_stats", [&] {
    // CPUs that hold a freed slot look it up again (the epoch, element 0 of `cpus`, moved).
    int cpus_fd = bpf_.MapFd("cpus");
    uint32_t epoch_key = 0;
    mem_cpu epoch{};
    bpf_map_lookup_elem(cpus_fd, &epoch_key, &epoch);
    epoch.epoch++;
    bpf_map_update_elem(cpus_fd, &epoch_key, &epoch, BPF_ANY);
  });
  for (const auto& k : gone_stalls) bpf_map_delete_elem(stalls_fd, &k);
  for (const auto& k : gone_oom) bpf_map_delete_elem(oom_fd, &k);

  // Faults from the memory cgroups: a label set has them if any of its cgroups has a memory cgroup.
  std::map<Labels, FaultCounts> memcg_faults;
  size_t without_memcg = 0;
  if (memcg_) {
    std::map<uint64_t, FaultCounts> read;
    for (const auto& [labels, cgroups] : exported)
      for (uint64_t cgroup_id : cgroups) {
        auto counts = MemcgFaults(cgroup_id);
        if (!counts) {
          without_memcg++;
          continue;
        }
        FaultCounts& sum = memcg_faults[labels];
        sum.faults += counts->faults;
        sum.major += counts->major;
        read[cgroup_id] = *counts;
      }
    last_memcg_faults_ = std::move(read);
  }

  const std::string p = "scry_mem_";
  bool faults = bpf_.FeatureAvailable("faults"), major = bpf_.FeatureAvailable("major_faults"),
       vm = bpf_.FeatureAvailable("vm_growth"), oom = bpf_.FeatureAvailable("oom_kills");
  Families fams;
  AddStallFamilies(fams, bpf_, p);
  for (const auto& [labels, agg] : workloads) {
    for (const auto& [kind, h] : agg.stalls) AddStall(fams, bpf_, p, labels, kind, h);
    if (faults)
      AddCounter(fams.Get(p + "page_faults_total", "Page faults taken by the workload's tasks in user mode.",
                          MetricType::Counter),
                 labels, static_cast<double>(agg.stats.faults));
    if (major)
      AddCounter(fams.Get(p + "major_page_faults_total",
                          "User page faults that needed I/O (major faults, as the kernel accounts them).",
                          MetricType::Counter),
                 labels, static_cast<double>(agg.stats.major_faults));
    if (auto it = memcg_faults.find(labels); it != memcg_faults.end()) {
      AddCounter(fams.Get(p + "page_faults_total",
                          "Page faults of the workload's tasks, as their memory cgroup counts them (memory.stat "
                          "pgfault).",
                          MetricType::Counter),
                 labels, static_cast<double>(it->second.faults));
      AddCounter(fams.Get(p + "major_page_faults_total",
                          "Page faults that needed I/O, as the workload's memory cgroup counts them (pgmajfault).",
                          MetricType::Counter),
                 labels, static_cast<double>(it->second.major));
    }
    // Every exported workload has both scopes, so that a first kill is an increase from 0.
    if (oom)
      for (uint32_t scope = 0; scope < MEM_OOM_SCOPE_NR; scope++) {
        Labels l = labels;
        l.push_back({"scope", OomScopeName(scope)});
        AddCounter(fams.Get(p + "oom_kills_total",
                            "Processes of the workload killed by the OOM killer, by the limit that was hit: "
                            "scope=memcg a memory cgroup's, scope=global the node's.",
                            MetricType::Counter),
                   std::move(l), static_cast<double>(agg.oom[scope]));
      }
    if (vm) {
      for (uint32_t kind = 0; kind < MEM_MAP_NR; kind++) {
        Labels l = labels;
        l.push_back({"kind", MapKindName(kind)});
        AddCounter(fams.Get(p + "vm_mapped_bytes_total",
                            "Bytes mapped by successful mmap calls: kind=anon private anonymous, kind=shared "
                            "MAP_SHARED, kind=file private file-backed (page-rounded).",
                            MetricType::Counter),
                   std::move(l), static_cast<double>(agg.stats.mapped[kind]));
      }
      AddCounter(fams.Get(p + "vm_unmapped_bytes_total", "Bytes released by successful munmap calls (page-rounded).",
                          MetricType::Counter),
                 labels, static_cast<double>(agg.stats.unmapped));
      AddCounter(fams.Get(p + "heap_grown_bytes_total", "Bytes the program break moved up (brk).",
                          MetricType::Counter),
                 labels, static_cast<double>(agg.stats.brk_grown));
      AddCounter(fams.Get(p + "heap_shrunk_bytes_total", "Bytes the program break moved down (brk).",
                          MetricType::Counter),
                 labels, static_cast<double>(agg.stats.brk_shrunk));
    }
  }
  if (memcg_)
    AddGauge(fams.Get(p + "workloads_without_memcg",
                      "Cgroups of exported workloads whose faults could not be read: they have no memory cgroup "
                      "of their own (their tasks are accounted to an ancestor's), so no fault series.",
                      MetricType::Gauge),
             {}, static_cast<double>(without_memcg));
  return fams.Take();
}

NodeCollector::NodeCollector(const BpfObject& bpf, std::string vmstat_root)
    : bpf_(bpf), vmstat_root_(std::move(vmstat_root)) {}

std::vector<prometheus::MetricFamily> NodeCollector::Collect() const {
  std::vector<mem_node_stats> per_cpu(PossibleCpus());
  uint32_t zero = 0;
  mem_node_stats node{};
  if (bpf_map_lookup_elem(bpf_.MapFd("node_stats"), &zero, per_cpu.data()) == 0) node = Sum(per_cpu);
  uint64_t faults = 0;
  for (const mem_cpu& line : ReadCpuLines(bpf_.MapFd("cpus"))) faults += line.faults;

  const std::string p = "scry_mem_node_";
  Families fams;
  AddStallFamilies(fams, bpf_, p);
  int fd = bpf_.MapFd("node_stalls");
  for (uint32_t kind = 0; kind < MEM_STALL_NR; kind++) {
    scry_hist h{};
    if (bpf_map_lookup_elem(fd, &kind, &h) == 0) AddStall(fams, bpf_, p, {}, kind, h);
  }
  if (bpf_.FeatureAvailable("faults"))
    AddCounter(fams.Get(p + "page_faults_total", "Page faults taken in user mode by observed tasks on the node.",
                        MetricType::Counter),
               {}, static_cast<double>(faults));
  if (bpf_.FeatureAvailable("major_faults"))
    AddCounter(fams.Get(p + "major_page_faults_total", "User page faults that needed I/O, node-wide.",
                        MetricType::Counter),
               {}, static_cast<double>(node.major_faults));
  if (!vmstat_root_.empty()) {
    if (auto counts = ParseFaultCounts(ReadFileContent(std::filesystem::path(vmstat_root_) / "proc/vmstat").value_or(""))) {
      AddCounter(fams.Get(p + "page_faults_total", "Page faults on the node (/proc/vmstat pgfault).",
                          MetricType::Counter),
                 {}, static_cast<double>(counts->faults));
      AddCounter(fams.Get(p + "major_page_faults_total", "Page faults that needed I/O on the node (pgmajfault).",
                          MetricType::Counter),
                 {}, static_cast<double>(counts->major));
    }
  }
  if (bpf_.FeatureAvailable("oom_kills"))
    for (uint32_t scope = 0; scope < MEM_OOM_SCOPE_NR; scope++)
      AddCounter(fams.Get(p + "oom_kills_total", "OOM kills on the node, by the limit that was hit.",
                          MetricType::Counter),
                 {{"scope", OomScopeName(scope)}}, static_cast<double>(node.oom_kills[scope]));
  return fams.Take();
}

}  // namespace scry::mem
