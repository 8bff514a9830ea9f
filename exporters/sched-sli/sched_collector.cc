#include "sched_collector.h"

#include <bpf/bpf.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>

#include "scry/bpf_maps.h"
#include "scry/cgroup_slots.h"
#include "scry/histogram.h"
#include "scry/log.h"
#include "scry/metrics.h"

namespace scry::sched {

using prometheus::MetricType;

namespace {

constexpr auto kScanInterval = std::chrono::seconds(1);

// The reasons of the scry_sched_offcpu_seconds histogram, in export order.
constexpr uint32_t kOffReasons[] = {SCHED_OFF_SLEEP, SCHED_OFF_IOWAIT, SCHED_OFF_BLOCKED, SCHED_OFF_PREEMPTED};

uint64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);  // the clock of bpf_ktime_get_ns
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

const scry_hist& OffHist(const sched_cgroup_stats& s, uint32_t reason) {
  return reason == SCHED_OFF_PREEMPTED ? s.runq_preempted : s.off[reason];
}

scry_hist RunqHist(const sched_cgroup_stats& s) {
  scry_hist h = s.runq_woken;
  scry::Merge(h, s.runq_preempted);
  return h;
}

uint64_t Count(const scry_hist& h) {
  uint64_t n = 0;
  for (uint64_t c : h.slots) n += c;
  return n;
}

Labels With(Labels labels, const char* name, const std::string& value) {
  labels.push_back({name, value});
  return labels;
}

// The families of one scope: per workload (prefix "scry_sched_") or node-wide ("scry_sched_node_").
struct Families {
  prometheus::MetricFamily runq, offcpu, involuntary, long_runs, long_run_seconds;
  explicit Families(const std::string& prefix, const std::string& scope)
      : runq(MakeFamily(prefix + "runqueue_latency_seconds",
                        "Time runnable tasks of " + scope + " waited for a CPU: from wakeup (or creation) or "
                        "preemption until they ran.",
                        MetricType::Histogram)),
        offcpu(MakeFamily(prefix + "offcpu_seconds",
                          "Time tasks of " + scope + " spent off CPU, by reason: sleep, iowait and "
                          "uninterruptible until woken; preempted until running again.",
                          MetricType::Histogram)),
        involuntary(MakeFamily(prefix + "involuntary_switches_total",
                               "Times tasks of " + scope + " were preempted (or yielded) while runnable.",
                               MetricType::Counter)),
        long_runs(MakeFamily(prefix + "long_runs_total",
                             "Stretches on CPU of tasks of " + scope + " that lasted at least "
                             "--collector.long-run.threshold without leaving the CPU.",
                             MetricType::Counter)),
        long_run_seconds(MakeFamily(prefix + "long_run_seconds_total",
                                    "Total length of the long stretches on CPU of tasks of " + scope + ".",
                                    MetricType::Counter)) {}

  void Add(const Labels& labels, const sched_cgroup_stats& s) {
    AddHistogram(runq, labels, ToPrometheus(RunqHist(s), kLatencySeconds));
    for (uint32_t r : kOffReasons)
      AddHistogram(offcpu, With(labels, "reason", OffReasonName(r)), ToPrometheus(OffHist(s, r), kLatencySeconds));
    AddCounter(involuntary, labels, static_cast<double>(Count(s.runq_preempted)));
    AddCounter(long_runs, labels, static_cast<double>(s.long_runs));
    AddCounter(long_run_seconds, labels, static_cast<double>(s.long_run_ns) / 1e9);
  }

  void MoveTo(std::vector<prometheus::MetricFamily>& out, bool with_long_runs) {
    out.push_back(std::move(runq));
    out.push_back(std::move(offcpu));
    out.push_back(std::move(involuntary));
    if (with_long_runs) {
      out.push_back(std::move(long_runs));
      out.push_back(std::move(long_run_seconds));
    }
  }
};

}  // namespace

const char* OffReasonName(uint32_t reason) {
  switch (reason) {
    case SCHED_OFF_SLEEP: return "sleep";
    case SCHED_OFF_IOWAIT: return "iowait";
    case SCHED_OFF_BLOCKED: return "uninterruptible";
    case SCHED_OFF_PREEMPTED: return "preempted";
    default: return "other";
  }
}

void Merge(sched_cgroup_stats& a, const sched_cgroup_stats& b) {
  scry::Merge(a.runq_woken, b.runq_woken);
  scry::Merge(a.runq_preempted, b.runq_preempted);
  for (int r = 0; r < SCHED_OFF_NR; r++) scry::Merge(a.off[r], b.off[r]);
  a.long_runs += b.long_runs;
  a.long_run_ns += b.long_run_ns;
}

// ---- SchedCollector ----

SchedCollector::SchedCollector(const BpfObject& bpf, WorkloadSeries series, bool per_workload, bool long_runs)
    : bpf_(bpf), per_workload_(per_workload), long_runs_(long_runs), series_(std::move(series)) {}

std::vector<prometheus::MetricFamily> SchedCollector::Collect() const {
  std::lock_guard lock(mutex_);
  int stats_fd = bpf_.MapFd("cgroup_stats");
  sched_cgroup_stats node = retired_;
  std::map<Labels, sched_cgroup_stats> workloads;
  std::vector<std::pair<uint64_t, uint32_t>> expired;
  std::vector<sched_cgroup_stats> cpus(PossibleCpus());
  series_.Begin();
  ForEachEntry<uint64_t, uint32_t>(bpf_.MapFd("cgroup_slots"), [&](uint64_t id, uint32_t slot) {
    if (bpf_map_lookup_elem(stats_fd, &slot, cpus.data()) != 0) return;
    sched_cgroup_stats s{};
    for (const auto& c : cpus) Merge(s, c);
    Merge(node, s);
    auto verdict = series_.Label(id);
    if (verdict.action == WorkloadSeries::Action::kDelete) {
      expired.emplace_back(id, slot);
      Merge(retired_, s);
    }
    if (per_workload_ && verdict.action == WorkloadSeries::Action::kExport)
      Merge(workloads.try_emplace(std::move(verdict.labels)).first->second, s);
  });
  series_.End();
  ReleaseSlots<sched_cgroup_stats>(bpf_, expired, "cgroup_stats", [&] {
    uint32_t zero = 0, epoch = 0;
    int fd = bpf_.MapFd("slot_epoch");
    bpf_map_lookup_elem(fd, &zero, &epoch);
    epoch++;
    bpf_map_update_elem(fd, &zero, &epoch, BPF_ANY);
  });

  std::vector<prometheus::MetricFamily> out;
  if (per_workload_) {
    Families per("scry_sched_", "the workload");
    for (const auto& [labels, s] : workloads) per.Add(labels, s);
    per.MoveTo(out, long_runs_);
  }
  Families total("scry_sched_node_", "the node");
  total.Add({}, node);
  total.MoveTo(out, long_runs_);
  return out;
}

// ---- HungTaskMonitor ----

HungTaskMonitor::HungTaskMonitor(const BpfObject& bpf, WorkloadSeries series,
                                 std::shared_ptr<IdentityResolver> resolver, std::chrono::nanoseconds threshold)
    : bpf_(bpf), resolver_(std::move(resolver)), threshold_(threshold), series_(std::move(series)) {}

HungTaskMonitor::~HungTaskMonitor() { Stop(); }

void HungTaskMonitor::Stop() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void HungTaskMonitor::Start() {
  Scan();
  thread_ = std::thread([this] {
    std::unique_lock lock(mutex_);
    while (!stop_cv_.wait_for(lock, kScanInterval, [this] { return stop_; })) {
      lock.unlock();
      Scan();
      lock.lock();
    }
  });
}

void HungTaskMonitor::Scan() {
  std::vector<sched_blocked_task> blocked;
  bool ok = ReadIterator(bpf_.LinkFd("blocked_tasks"), blocked);
  uint64_t now = MonotonicNs();
  std::lock_guard lock(mutex_);
  if (!ok) {
    if (scan_errors_++ == 0) log::Warn("cannot list blocked tasks", {{"error", std::strerror(errno)}});
    return;
  }
  std::map<std::pair<uint32_t, uint64_t>, uint64_t> since;
  std::map<uint64_t, uint64_t> by_cgroup;
  uint64_t hung = 0;
  for (const auto& t : blocked) {
    // An episode is one sleep: a task's id and its switch count. Its start comes from the task's record,
    // or, for a task asleep since before the exporter started, from the first check that saw it.
    auto episode = std::make_pair(t.pid, t.switches);
    uint64_t start = t.blocked_ns ? now - std::min<uint64_t>(now, t.blocked_ns) : now;
    if (!t.blocked_ns)
      if (auto it = blocked_since_.find(episode); it != blocked_since_.end()) start = it->second;
    since[episode] = start;
    if (now - start < static_cast<uint64_t>(threshold_.count())) continue;
    hung++;
    by_cgroup[t.cgroup_id]++;
    if (!reported_.insert(episode).second) continue;
    auto who = resolver_->Resolve(t.cgroup_id);
    const Identity& id = who.identity;
    std::string comm(t.comm, strnlen(t.comm, sizeof(t.comm)));
    log::Warn("task blocked in uninterruptible sleep",
              {{"pid", std::to_string(t.pid)},
               {"tgid", std::to_string(t.tgid)},
               {"comm", comm},
               {"seconds", std::to_string((now - start) / 1'000'000'000)},
               {"iowait", t.iowait ? "true" : "false"},
               {"container_id", id.container_id},
               {"pod", id.pod},
               {"namespace", id.pod_namespace},
               {"container", id.container},
               {"cgroup", who.ok() ? id.cgroup : ""}});
  }
  std::erase_if(reported_, [&](const auto& episode) { return !since.count(episode); });  // episode over
  blocked_since_ = std::move(since);
  hung_by_cgroup_ = std::move(by_cgroup);
  hung_ = hung;
}

std::vector<prometheus::MetricFamily> HungTaskMonitor::Collect() const {
  std::lock_guard lock(mutex_);
  auto per = MakeFamily("scry_sched_hung_tasks",
                        "Tasks of the workload in uninterruptible sleep for longer than "
                        "--collector.hung-task.threshold, at the last check (every second).",
                        MetricType::Gauge);
  auto node = MakeFamily("scry_sched_node_hung_tasks",
                         "Tasks of the node in uninterruptible sleep for longer than "
                         "--collector.hung-task.threshold, at the last check (every second).",
                         MetricType::Gauge);
  std::map<Labels, uint64_t> workloads;
  series_.Begin();
  for (const auto& [id, n] : hung_by_cgroup_) {
    auto verdict = series_.Label(id);
    if (verdict.action == WorkloadSeries::Action::kExport) workloads[std::move(verdict.labels)] += n;
  }
  series_.End();
  for (const auto& [labels, n] : workloads) AddGauge(per, labels, static_cast<double>(n));
  AddGauge(node, {}, static_cast<double>(hung_));
  auto errors = MakeFamily("scry_sched_hung_task_scan_errors_total",
                           "Checks for blocked tasks that failed (the gauges then keep the last good check).",
                           MetricType::Counter);
  AddCounter(errors, {}, static_cast<double>(scan_errors_));
  std::vector<prometheus::MetricFamily> out;
  out.push_back(std::move(per));
  out.push_back(std::move(node));
  out.push_back(std::move(errors));
  return out;
}

}  // namespace scry::sched
