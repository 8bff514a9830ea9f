// Turns net.bpf.c's maps and the kernel's per-netns counters into scry_net_* metrics at scrape time.
#pragma once

#include <prometheus/collectable.h>

#include <linux/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "scry/bpf_loader.h"
#include "scry/pod_addresses.h"
#include "scry/procnet.h"
#include "scry/workloads.h"

namespace scry::net {

// Per workload, direction and peer: connections, latency, bytes, retransmits, resets, RTT, windows; and
// per workload and listening port: accept queues and listener drops.
// Peers past the per-workload cap are summed into peer="other"; a peer with no open connection and no
// event for the expiry time has its map entry deleted (its series goes).
// With the socket iterator, byte and segment counts include the open connections' transfer so far.
class ConnCollector : public prometheus::Collectable {
 public:
  // pods: names client-side peers that are pods of this node "namespace/pod"; null to keep addresses.
  ConnCollector(const BpfObject& bpf, WorkloadSeries series, size_t max_peers, std::chrono::nanoseconds expiry,
                bool windows, std::shared_ptr<PodAddresses> pods);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  struct Transfer {
    __u64 bytes_sent = 0, bytes_received = 0, segs_sent = 0, segs_received = 0;
  };
  struct Listener {
    uint64_t drops = 0, queue_len = 0, queue_max = 0;
  };
  // Gives the numbers of the series retired at the last scrape back to the programs, their counts cleared.
  void FreeRetiredSeries() const;
  // Open connections' transfer by series key, and listeners by (cgroup id, port), from one iterator run.
  void ScanSockets(std::map<std::string, Transfer>& open,
                   std::map<std::pair<uint64_t, uint16_t>, Listener>& listeners) const;

  const BpfObject& bpf_;
  bool retransmits_, resets_, rtt_, windows_, sockets_;
  std::chrono::nanoseconds expiry_;
  mutable std::mutex mutex_;
  mutable WorkloadSeries series_;
  mutable LabelCap peers_;
  std::shared_ptr<PodAddresses> pods_;
  // Counters built from values that can briefly step back (a connection leaves the scan before its
  // close is counted; a listener closes): what each series last reported, and each listener's drops.
  mutable std::map<Labels, Transfer> transfer_reported_;
  mutable std::map<uint64_t, uint64_t> listener_drops_seen_;  // socket inode -> sk_drops
  mutable std::map<std::pair<uint64_t, uint16_t>, uint64_t> listener_drops_;
  mutable uint64_t scan_errors_ = 0;
  // per entry of the conns map: the sum of its event counts and when that sum last changed (monotonic ns)
  mutable std::map<std::string, std::pair<uint64_t, uint64_t>> activity_;
  mutable std::vector<__u32> retired_;  // series numbers out of conn_ids, not yet free
};

// Drops by kernel drop reason: node-wide, and per workload where the socket is known.
class DropCollector : public prometheus::Collectable {
 public:
  DropCollector(const BpfObject& bpf, WorkloadSeries series, const std::string& btf_path);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::string ReasonName(uint32_t reason) const;

  const BpfObject& bpf_;
  std::map<int64_t, std::string> reasons_;
  mutable std::mutex mutex_;
  mutable WorkloadSeries series_;
  // Counts of deleted entries (workloads gone), kept in the node-wide sums so that they never drop.
  mutable std::map<std::pair<uint32_t, uint16_t>, uint64_t> retired_;
};

// Listen queue overflows and drops per network namespace from the kernel's own counters
// (/proc/<pid>/net/netstat of one process in each namespace): no BPF hook sees them without kprobes.
// Namespaces come from /proc/<pid>/ns/net where readable (other users' processes need CAP_SYS_PTRACE,
// which the exporter drops) and from the owners of the listening sockets the BPF programs saw.
class NetstatCollector : public prometheus::Collectable {
 public:
  NetstatCollector(const BpfObject& bpf, std::string host_root);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const BpfObject& bpf_;
  std::string proc_;
  mutable std::mutex mutex_;
  mutable std::map<uint64_t, int> netns_pid_;  // netns inode -> a process in it
  mutable std::chrono::steady_clock::time_point last_scan_{};
};

// Gives the programs series numbers 1..count (free_conns), before they attach.
void FreeAllSeries(const BpfObject& bpf, uint32_t count);

// Series the programs hold (entries of conn_ids).
uint64_t CountSeries(const BpfObject& bpf);

// Slots of the tracked sockets' table in use: its tags that are not 0 (sock_tags, read in one pass).
uint64_t CountTrackedSockets(const BpfObject& bpf);

// "4026531840" from a /proc/<pid>/ns/net link target "net:[4026531840]"; 0 if malformed.
uint64_t ParseNetnsLink(const std::string& target);

}  // namespace scry::net
