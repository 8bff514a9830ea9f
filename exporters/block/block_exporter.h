// scry-block: block I/O latency, sizes and errors per disk, per-cgroup latency, page cache events.
#pragma once

#include "scry/exporter.h"
#include "scry/workloads.h"

namespace scry::block {

extern const ExporterInfo kInfo;

class BlockExporter : public Exporter {
 public:
  void AddOptions(boost::program_options::options_description& desc) override;
  BpfSpec MakeBpfSpec(const boost::program_options::variables_map& vm) override;
  std::vector<std::pair<std::string, std::shared_ptr<prometheus::Collectable>>> MakeCollectors(
      const BpfObject& bpf, const boost::program_options::variables_map& vm) override;
  void Started(const BpfObject& bpf) override;
  void Stopping() override;

 private:
  std::shared_ptr<Workloads> workloads_;
};

}  // namespace scry::block
