// scry-net: TCP connections, retransmits, resets and RTT per workload and peer; drops by reason;
// listen queue overflows per network namespace.
#pragma once

#include "scry/exporter.h"
#include "scry/workloads.h"

namespace scry::net {

extern const ExporterInfo kInfo;

class NetExporter : public Exporter {
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

}  // namespace scry::net
