// Self-metrics every exporter serves: build info, features, programs and their attach modes, BPF
// run-time stats, map fill, lost events, and how long each collector took in this scrape.
#pragma once

#include <prometheus/collectable.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "scry/bpf_loader.h"

namespace scry {

// Wraps a collector and remembers how long its last Collect() took.
class TimedCollectable : public prometheus::Collectable {
 public:
  TimedCollectable(std::string name, std::shared_ptr<prometheus::Collectable> inner)
      : name_(std::move(name)), inner_(std::move(inner)) {}
  std::vector<prometheus::MetricFamily> Collect() const override;
  const std::string& name() const { return name_; }
  double last_duration_seconds() const { return last_duration_.load(); }

 private:
  std::string name_;
  std::shared_ptr<prometheus::Collectable> inner_;
  mutable std::atomic<double> last_duration_{0};
};

class SelfMetrics : public prometheus::Collectable {
 public:
  // Register after the timed collectors, so that their durations are this scrape's.
  SelfMetrics(std::string exporter, const BpfObject& bpf, bool bpf_stats,
              std::vector<std::shared_ptr<TimedCollectable>> timed);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::string exporter_;
  const BpfObject& bpf_;
  bool bpf_stats_;
  std::vector<std::shared_ptr<TimedCollectable>> timed_;
};

// Number of entries in a BPF hash map (walks its keys).
uint64_t CountMapEntries(int map_fd, uint32_t key_size, uint32_t max_entries);

}  // namespace scry
