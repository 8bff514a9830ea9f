// scry-mem-sli: memory SLIs per workload: reclaim, compaction and swap-in stalls, page faults, OOM
// kills (counted and logged) and process VM growth.
#pragma once

#include <memory>

#include "oom_log.h"
#include "scry/cgroup.h"
#include "scry/exporter.h"
#include "scry/workloads.h"

namespace scry::mem {

extern const ExporterInfo kInfo;

class MemExporter : public Exporter {
 public:
  void AddOptions(boost::program_options::options_description& desc) override;
  BpfSpec MakeBpfSpec(const boost::program_options::variables_map& vm) override;
  std::vector<std::pair<std::string, std::shared_ptr<prometheus::Collectable>>> MakeCollectors(
      const BpfObject& bpf, const boost::program_options::variables_map& vm) override;
  void Started(const BpfObject& bpf) override;
  void Stopping() override;

 private:
  std::shared_ptr<Workloads> workloads_;
  std::shared_ptr<const CgroupControllerFiles> memcg_;  // set when faults come from the memory cgroups
  std::unique_ptr<OomLog> oom_log_;
};

}  // namespace scry::mem
