// scry-sched-sli: CPU scheduling SLIs per workload and node-wide: run-queue latency, time off CPU by
// reason, involuntary switches, long stretches on CPU, hung tasks.
#pragma once

#include "scry/exporter.h"
#include "scry/workloads.h"

namespace scry::sched {

extern const ExporterInfo kInfo;

class HungTaskMonitor;

class SchedExporter : public Exporter {
 public:
  void AddOptions(boost::program_options::options_description& desc) override;
  BpfSpec MakeBpfSpec(const boost::program_options::variables_map& vm) override;
  std::vector<std::pair<std::string, std::shared_ptr<prometheus::Collectable>>> MakeCollectors(
      const BpfObject& bpf, const boost::program_options::variables_map& vm) override;
  void Started(const BpfObject& bpf) override;
  void Stopping() override;

 private:
  std::shared_ptr<Workloads> workloads_;
  std::shared_ptr<HungTaskMonitor> hung_;
  std::chrono::nanoseconds hung_threshold_{0};
};

}  // namespace scry::sched
