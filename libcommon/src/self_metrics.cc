#include "scry/self_metrics.h"

#include <bpf/bpf.h>

#include <chrono>
#include <vector>

#include "scry/bpf_maps.h"
#include "scry/metrics.h"
#include "scry/version.h"

namespace scry {

using prometheus::MetricType;

std::vector<prometheus::MetricFamily> TimedCollectable::Collect() const {
  auto start = std::chrono::steady_clock::now();
  auto families = inner_->Collect();
  last_duration_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return families;
}

SelfMetrics::SelfMetrics(std::string exporter, const BpfObject& bpf, bool bpf_stats,
                         std::vector<std::shared_ptr<TimedCollectable>> timed)
    : exporter_(std::move(exporter)), bpf_(bpf), bpf_stats_(bpf_stats), timed_(std::move(timed)) {}

uint64_t CountMapEntries(int map_fd, uint32_t key_size, uint32_t max_entries) {
  std::vector<uint8_t> key(key_size), next(key_size);
  uint64_t n = 0;
  void* prev = nullptr;
  while (n <= max_entries && bpf_map_get_next_key(map_fd, prev, next.data()) == 0) {
    n++;
    key.swap(next);
    prev = key.data();
  }
  return n;
}

std::vector<prometheus::MetricFamily> SelfMetrics::Collect() const {
  std::vector<prometheus::MetricFamily> out;

  auto build = MakeFamily("scry_build_info", "scry build and libbpf versions; always 1.", MetricType::Gauge);
  AddGauge(build,
           {{"exporter", exporter_}, {"version", kVersion}, {"revision", kRevision},
            {"libbpf_version", LibbpfVersion()}},
           1);
  out.push_back(std::move(build));

  auto features = MakeFamily("scry_feature_available",
                             "1 if the kernel gives the hooks this feature needs, 0 if it is unavailable here.",
                             MetricType::Gauge);
  for (const auto& f : bpf_.features())
    if (f.enabled) AddGauge(features, {{"feature", f.spec.name}}, f.available ? 1 : 0);
  out.push_back(std::move(features));

  auto attached = MakeFamily("scry_bpf_program_attached",
                             "1 if the hook has a BPF program attached; mode is how it is attached.",
                             MetricType::Gauge);
  auto attached_seconds = MakeFamily("scry_bpf_program_attached_seconds_total",
                                     "Time the hook's BPF program has been attached: all the time since start, "
                                     "or a share of it for a hook attached in cycles (a duty cycle below 1).",
                                     MetricType::Counter);
  auto runs = MakeFamily("scry_bpf_program_runs_total", "Times the BPF program ran (kernel BPF stats).",
                         MetricType::Counter);
  auto run_time = MakeFamily("scry_bpf_program_run_seconds_total",
                             "Time spent in the BPF program (kernel BPF stats).", MetricType::Counter);
  auto missed = MakeFamily("scry_bpf_program_missed_total",
                           "Events whose BPF program the kernel skipped because a program was already running "
                           "on that CPU (the event is lost), as the kernel counts them.",
                           MetricType::Counter);
  for (const auto& h : bpf_.hooks()) {
    bool feature_enabled = false;
    for (const auto& f : bpf_.features())
      if (f.spec.name == h.feature) feature_enabled = f.enabled;
    if (!feature_enabled) continue;
    AddGauge(attached,
             {{"feature", h.feature}, {"hook", h.hook}, {"program", h.program}, {"mode", AttachModeName(h.mode)}},
             h.mode == AttachMode::None ? 0 : 1);
    if (h.mode == AttachMode::None || h.program.empty() || !bpf_.object()) continue;
    Labels labels = {{"hook", h.hook}, {"program", h.program}};
    AddCounter(attached_seconds, labels, bpf_.AttachedSeconds(h.hook));
    bpf_program* prog = bpf_object__find_program_by_name(bpf_.object(), h.program.c_str());
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    if (!prog || bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len) != 0) continue;
    AddCounter(missed, labels, static_cast<double>(info.recursion_misses));
    if (!bpf_stats_) continue;
    AddCounter(runs, labels, static_cast<double>(info.run_cnt));
    AddCounter(run_time, std::move(labels), static_cast<double>(info.run_time_ns) / 1e9);
  }
  out.push_back(std::move(attached));
  out.push_back(std::move(attached_seconds));
  out.push_back(std::move(missed));
  if (bpf_stats_) {
    out.push_back(std::move(runs));
    out.push_back(std::move(run_time));
  }

  if (bpf_.object()) {
    // Hash maps, and the tables the exporter counts: they are the ones that fill up (arrays are always
    // full).
    auto entries = MakeFamily("scry_bpf_map_entries", "Entries in the BPF hash map (or table) in use.",
                              MetricType::Gauge);
    auto capacity = MakeFamily("scry_bpf_map_capacity", "Maximum entries of the BPF hash map (or table).",
                               MetricType::Gauge);
    const auto& used_entries = bpf_.spec().used_entries;
    bpf_map* map;
    bpf_object__for_each_map(map, bpf_.object()) {
      auto type = bpf_map__type(map);
      auto counted = used_entries.find(bpf_map__name(map));
      bool hash = type == BPF_MAP_TYPE_HASH || type == BPF_MAP_TYPE_LRU_HASH || type == BPF_MAP_TYPE_PERCPU_HASH ||
                  type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
      if (bpf_map__is_internal(map) || (!hash && counted == used_entries.end())) continue;
      uint32_t max = bpf_map__max_entries(map);
      uint64_t used = counted != used_entries.end()
                          ? counted->second(bpf_)
                          : CountMapEntries(bpf_map__fd(map), bpf_map__key_size(map), max);
      AddGauge(entries, {{"map", bpf_map__name(map)}}, static_cast<double>(used));
      AddGauge(capacity, {{"map", bpf_map__name(map)}}, max);
    }
    out.push_back(std::move(entries));
    out.push_back(std::move(capacity));

    const auto& reasons = bpf_.spec().lost_reasons;
    if (!reasons.empty()) {
      auto lost = MakeFamily("scry_lost_events_total",
                             "Events the BPF programs dropped, by reason (full maps, ring buffer overruns).",
                             MetricType::Counter);
      int fd = bpf_.MapFd("lost_events");
      for (uint32_t i = 0; i < reasons.size(); i++)
        AddCounter(lost, {{"reason", reasons[i]}}, static_cast<double>(SumPerCpu(fd, i)));
      out.push_back(std::move(lost));
    }
  }

  auto durations = MakeFamily("scry_scrape_collector_duration_seconds",
                              "How long each collector took in this scrape.", MetricType::Gauge);
  for (const auto& t : timed_) AddGauge(durations, {{"collector", t->name()}}, t->last_duration_seconds());
  out.push_back(std::move(durations));
  return out;
}

}  // namespace scry
