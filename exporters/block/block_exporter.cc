#include "block_exporter.h"

#include "block.skel.h"
#include "block_collector.h"
#include "scry/errors.h"

namespace po = boost::program_options;

namespace scry::block {

const ExporterInfo kInfo{"block", "Block I/O latency, sizes and errors per disk, and page cache events, from eBPF.",
                         9652};

void BlockExporter::AddOptions(po::options_description& desc) {
  desc.add_options()
    ("collector.cgroup", po::value<bool>()->default_value(false)->implicit_value(true),
     "Per-workload I/O latency histograms: per container, or per cgroup of a host service (multiplies "
     "series by workloads).")
    ("collector.page-cache", po::value<bool>()->default_value(true)->implicit_value(true),
     "Page cache accesses, additions and dirtied folios, where the kernel has hooks.");
  Workloads::AddOptions(desc);
}

BpfSpec BlockExporter::MakeBpfSpec(const po::variables_map& vm) {
  BpfSpec spec;
  spec.object_name = "block";
  spec.elf = block_bpf__elf_bytes(&spec.elf_size);
  // Latency needs the request itself at completion, which the classic tracepoint does not give.
  const std::vector<AttachMode> request_modes{AttachMode::TpBtf, AttachMode::RawTp, AttachMode::Fentry,
                                              AttachMode::Kprobe};
  spec.features = {
      {"io", "requests, bytes, sizes and errors per disk", true, {}, {}},
      {"latency", "queue and service time per disk", false, {}, {{"rq_complete", request_modes}}},
      {"cgroup", "I/O latency per cgroup", false, {"latency"}, {}},
      {"page_cache_accesses", "page cache accesses", false, {}, {}},
      {"page_cache_additions", "page cache additions (misses)", false, {}, {}},
      {"page_cache_dirtied", "page cache folios dirtied", false, {}, {}},
  };
  spec.hooks = {
      {"rq_complete", "io",
       {"rq_complete_btf", "rq_complete_raw", "rq_complete_tp", "rq_complete_fentry", "rq_complete_kprobe"}},
      {"rq_issue", "latency", {"rq_issue_btf", "rq_issue_raw", "rq_issue_fentry", "rq_issue_kprobe"}},
      {"rq_insert", "latency", {"rq_insert_btf", "rq_insert_raw"}, /*optional=*/true},
      {"rq_merge", "latency", {"rq_merge_btf", "rq_merge_raw"}, /*optional=*/true},
      {"page_access", "page_cache_accesses",
       {"page_access_fentry", "page_access_kprobe", "page_access_old_fentry", "page_access_old_kprobe"}},
      {"page_add", "page_cache_additions", {"page_add_btf", "page_add_tp"}},
      {"page_dirty", "page_cache_dirtied", {"page_dirty_btf", "page_dirty_tp", "page_dirty_old_tp"}},
  };
  spec.lost_reasons = {"inflight_map_full", "disk_stats_map_full", "errors_map_full", "cgroup_map_full"};

  bool cgroups = vm["collector.cgroup"].as<bool>();
  if (!cgroups) spec.disabled_features.push_back("cgroup");
  if (!vm["collector.page-cache"].as<bool>())
    spec.disabled_features.insert(spec.disabled_features.end(),
                                  {"page_cache_accesses", "page_cache_additions", "page_cache_dirtied"});
  workloads_ = std::make_shared<Workloads>(vm);
  workloads_->ConfigureBpf(spec);
  if (!workloads_->filter().empty() && !cgroups)
    throw UsageError("--filter.* selects what per-cgroup series show: it needs --collector.cgroup");
  spec.SetConst<bool>("track_cgroups", cgroups);
  // Before 5.11 block_rq_insert/issue also passed the request queue.
  spec.SetConst<bool>("rq_hooks_have_queue_arg", TracepointArgCount("block_rq_issue", vm["btf-path"].as<std::string>()) == 2);
  return spec;
}

std::vector<std::pair<std::string, std::shared_ptr<prometheus::Collectable>>> BlockExporter::MakeCollectors(
    const BpfObject& bpf, const po::variables_map& /*vm*/) {
  std::vector<std::pair<std::string, std::shared_ptr<prometheus::Collectable>>> collectors;
  collectors.emplace_back("disk", std::make_shared<DiskCollector>(bpf));
  if (bpf.FeatureAvailable("cgroup")) {
    collectors.emplace_back("cgroup", std::make_shared<CgroupCollector>(bpf, workloads_->MakeSeries()));
    collectors.emplace_back("workloads", workloads_);
  }
  collectors.emplace_back("page_cache", std::make_shared<PageCacheCollector>(bpf));
  return collectors;
}

void BlockExporter::Started(const BpfObject& bpf) { workloads_->Start(bpf); }
void BlockExporter::Stopping() { workloads_->Stop(); }

}  // namespace scry::block
