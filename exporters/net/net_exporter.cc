#include "net_exporter.h"

#include <bpf/btf.h>

#include <bit>

#include "net.h"
#include "net.skel.h"
#include "net_cast.skel.h"
#include "net_collector.h"
#include "scry/errors.h"
#include "scry/log.h"

namespace po = boost::program_options;

namespace scry::net {

const ExporterInfo kInfo{"net", "TCP connections, latency, retransmits, resets and drops per workload and peer, from eBPF.",
                         9651};

namespace {

// Whether tracked sockets go in the table of arrays (else all in the hash), from --bpf.socket-table.
bool UseSocketTable(const std::string& choice) {
  if (choice == "array") return true;
  if (choice == "hash") return false;
  if (choice != "auto") throw UsageError("--bpf.socket-table must be auto, array or hash, not \"" + choice + "\"");
  if (KernelHasBpfAtomics()) return true;
  log::Info("the kernel has no BPF atomics: tracked connections are kept in a hash map");
  return false;
}

}  // namespace

void NetExporter::AddOptions(po::options_description& desc) {
  desc.add_options()
    ("collector.peers.max", po::value<size_t>()->default_value(200),
     "Most peers (direction, address, port) per workload with series of their own; the rest are summed "
     "into peer=\"other\".")
    ("collector.peers.pod-names", po::value<bool>()->default_value(false)->implicit_value(true),
     "Show client-side peers that are pods of this node as peer=\"namespace/pod\" (their addresses are read "
     "from the pods' network namespaces, and with --kubelet.url from the kubelet's pod list; other peers "
     "stay addresses).")
    ("collector.peers.expiry", po::value<std::string>()->default_value("5m"),
     "A peer with no open connection and no event for this long loses its series.")
    ("collector.rtt", po::value<bool>()->default_value(true)->implicit_value(true),
     "Smoothed RTT histogram from tcp:tcp_probe (sampled received segments) and the handshakes.")
    ("collector.rtt.sample-every", po::value<uint32_t>()->default_value(16),
     "Feed one tcp_probe event in N (per CPU) into the RTT histogram; each connection's handshake round trip "
     "is always in it.")
    ("collector.rtt.duty-cycle", po::value<double>()->default_value(0.1, "0.1"),
     "Share of the time tcp_probe is attached: for that share of every 10 s, from a random offset (0.1: one "
     "second in ten; 1: always). It fires at every received segment, and the kernel's call into the program "
     "costs at each one, sampled or not; the handshakes' round trips are in the RTT histogram all the time.")
    ("collector.windows", po::value<bool>()->default_value(false)->implicit_value(true),
     "Congestion window and send/receive window histograms, sampled with the RTT (needs --collector.rtt). "
     "Adds 90 lines to each workload and peer's series.")
    ("collector.drops", po::value<bool>()->default_value(true)->implicit_value(true),
     "Packet drops by kernel drop reason (skb:kfree_skb).")
    ("collector.netstat", po::value<bool>()->default_value(true)->implicit_value(true),
     "Listen queue overflows and drops per network namespace from /proc/<pid>/net/netstat.")
    ("bpf.series", po::value<uint32_t>()->default_value(NET_SERIES),
     "Workload, direction and peer combinations the BPF programs count at once (series not yet expired, "
     "before --collector.peers.max folds peers into \"other\"); more are not counted "
     "(scry_lost_events_total{reason=\"conns_map_full\"}). Allocated at start: about 1.5 KiB each, and 48 bytes "
     "per CPU.")
    ("bpf.tracked-sockets", po::value<uint32_t>()->default_value(NET_SOCK_BUCKETS * 4),
     "Connections the BPF table tracks at once (from connect() or the handshake until the close); more are "
     "not counted (scry_lost_events_total{reason=\"socks_map_full\"}). Allocated at start: about 120 bytes "
     "each.")
    ("bpf.socket-table", po::value<std::string>()->default_value("auto"),
     "Where tracked connections are kept: array (buckets of slots claimed with a compare-and-swap; needs BPF "
     "atomics, kernel 5.12+), hash (a hash map: about 1 us more per connection, both ends), or auto (array where the "
     "kernel has BPF atomics, else hash).");
  Workloads::AddOptions(desc);
}

BpfSpec NetExporter::MakeBpfSpec(const po::variables_map& vm) {
  if (vm["collector.peers.max"].as<size_t>() == 0) throw UsageError("--collector.peers.max must be at least 1");
  if (vm["collector.rtt.sample-every"].as<uint32_t>() == 0)
    throw UsageError("--collector.rtt.sample-every must be at least 1");
  const double duty_cycle = vm["collector.rtt.duty-cycle"].as<double>();
  if (!(duty_cycle > 0 && duty_cycle <= 1))
    throw UsageError("--collector.rtt.duty-cycle must be above 0 and at most 1 (--collector.rtt=false turns the "
                     "RTT off)");
  ParseDuration("collector.peers.expiry", vm["collector.peers.expiry"].as<std::string>());
  const uint32_t series = vm["bpf.series"].as<uint32_t>();
  if (series < 16 || series > (1u << 20))
    throw UsageError("--bpf.series must be between 16 and " + std::to_string(1u << 20));
  const uint32_t tracked = vm["bpf.tracked-sockets"].as<uint32_t>();
  if (tracked < 1024 || tracked > (1u << 24))
    throw UsageError("--bpf.tracked-sockets must be between 1024 and " + std::to_string(1u << 24));

  BpfSpec spec;
  spec.object_name = "net";
  // The kernel's own BTF, not --btf-path: libbpf resolves kfuncs there.
  const bool kfunc_cast = BtfHas(BTF_KIND_FUNC, "bpf_rdonly_cast");
  spec.elf = kfunc_cast ? net_cast_bpf__elf_bytes(&spec.elf_size) : net_bpf__elf_bytes(&spec.elf_size);
  log::Debug(kfunc_cast ? "tp_btf programs read tcp_sock through bpf_rdonly_cast"
                        : "no bpf_rdonly_cast kfunc: tp_btf programs read tcp_sock through bpf_skc_to_tcp_sock");
  spec.features = {
      {"connections", "TCP connections per workload and peer: opened, failed, closed, latency, bytes", true, {}, {}},
      {"retransmits", "retransmitted TCP segments per workload and peer", false, {"connections"}, {}},
      {"resets", "TCP resets sent and received per workload and peer", false, {"connections"}, {}},
      {"rtt", "smoothed TCP RTT per workload and peer", false, {"connections"}, {}},
      {"drops", "packet drops by kernel drop reason", false, {}, {}},
      {"sockets", "listeners' accept queues and drops, and the transfer of open connections, at scrape time",
       false, {"connections"}, {}},
  };
  spec.hooks = {
      {"set_state", "connections", {"set_state_btf", "set_state_raw", "set_state_tp"}},
      {"retransmit", "retransmits", {"retransmit_btf", "retransmit_raw"}},
      {"retransmit_synack", "retransmits", {"retransmit_synack_btf", "retransmit_synack_raw"}},
      {"send_reset", "resets", {"send_reset_btf", "send_reset_raw"}},
      {"receive_reset", "resets", {"receive_reset_btf", "receive_reset_raw"}},
      {"probe", "rtt", {"probe_btf", "probe_raw"}, false, duty_cycle},
      {"kfree_skb", "drops", {"drop_btf", "drop_raw"}},
      {"socket_files", "sockets", {"socket_files"}},
  };
  spec.lost_reasons = {"socks_map_full", "conns_map_full", "listeners_map_full", "drops_map_full"};
  // Series numbers 1..series; 0 means none.
  spec.max_entries["conns"] = series + 1;
  spec.max_entries["conn_counts"] = series + 1;
  spec.max_entries["conn_ids"] = series;
  spec.max_entries["free_conns"] = series;
  spec.used_entries["conns"] = CountSeries;
  spec.prepare = [series](const BpfObject& bpf) { FreeAllSeries(bpf, series); };
  if (UseSocketTable(vm["bpf.socket-table"].as<std::string>())) {
    // Buckets of 7 slots, at least 1.75 slots per connection. With all the connections open, about 2% of
    // them find their bucket full (random placement); the spill hash takes an eighth.
    const uint32_t buckets = std::bit_ceil((tracked + 3) / 4);
    spec.max_entries["sock_tags"] = buckets;
    spec.max_entries["socks"] = buckets * NET_SOCK_WAYS;
    spec.max_entries["socks_spill"] = tracked / 8;
    spec.SetConst<uint32_t>("sock_bucket_mask", buckets - 1);
    spec.used_entries["socks"] = CountTrackedSockets;
  } else {
    spec.max_entries["sock_tags"] = 1;
    spec.max_entries["socks"] = NET_SOCK_WAYS;
    spec.max_entries["socks_spill"] = tracked;
    spec.SetConst<uint32_t>("sock_bucket_mask", 0);
    spec.SetConst<bool>("sock_table", false);
  }
  if (!vm["collector.rtt"].as<bool>()) spec.disabled_features.push_back("rtt");
  if (!vm["collector.drops"].as<bool>()) spec.disabled_features.push_back("drops");

  workloads_ = std::make_shared<Workloads>(vm);
  workloads_->ConfigureBpf(spec);
  const std::string btf = vm["btf-path"].as<std::string>();
  spec.SetConst<uint32_t>("rtt_sample_every", vm["collector.rtt.sample-every"].as<uint32_t>());
  spec.SetConst<bool>("rtt_enabled", vm["collector.rtt"].as<bool>());
  spec.SetConst<bool>("windows_enabled", vm["collector.windows"].as<bool>());
  // 6.12 added err to tcp_retransmit_skb and the receiving socket to kfree_skb.
  spec.SetConst<bool>("kfree_skb_has_rx_sk", TracepointArgCount("kfree_skb", btf) == 4);
  return spec;
}

std::vector<std::pair<std::string, std::shared_ptr<prometheus::Collectable>>> NetExporter::MakeCollectors(
    const BpfObject& bpf, const po::variables_map& vm) {
  std::vector<std::pair<std::string, std::shared_ptr<prometheus::Collectable>>> collectors;
  auto expiry = ParseDuration("collector.peers.expiry", vm["collector.peers.expiry"].as<std::string>());
  collectors.emplace_back("connections",
                          std::make_shared<ConnCollector>(bpf, workloads_->MakeSeries(),
                                                          vm["collector.peers.max"].as<size_t>(), expiry,
                                                          vm["collector.windows"].as<bool>(),
                                                          vm["collector.peers.pod-names"].as<bool>()
                                                              ? std::make_shared<PodAddresses>(workloads_->resolver())
                                                              : nullptr));
  if (bpf.FeatureAvailable("drops"))
    collectors.emplace_back("drops", std::make_shared<DropCollector>(bpf, workloads_->MakeSeries(),
                                                                     vm["btf-path"].as<std::string>()));
  if (vm["collector.netstat"].as<bool>())
    collectors.emplace_back("netstat", std::make_shared<NetstatCollector>(bpf, workloads_->resolver()->host_root()));
  collectors.emplace_back("workloads", workloads_);
  return collectors;
}

void NetExporter::Started(const BpfObject& bpf) { workloads_->Start(bpf); }
void NetExporter::Stopping() { workloads_->Stop(); }

}  // namespace scry::net
