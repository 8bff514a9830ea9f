#include "net_collector.h"

#include <linux/types.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "net.h"
#include "scry/bpf_maps.h"
#include "scry/histogram.h"
#include "scry/metrics.h"

namespace scry::net {

using prometheus::MetricType;

namespace {

const char* kFailReasons[NET_FAIL_NR] = {"refused", "timed_out", "reset", "other"};

uint64_t MonotonicNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);  // bpf_ktime_get_ns()'s clock
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + ts.tv_nsec;
}

void Add(net_conn_stats& a, const net_conn_stats& b) {
  a.opened += b.opened;
  a.closed += b.closed;
  for (int i = 0; i < NET_FAIL_NR; i++) a.failed[i] += b.failed[i];
  a.retrans_segs += b.retrans_segs;
  a.resets_sent += b.resets_sent;
  a.resets_received += b.resets_received;
  a.bytes_sent += b.bytes_sent;
  a.bytes_received += b.bytes_received;
  a.segs_sent += b.segs_sent;
  a.segs_received += b.segs_received;
  Merge(a.connect, b.connect);
  Merge(a.handshake, b.handshake);
  Merge(a.rtt, b.rtt);
}

std::string GroupKey(const Labels& labels) {
  std::string key;
  for (const auto& l : labels) key += l.value + '\x1f';
  return key;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

ConnCollector::ConnCollector(const BpfObject& bpf, WorkloadSeries series, size_t max_peers,
                             std::chrono::nanoseconds expiry)
    : bpf_(bpf),
      retransmits_(bpf.FeatureAvailable("retransmits")),
      resets_(bpf.FeatureAvailable("resets")),
      rtt_(bpf.FeatureAvailable("rtt")),
      expiry_(expiry),
      series_(std::move(series)),
      peers_(max_peers, "other") {}

std::vector<prometheus::MetricFamily> ConnCollector::Collect() const {
  std::lock_guard lock(mutex_);
  int fd = bpf_.MapFd("conns");
  uint64_t now = MonotonicNs();

  std::map<Labels, net_conn_stats> series;
  std::vector<net_conn_key> expired;
  series_.Begin();
  peers_.Begin();
  ForEachEntry<net_conn_key, net_conn_stats>(fd, [&](const net_conn_key& k, const net_conn_stats& s) {
    auto verdict = series_.Label(k.cgroup_id);
    if (verdict.action == WorkloadSeries::Action::kDelete) expired.push_back(k);
    if (verdict.action != WorkloadSeries::Action::kExport) return;
    if (s.opened == s.closed && s.last_ns + static_cast<uint64_t>(expiry_.count()) < now) {
      expired.push_back(k);  // no open connection, quiet for the expiry time
      return;
    }
    bool client = k.direction == NET_DIR_CLIENT;
    std::string peer = client ? FormatAddress(k.family, k.addr) : "";
    std::string port = std::to_string(k.port);
    std::string direction = client ? "client" : "server";
    const std::string& slot = peers_.Map(GroupKey(verdict.labels), direction + " " + peer + " " + port);
    if (slot == "other") {
      peer = "other";
      port = "";
    }
    Labels labels = std::move(verdict.labels);
    labels.push_back({"direction", direction});
    labels.push_back({"peer", peer});
    labels.push_back({"port", port});
    Add(series.try_emplace(std::move(labels), net_conn_stats{}).first->second, s);
  });
  series_.End();
  peers_.End();
  for (const auto& k : expired) {
    // a connection may have started since the walk: delete only what is still quiet
    net_conn_stats s{};
    if (bpf_map_lookup_elem(fd, &k, &s) == 0 && s.opened != s.closed) continue;
    bpf_map_delete_elem(fd, &k);
  }

  auto opened = MakeFamily("scry_net_connections_opened_total",
                           "TCP connections established, by workload, direction and peer.", MetricType::Counter);
  auto failed = MakeFamily("scry_net_connections_failed_total",
                           "TCP connections that closed before they were established, by reason.",
                           MetricType::Counter);
  auto closed = MakeFamily("scry_net_connections_closed_total", "Established TCP connections that closed.",
                           MetricType::Counter);
  auto active = MakeFamily("scry_net_connections_active",
                           "TCP connections established and not yet closed (includes half-closed ones).",
                           MetricType::Gauge);
  auto connect = MakeFamily("scry_net_connect_duration_seconds",
                            "Client side: time from the SYN sent to the connection established.",
                            MetricType::Histogram);
  auto handshake = MakeFamily("scry_net_handshake_duration_seconds",
                              "Server side: round trip from the SYN-ACK sent to the handshake's final ACK.",
                              MetricType::Histogram);
  auto bytes_sent = MakeFamily("scry_net_sent_bytes_total",
                               "Bytes sent and acknowledged on TCP connections (sequence space: the SYN and FIN count one each), added when they close.",
                               MetricType::Counter);
  auto bytes_received = MakeFamily("scry_net_received_bytes_total",
                                   "Bytes received on TCP connections (sequence space: a FIN counts one), added when they close.", MetricType::Counter);
  auto segs_sent = MakeFamily("scry_net_sent_segments_total",
                              "Segments sent on TCP connections, counted when they close.", MetricType::Counter);
  auto segs_received = MakeFamily("scry_net_received_segments_total",
                                  "Segments received on TCP connections, counted when they close.",
                                  MetricType::Counter);
  auto retrans = MakeFamily("scry_net_retransmitted_segments_total", "TCP segments retransmitted.",
                            MetricType::Counter);
  auto resets_sent = MakeFamily("scry_net_resets_sent_total", "TCP resets sent on connections.", MetricType::Counter);
  auto resets_received = MakeFamily("scry_net_resets_received_total", "TCP resets received on connections.",
                                    MetricType::Counter);
  auto rtt = MakeFamily("scry_net_rtt_seconds",
                        "Smoothed RTT of TCP connections: one sample when established, then one in --collector.rtt.sample-every received segments.", MetricType::Histogram);

  for (const auto& [labels, s] : series) {
    bool client = labels[labels.size() - 3].value == "client";
    AddCounter(opened, labels, static_cast<double>(s.opened));
    for (int i = 0; i < NET_FAIL_NR; i++) {
      Labels l = labels;
      l.push_back({"reason", kFailReasons[i]});
      AddCounter(failed, std::move(l), static_cast<double>(s.failed[i]));
    }
    AddCounter(closed, labels, static_cast<double>(s.closed));
    AddGauge(active, labels, static_cast<double>(s.opened - s.closed));
    if (client)
      AddHistogram(connect, labels, ToPrometheus(s.connect, kLatencySeconds));
    else
      AddHistogram(handshake, labels, ToPrometheus(s.handshake, kLatencySeconds));
    AddCounter(bytes_sent, labels, static_cast<double>(s.bytes_sent));
    AddCounter(bytes_received, labels, static_cast<double>(s.bytes_received));
    AddCounter(segs_sent, labels, static_cast<double>(s.segs_sent));
    AddCounter(segs_received, labels, static_cast<double>(s.segs_received));
    if (retransmits_) AddCounter(retrans, labels, static_cast<double>(s.retrans_segs));
    if (resets_) {
      AddCounter(resets_sent, labels, static_cast<double>(s.resets_sent));
      AddCounter(resets_received, labels, static_cast<double>(s.resets_received));
    }
    if (rtt_) AddHistogram(rtt, labels, ToPrometheus(s.rtt, kLatencySeconds));
  }
  std::vector<prometheus::MetricFamily> out;
  for (auto* f : {&opened, &failed, &closed, &active, &connect, &handshake, &bytes_sent, &bytes_received, &segs_sent,
                  &segs_received})
    out.push_back(std::move(*f));
  if (retransmits_) out.push_back(std::move(retrans));
  if (resets_) {
    out.push_back(std::move(resets_sent));
    out.push_back(std::move(resets_received));
  }
  if (rtt_) out.push_back(std::move(rtt));
  return out;
}

DropCollector::DropCollector(const BpfObject& bpf, WorkloadSeries series, const std::string& btf_path)
    : bpf_(bpf), reasons_(KernelEnumNames("skb_drop_reason", btf_path)), series_(std::move(series)) {}

std::string DropCollector::ReasonName(uint32_t reason) const {
  auto it = reasons_.find(reason);
  if (it == reasons_.end()) return "reason_" + std::to_string(reason);
  return EnumLabel(it->second, "SKB_DROP_REASON_");
}

namespace {
std::string ProtocolName(uint16_t protocol) {
  switch (protocol) {
    case 0: return "";
    case 1: return "icmp";
    case 6: return "tcp";
    case 17: return "udp";
    case 58: return "icmpv6";
    case 255: return "raw";
    default: return std::to_string(protocol);
  }
}
}  // namespace

std::vector<prometheus::MetricFamily> DropCollector::Collect() const {
  std::lock_guard lock(mutex_);
  int fd = bpf_.MapFd("drops");
  std::map<std::pair<uint32_t, uint16_t>, uint64_t> node = retired_;
  std::map<Labels, uint64_t> workload;
  std::vector<net_drop_key> expired;
  series_.Begin();
  ForEachPerCpuEntry<net_drop_key, __u64>(fd, [&](const net_drop_key& k, const std::vector<__u64>& per_cpu) {
    uint64_t n = 0;
    for (auto v : per_cpu) n += v;
    node[{k.reason, k.protocol}] += n;
    if (k.cgroup_id == 0) return;
    auto verdict = series_.Label(k.cgroup_id);
    if (verdict.action == WorkloadSeries::Action::kDelete) {
      expired.push_back(k);
      retired_[{k.reason, k.protocol}] += n;
    }
    if (verdict.action != WorkloadSeries::Action::kExport) return;
    Labels labels = std::move(verdict.labels);
    labels.push_back({"reason", ReasonName(k.reason)});
    labels.push_back({"protocol", ProtocolName(k.protocol)});
    workload[std::move(labels)] += n;
  });
  series_.End();
  for (const auto& k : expired) bpf_map_delete_elem(fd, &k);

  auto total = MakeFamily("scry_net_drops_total",
                          "Packets the kernel dropped, by drop reason and the protocol of the socket (\"\" without one).",
                          MetricType::Counter);
  auto per_workload = MakeFamily("scry_net_workload_drops_total",
                                 "Packets dropped that belonged to a socket of the workload, by drop reason.",
                                 MetricType::Counter);
  std::map<std::pair<std::string, std::string>, uint64_t> named;
  for (const auto& [k, n] : node) named[{ReasonName(k.first), ProtocolName(k.second)}] += n;
  for (const auto& [k, n] : named)
    AddCounter(total, {{"reason", k.first}, {"protocol", k.second}}, static_cast<double>(n));
  for (const auto& [labels, n] : workload) AddCounter(per_workload, labels, static_cast<double>(n));
  std::vector<prometheus::MetricFamily> out;
  out.push_back(std::move(total));
  out.push_back(std::move(per_workload));
  return out;
}

uint64_t ParseNetnsLink(const std::string& target) {
  if (target.rfind("net:[", 0) != 0 || target.back() != ']') return 0;
  std::string digits = target.substr(5, target.size() - 6);
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) return 0;
  return std::stoull(digits);
}

NetstatCollector::NetstatCollector(const BpfObject& bpf, std::string host_root) : bpf_(bpf) {
  while (!host_root.empty() && host_root.back() == '/') host_root.pop_back();
  proc_ = host_root + "/proc";
}

std::vector<prometheus::MetricFamily> NetstatCollector::Collect() const {
  std::lock_guard lock(mutex_);
  auto now = std::chrono::steady_clock::now();
  if (now - last_scan_ >= std::chrono::seconds(5)) {
    // one process per network namespace; namespaces without processes are not seen
    last_scan_ = now;
    netns_pid_.clear();
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(proc_, ec)) {
      const std::string name = entry.path().filename();
      if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
      char buf[64];
      ssize_t n = readlink((entry.path() / "ns/net").c_str(), buf, sizeof(buf) - 1);
      if (n <= 0) continue;
      uint64_t inode = ParseNetnsLink(std::string(buf, n));
      if (inode) netns_pid_.try_emplace(inode, std::stoi(name));
    }
  }
  ForEachEntry<net_listener_key, net_listener>(bpf_.MapFd("listeners"), [&](const net_listener_key& k,
                                                                            const net_listener& l) {
    if (l.tgid && !netns_pid_.count(k.netns) && std::filesystem::exists(proc_ + "/" + std::to_string(l.tgid)))
      netns_pid_[k.netns] = static_cast<int>(l.tgid);
  });
  auto overflows = MakeFamily("scry_net_listen_overflows_total",
                              "Connections dropped because a listener's accept queue was full (TcpExt "
                              "ListenOverflows of the network namespace, read from procfs).",
                              MetricType::Counter);
  auto drops = MakeFamily("scry_net_listen_drops_total",
                          "SYNs and handshake completions dropped by listeners for any reason (TcpExt ListenDrops "
                          "of the network namespace, read from procfs).",
                          MetricType::Counter);
  for (const auto& [inode, pid] : netns_pid_) {
    auto stats = ParseProcNetStats(ReadFile(proc_ + "/" + std::to_string(pid) + "/net/netstat"));
    auto tcp = stats.find("TcpExt");
    if (tcp == stats.end()) continue;  // the process went: the next scan finds another
    Labels labels{{"netns", std::to_string(inode)}, {"source", "procfs"}};
    if (auto it = tcp->second.find("ListenOverflows"); it != tcp->second.end())
      AddCounter(overflows, labels, static_cast<double>(it->second));
    if (auto it = tcp->second.find("ListenDrops"); it != tcp->second.end())
      AddCounter(drops, labels, static_cast<double>(it->second));
  }
  std::vector<prometheus::MetricFamily> out;
  out.push_back(std::move(overflows));
  out.push_back(std::move(drops));
  return out;
}

}  // namespace scry::net
