#include "sched_exporter.h"

#include <bpf/btf.h>

#include "sched_collector.h"
#include "sched_sli.skel.h"
#include "scry/cgroup_slots.h"
#include "scry/errors.h"

namespace po = boost::program_options;

namespace scry::sched {

namespace {
constexpr uint32_t kMaxSlots = 65536;  // 77 MiB per CPU: more than any host would give
}  // namespace

const ExporterInfo kInfo{"sched-sli",
                         "CPU scheduling SLIs per container and node: run-queue latency, off-CPU time by reason, "
                         "hung tasks, from eBPF.",
                         9653};

void SchedExporter::AddOptions(po::options_description& desc) {
  desc.add_options()
    ("collector.workload", po::value<bool>()->default_value(true)->implicit_value(true),
     "Per-workload series (per container, or per cgroup of a host service); node-wide series are always on.")
    ("collector.long-run.threshold", po::value<std::string>()->default_value("100ms"),
     "Count stretches on CPU at least this long without leaving it (0: off).")
    ("collector.hung-task", po::value<bool>()->default_value(true)->implicit_value(true),
     "Watch for tasks in uninterruptible sleep (hung tasks).")
    ("collector.hung-task.threshold", po::value<std::string>()->default_value("10s"),
     "How long a task must be in uninterruptible sleep to count as hung.")
    ("collector.sched-info", po::value<bool>()->default_value(true)->implicit_value(true),
     "Read run-queue waits from the kernel's own accounting (CONFIG_SCHED_INFO, as in /proc/<pid>/schedstat) "
     "where the kernel has it: no wakeup hooks, cheaper. false: time them with wakeup hooks.")
    ("bpf.cgroup-slots", po::value<uint32_t>()->default_value(SCHED_SLOTS),
     ("Cgroups the BPF statistics hold at once (live ones, and dead ones until their retention ends). Each "
      "takes " + std::to_string(sizeof(sched_cgroup_stats)) + " bytes per CPU, allocated at start; a cgroup "
      "beyond them is counted in scry_lost_events_total{reason=\"cgroup_map_full\"} and not measured.").c_str());
  Workloads::AddOptions(desc);
}

BpfSpec SchedExporter::MakeBpfSpec(const po::variables_map& vm) {
  auto long_run = ParseDuration("collector.long-run.threshold", vm["collector.long-run.threshold"].as<std::string>());
  auto hung = ParseDuration("collector.hung-task.threshold", vm["collector.hung-task.threshold"].as<std::string>());
  if (hung.count() == 0) throw UsageError("--collector.hung-task.threshold must be more than 0");
  uint32_t slots = vm["bpf.cgroup-slots"].as<uint32_t>();
  if (slots == 0 || slots > kMaxSlots)
    throw UsageError("--bpf.cgroup-slots must be between 1 and " + std::to_string(kMaxSlots));
  workloads_ = std::make_shared<Workloads>(vm);

  BpfSpec spec;
  spec.object_name = "sched-sli";
  spec.elf = sched_sli_bpf__elf_bytes(&spec.elf_size);
  // The kernel's run-queue accounting, and the path to the run queue's clock it is kept in.
  const std::string& btf = vm["btf-path"].as<std::string>();
  bool sched_info = vm["collector.sched-info"].as<bool>() &&
                    BtfHas(BTF_KIND_STRUCT, "sched_info", "last_queued", btf) &&
                    BtfHas(BTF_KIND_STRUCT, "task_struct", "sched_info", btf) &&
                    BtfHas(BTF_KIND_STRUCT, "sched_entity", "cfs_rq", btf) && BtfHas(BTF_KIND_STRUCT, "cfs_rq", "rq", btf);
  // Task local storage needs BTF-typed task pointers: tp_btf only.
  std::vector<std::string> needs;
  if (!sched_info) needs.push_back("wakeups");
  spec.features = {
      {"wakeups", "run-queue waits timed from wakeups (kernels without sched_info)", false, {}, {}},
      {"scheduling", "run-queue latency, off-CPU time, involuntary switches", true, needs, {}},
      {"long_runs", "long stretches on CPU", false, {"scheduling"}, {}},
      {"hung_tasks", "tasks in uninterruptible sleep", false, {"scheduling"}, {}},
  };
  spec.hooks = {
      {"sched_switch", "scheduling", {"switch_btf"}},
      {"sched_wakeup", "wakeups", {"wakeup_btf"}},
      {"sched_wakeup_new", "wakeups", {"wakeup_new_btf"}},
      {"blocked_tasks", "hung_tasks", {"blocked_tasks"}},
  };
  if (sched_info) spec.disabled_features.push_back("wakeups");
  spec.SetConst<bool>("use_sched_info", sched_info);
  spec.lost_reasons = {"cgroup_map_full", "task_storage", "not_delivered"};
  SizeSlots(spec, "cgroup_stats", slots);
  if (long_run.count() == 0) spec.disabled_features.push_back("long_runs");
  if (!vm["collector.hung-task"].as<bool>()) spec.disabled_features.push_back("hung_tasks");
  spec.SetConst<uint64_t>("long_run_ns", static_cast<uint64_t>(long_run.count()));
  workloads_->ConfigureBpf(spec);
  hung_threshold_ = hung;
  return spec;
}

std::vector<std::pair<std::string, std::shared_ptr<prometheus::Collectable>>> SchedExporter::MakeCollectors(
    const BpfObject& bpf, const po::variables_map& vm) {
  std::vector<std::pair<std::string, std::shared_ptr<prometheus::Collectable>>> collectors;
  collectors.emplace_back("scheduling",
                          std::make_shared<SchedCollector>(bpf, workloads_->MakeSeries(),
                                                           vm["collector.workload"].as<bool>(),
                                                           bpf.FeatureAvailable("long_runs")));
  if (bpf.FeatureAvailable("hung_tasks")) {
    hung_ = std::make_shared<HungTaskMonitor>(bpf, workloads_->MakeSeries(), workloads_->resolver(), hung_threshold_);
    collectors.emplace_back("hung_tasks", hung_);
  }
  collectors.emplace_back("workloads", workloads_);
  return collectors;
}

void SchedExporter::Started(const BpfObject& bpf) {
  workloads_->Start(bpf);
  if (hung_) hung_->Start();
}

void SchedExporter::Stopping() {
  if (hung_) hung_->Stop();
  workloads_->Stop();
}

}  // namespace scry::sched
