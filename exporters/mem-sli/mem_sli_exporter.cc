#include "mem_sli_exporter.h"

#include <bpf/libbpf.h>
#include <unistd.h>

#include "mem_sli.skel.h"
#include "mem_sli_collector.h"
#include "scry/errors.h"

namespace po = boost::program_options;

namespace scry::mem {

const ExporterInfo kInfo{"mem-sli",
                         "Memory SLIs per container: reclaim, compaction and swap-in stalls, page faults, OOM "
                         "kills and process VM growth, from eBPF.",
                         9654};

void MemExporter::AddOptions(po::options_description& desc) {
  desc.add_options()
    ("collector.faults", po::value<bool>()->default_value(true)->implicit_value(true),
     "Page faults and major faults per workload and node-wide.")
    ("faults.source", po::value<std::string>()->default_value("memcg"),
     "Where fault counts come from. memcg: the memory cgroups' own counters (memory.stat pgfault and "
     "pgmajfault, read at scrape time: no cost per fault; faults the kernel takes on a task's behalf "
     "included; only workloads with a memory cgroup of their own). hook: a BPF program on every user-mode "
     "page fault (about 100 ns each; any workload; major faults need fexit).")
    ("collector.vm-growth", po::value<bool>()->default_value(true)->implicit_value(true),
     "Bytes mapped and unmapped (mmap, munmap) and heap growth (brk) per workload.");
  Workloads::AddOptions(desc);
}

BpfSpec MemExporter::MakeBpfSpec(const po::variables_map& vm) {
  BpfSpec spec;
  spec.object_name = "mem_sli";
  spec.elf = mem_sli_bpf__elf_bytes(&spec.elf_size);
  spec.features = {
      {"oom_kills", "OOM kills per workload and scope, with a log line per kill", true, {}, {}},
      {"memcg_reclaim", "stalls in memory cgroup reclaim", false, {}, {}},
      {"direct_reclaim", "stalls in direct reclaim", false, {}, {}},
      {"compaction", "stalls in direct compaction", false, {}, {}},
      {"swap_in", "swap-in faults and their latency", false, {}, {}},
      {"faults", "user page faults", false, {}, {}},
      {"major_faults", "user page faults that needed I/O", false, {}, {}},
      {"memcg_faults", "page faults and major faults from the memory cgroups' counters", false, {}, {}},
      {"vm_growth", "bytes mapped and unmapped, heap growth", false, {}, {}},
  };
  auto three = [](const std::string& base) {
    return std::vector<std::string>{base + "_btf", base + "_raw", base + "_tp"};
  };
  spec.hooks = {
      {"mark_victim", "oom_kills", three("mark_victim")},
      {"memcg_reclaim_begin", "memcg_reclaim", three("memcg_reclaim_begin")},
      {"memcg_reclaim_end", "memcg_reclaim", three("memcg_reclaim_end")},
      {"direct_reclaim_begin", "direct_reclaim", three("direct_reclaim_begin")},
      {"direct_reclaim_end", "direct_reclaim", three("direct_reclaim_end")},
      {"compaction_begin", "compaction", three("compaction_begin")},
      {"compaction_end", "compaction", three("compaction_end")},
      {"swapin_begin", "swap_in", {"swapin_begin_fentry", "swapin_begin_kprobe"}},
      {"swapin_end", "swap_in", {"swapin_end_fexit", "swapin_end_kretprobe"}},
      {"page_fault_user", "faults", three("fault")},
      {"major_fault", "major_faults", {"major_fault_fexit"}},
      {"mmap_enter", "vm_growth", {"mmap_enter_tp"}},
      {"mmap_exit", "vm_growth", {"mmap_exit_tp"}},
      {"munmap_enter", "vm_growth", {"munmap_enter_tp"}},
      {"munmap_exit", "vm_growth", {"munmap_exit_tp"}},
      {"brk_enter", "vm_growth", {"brk_enter_tp"}},
      {"brk_exit", "vm_growth", {"brk_exit_tp"}},
  };
  spec.lost_reasons = {"cgroup_stats_map_full", "stalls_map_full", "oom_kills_map_full", "oom_events_ringbuf_full",
                       "pending_syscalls_no_memory"};
  const std::string source = vm["faults.source"].as<std::string>();
  if (source != "memcg" && source != "hook")
    throw UsageError("--faults.source must be memcg or hook, not \"" + source + "\"");
  bool faults = vm["collector.faults"].as<bool>();
  if (!faults || source != "hook")
    spec.disabled_features.insert(spec.disabled_features.end(), {"faults", "major_faults"});
  if (!faults || source != "memcg") spec.disabled_features.push_back("memcg_faults");
  if (!vm["collector.vm-growth"].as<bool>()) spec.disabled_features.push_back("vm_growth");

  workloads_ = std::make_shared<Workloads>(vm);
  if (faults && source == "memcg") {
    const auto& resolver = *workloads_->resolver();
    memcg_ = std::make_shared<CgroupControllerFiles>("memory", resolver.host_root(), resolver.cgroup_root());
    if (!memcg_->available()) spec.host_lacks["memcg_faults"] = "no memory cgroup controller";
  }
  workloads_->ConfigureBpf(spec);
  spec.SetConst<uint64_t>("page_size", static_cast<uint64_t>(sysconf(_SC_PAGESIZE)));
  // The epoch and a line per CPU that may run the fault hook: small enough to be kmalloc'ed (mem_sli.bpf.c).
  int cpus = libbpf_num_possible_cpus();
  spec.max_entries["cpus"] = 1 + (cpus > 0 ? static_cast<uint32_t>(cpus) : 1);
  // Since 6.8 mark_victim passes (task, uid); before, the victim's pid alone.
  spec.SetConst<bool>("victim_arg_is_task",
                      TracepointArgCount("mark_victim", vm["btf-path"].as<std::string>()) == 2);
  return spec;
}

std::vector<std::pair<std::string, std::shared_ptr<prometheus::Collectable>>> MemExporter::MakeCollectors(
    const BpfObject& bpf, const po::variables_map& /*vm*/) {
  std::vector<std::pair<std::string, std::shared_ptr<prometheus::Collectable>>> collectors;
  auto memcg = bpf.FeatureAvailable("memcg_faults") ? memcg_ : nullptr;
  collectors.emplace_back("workload", std::make_shared<WorkloadCollector>(bpf, workloads_, memcg));
  // Node-wide memory cgroup counts are the kernel's /proc/vmstat: every task, so not with a filter.
  bool node_vmstat = memcg && workloads_->filter().empty();
  collectors.emplace_back("node", std::make_shared<NodeCollector>(
                                      bpf, node_vmstat ? workloads_->resolver()->host_root() : std::string()));
  collectors.emplace_back("workloads", workloads_);
  return collectors;
}

void MemExporter::Started(const BpfObject& bpf) {
  workloads_->Start(bpf);
  if (bpf.FeatureAvailable("oom_kills")) {
    oom_log_ = std::make_unique<OomLog>(workloads_->resolver());
    oom_log_->Start(bpf);
  }
}

void MemExporter::Stopping() {
  oom_log_.reset();
  workloads_->Stop();
}

}  // namespace scry::mem
