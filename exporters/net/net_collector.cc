#include "net_collector.h"

#include <linux/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <set>
#include <tuple>

#include "net.h"
#include "scry/bpf_maps.h"
#include "scry/errors.h"
#include "scry/files.h"
#include "scry/histogram.h"
#include "scry/log.h"
#include "scry/metrics.h"

namespace scry::net {

using prometheus::MetricType;

namespace {

const char* kFailReasons[NET_FAIL_NR] = {"refused", "timed_out", "reset", "other"};

uint64_t MonotonicNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + ts.tv_nsec;
}

// A series' values: its counts summed over the CPUs, and the values the CPUs share.
struct SeriesValues {
  net_conn_counts counts{};
  net_conn_stats stats{};
};

void Add(net_conn_counts& a, const net_conn_counts& b) {
  a.opened += b.opened;
  a.closed += b.closed;
  a.bytes_sent += b.bytes_sent;
  a.bytes_received += b.bytes_received;
  a.segs_sent += b.segs_sent;
  a.segs_received += b.segs_received;
}

void Add(net_conn_stats& a, const net_conn_stats& b) {
  for (int i = 0; i < NET_FAIL_NR; i++) a.failed[i] += b.failed[i];
  a.retrans_segs += b.retrans_segs;
  a.syn_retrans += b.syn_retrans;
  a.resets_sent += b.resets_sent;
  a.resets_received += b.resets_received;
  Merge(a.connect, b.connect);
  Merge(a.handshake, b.handshake);
  Merge(a.rtt, b.rtt);
  Merge(a.cwnd, b.cwnd);
  Merge(a.snd_wnd, b.snd_wnd);
  Merge(a.rcv_wnd, b.rcv_wnd);
}

// The counts of series number id, summed over the CPUs (zero if they cannot be read).
net_conn_counts SumCounts(int fd, __u32 id) {
  std::vector<net_conn_counts> per_cpu(PossibleCpus());
  net_conn_counts sum{};
  if (bpf_map_lookup_elem(fd, &id, per_cpu.data()) == 0)
    for (const auto& c : per_cpu) Add(sum, c);
  return sum;
}

std::string KeyBytes(const net_conn_key& k) { return std::string(reinterpret_cast<const char*>(&k), sizeof(k)); }

std::string GroupKey(const Labels& labels) {
  std::string key;
  for (const auto& l : labels) key += l.value + '\x1f';
  return key;
}

}  // namespace

ConnCollector::ConnCollector(const BpfObject& bpf, WorkloadSeries series, size_t max_peers,
                             std::chrono::nanoseconds expiry, bool windows, std::shared_ptr<PodAddresses> pods)
    : bpf_(bpf),
      retransmits_(bpf.FeatureAvailable("retransmits")),
      resets_(bpf.FeatureAvailable("resets")),
      rtt_(bpf.FeatureAvailable("rtt")),
      windows_(rtt_ && windows),
      sockets_(bpf.FeatureAvailable("sockets")),
      expiry_(expiry),
      series_(std::move(series)),
      peers_(max_peers, "other"),
      pods_(std::move(pods)) {}

void ConnCollector::FreeRetiredSeries() const {
  if (retired_.empty()) return;
  int counts_fd = bpf_.MapFd("conn_counts"), free_fd = bpf_.MapFd("free_conns");
  std::vector<net_conn_counts> zero(PossibleCpus());
  for (__u32 id : retired_) {
    // a program that found the series just before it was retired may have added to its counts since
    bpf_map_update_elem(counts_fd, &id, zero.data(), BPF_ANY);
    bpf_map_update_elem(free_fd, nullptr, &id, BPF_ANY);  // a push
  }
  retired_.clear();
}

void ConnCollector::ScanSockets(std::map<std::string, Transfer>& open,
                                std::map<std::pair<uint64_t, uint16_t>, Listener>& listeners) const {
  std::vector<net_socket_record> records;
  if (!ReadIterator(bpf_.LinkFd("socket_files"), records)) {
    if (scan_errors_++ == 0) log::Warn("cannot list sockets", {{"error", std::strerror(errno)}});
    return;  // no open transfer this time: the reported counters hold their values
  }
  std::set<uint64_t> seen;  // a socket shared by several descriptors or processes counts once
  std::map<uint64_t, uint64_t> drops_seen;
  for (const auto& r : records) {
    if (!seen.insert(r.inode).second) continue;
    if (r.kind == NET_SOCKET_CONN) {
      Transfer& t = open[KeyBytes(r.key)];
      t.bytes_sent += r.bytes_sent;
      t.bytes_received += r.bytes_received;
      t.segs_sent += r.segs_sent;
      t.segs_received += r.segs_received;
    } else if (r.kind == NET_SOCKET_LISTENER) {
      auto key = std::make_pair(r.cgroup_id, r.port);
      Listener& l = listeners[key];
      l.queue_len += r.queue_len;
      l.queue_max += r.queue_max;
      // drops since the socket was last seen (all of them for a new one); a closed socket's stay counted
      auto last = listener_drops_seen_.find(r.inode);
      uint64_t before = last != listener_drops_seen_.end() && last->second <= r.drops ? last->second : 0;
      listener_drops_[key] += r.drops - before;
      drops_seen[r.inode] = r.drops;
    }
  }
  listener_drops_seen_ = std::move(drops_seen);
  for (auto it = listener_drops_.begin(); it != listener_drops_.end();)
    it = listeners.count(it->first) ? std::next(it) : listener_drops_.erase(it);
  for (auto& [key, l] : listeners) l.drops = listener_drops_[key];
}

std::vector<prometheus::MetricFamily> ConnCollector::Collect() const {
  std::lock_guard lock(mutex_);
  int fd = bpf_.MapFd("conns"), ids_fd = bpf_.MapFd("conn_ids"), counts_fd = bpf_.MapFd("conn_counts");
  uint64_t now = MonotonicNs();
  FreeRetiredSeries();

  // The series first, then the open sockets: a connection that closes in between is in neither for this
  // scrape (never in both), so the sums never run ahead of the truth.
  struct Entry {
    net_conn_key key;
    __u32 id;
    SeriesValues values;
  };
  std::vector<Entry> entries;
  ForEachEntry<net_conn_key, __u32>(ids_fd, [&](const net_conn_key& k, const __u32& id) {
    net_series v;
    if (bpf_map_lookup_elem(fd, &id, &v) == 0 && KeyBytes(v.key) == KeyBytes(k))
      entries.push_back({k, id, {SumCounts(counts_fd, id), v.stats}});
  });
  std::map<std::string, Transfer> open;
  std::map<std::pair<uint64_t, uint16_t>, Listener> listeners;
  if (sockets_) ScanSockets(open, listeners);

  std::map<Labels, SeriesValues> series;
  std::vector<std::pair<net_conn_key, __u32>> expired;
  std::map<std::string, std::pair<uint64_t, uint64_t>> activity;
  series_.Begin();
  peers_.Begin();
  for (auto& [k, id, v] : entries) {
    auto verdict = series_.Label(k.cgroup_id);
    if (verdict.action == WorkloadSeries::Action::kDelete) expired.emplace_back(k, id);
    if (verdict.action != WorkloadSeries::Action::kExport) continue;
    net_conn_counts& c = v.counts;
    // when the entry's counts last moved, as seen from here (no clock read in the kernel's hot path)
    uint64_t events = c.opened + c.closed + v.stats.retrans_segs + v.stats.resets_sent + v.stats.resets_received;
    for (auto f : v.stats.failed) events += f;
    auto& [count, since] = activity[KeyBytes(k)];
    auto old = activity_.find(KeyBytes(k));
    count = events;
    since = old != activity_.end() && old->second.first == events ? old->second.second : now;
    if (c.opened == c.closed && since + static_cast<uint64_t>(expiry_.count()) < now) {
      expired.emplace_back(k, id);  // no open connection, quiet for the expiry time
      continue;
    }
    bool client = k.direction == NET_DIR_CLIENT;
    std::string peer = client ? FormatAddress(k.family, k.addr) : "";
    if (client && pods_)
      if (std::string pod = pods_->Pod(peer); !pod.empty()) peer = std::move(pod);
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
    if (auto t = open.find(KeyBytes(k)); t != open.end()) {
      c.bytes_sent += t->second.bytes_sent;
      c.bytes_received += t->second.bytes_received;
      c.segs_sent += t->second.segs_sent;
      c.segs_received += t->second.segs_received;
    }
    SeriesValues& sum = series[std::move(labels)];
    Add(sum.counts, c);
    Add(sum.stats, v.stats);
  }
  std::map<Labels, Listener> listener_series;
  for (const auto& [key, l] : listeners) {
    auto verdict = series_.Label(key.first);
    if (verdict.action != WorkloadSeries::Action::kExport) continue;
    std::string port = std::to_string(key.second);
    if (peers_.Map(GroupKey(verdict.labels), "listener " + port) == "other") port = "other";
    Labels labels = std::move(verdict.labels);
    labels.push_back({"port", port});
    Listener& sum = listener_series[std::move(labels)];
    sum.drops += l.drops;
    sum.queue_len += l.queue_len;
    sum.queue_max += l.queue_max;
  }
  series_.End();
  peers_.End();
  activity_ = std::move(activity);
  // byte and segment counters never step back (see transfer_reported_)
  std::map<Labels, Transfer> reported;
  for (auto& [labels, v] : series) {
    net_conn_counts& c = v.counts;
    Transfer& last = transfer_reported_[labels];
    c.bytes_sent = std::max(c.bytes_sent, last.bytes_sent);
    c.bytes_received = std::max(c.bytes_received, last.bytes_received);
    c.segs_sent = std::max(c.segs_sent, last.segs_sent);
    c.segs_received = std::max(c.segs_received, last.segs_received);
    reported[labels] = {c.bytes_sent, c.bytes_received, c.segs_sent, c.segs_received};
  }
  transfer_reported_ = std::move(reported);
  for (const auto& [k, id] : expired) {
    // a connection may have started since the walk: retire only what is still quiet
    net_conn_counts c = SumCounts(counts_fd, id);
    if (c.opened != c.closed) continue;
    // out of conn_ids first, so that no new connection finds the number; then its key cleared, which
    // tells the sockets that still hold it that it is not theirs; freed at the next scrape
    bpf_map_delete_elem(ids_fd, &k);
    net_series v{};
    bpf_map_update_elem(fd, &id, &v, BPF_ANY);
    retired_.push_back(id);
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
  const char* when = sockets_ ? " (open connections up to the scrape)" : " (added when connections close)";
  auto bytes_sent = MakeFamily("scry_net_sent_bytes_total",
                               std::string("Data bytes sent on TCP connections and acknowledged by the peer") + when + ".",
                               MetricType::Counter);
  auto bytes_received = MakeFamily("scry_net_received_bytes_total",
                                   std::string("Data bytes received on TCP connections") + when + ".",
                                   MetricType::Counter);
  auto segs_sent = MakeFamily("scry_net_sent_segments_total", std::string("Segments sent on TCP connections") + when + ".",
                              MetricType::Counter);
  auto segs_received = MakeFamily("scry_net_received_segments_total",
                                  std::string("Segments received on TCP connections") + when + ".", MetricType::Counter);
  auto retrans = MakeFamily("scry_net_retransmitted_segments_total",
                            "TCP segments retransmitted (server side: SYN-ACKs of the listener included).",
                            MetricType::Counter);
  auto syn_retrans = MakeFamily("scry_net_syn_retransmits_total",
                                "Client side: SYNs retransmitted; server side: SYN-ACKs retransmitted.",
                                MetricType::Counter);
  auto resets_sent = MakeFamily("scry_net_resets_sent_total", "TCP resets sent on connections.", MetricType::Counter);
  auto resets_received = MakeFamily("scry_net_resets_received_total", "TCP resets received on connections.",
                                    MetricType::Counter);
  auto rtt = MakeFamily("scry_net_rtt_seconds",
                        "Smoothed RTT of TCP connections: one sample when established, then one in --collector.rtt.sample-every received segments while tcp_probe is attached (--collector.rtt.duty-cycle).", MetricType::Histogram);

  auto cwnd = MakeFamily("scry_net_cwnd_segments",
                         "Congestion window of TCP connections, sampled with the RTT.", MetricType::Histogram);
  auto snd_wnd = MakeFamily("scry_net_send_window_bytes",
                            "Receive window the peer advertised (what this side may send), sampled with the RTT; "
                            "le=\"1\" holds the zero windows.", MetricType::Histogram);
  auto rcv_wnd = MakeFamily("scry_net_receive_window_bytes",
                            "Receive window this side advertised, sampled with the RTT; le=\"1\" holds the zero windows.",
                            MetricType::Histogram);
  auto queue_len = MakeFamily("scry_net_listen_queue_length",
                              "Connections established and waiting for accept(), by workload and listening port.",
                              MetricType::Gauge);
  auto queue_max = MakeFamily("scry_net_listen_queue_capacity",
                              "Accept queue capacity: the listen() backlog as the kernel capped it.", MetricType::Gauge);
  auto listener_drops = MakeFamily("scry_net_listener_drops_total",
                                   "SYNs and handshake completions dropped by the workload's listening sockets (full "
                                   "accept or SYN queue...), from each socket's own count.", MetricType::Counter);

  for (const auto& [labels, v] : series) {
    const net_conn_counts& c = v.counts;
    const net_conn_stats& s = v.stats;
    bool client = labels[labels.size() - 3].value == "client";
    AddCounter(opened, labels, static_cast<double>(c.opened));
    for (int i = 0; i < NET_FAIL_NR; i++) {
      Labels l = labels;
      l.push_back({"reason", kFailReasons[i]});
      AddCounter(failed, std::move(l), static_cast<double>(s.failed[i]));
    }
    AddCounter(closed, labels, static_cast<double>(c.closed));
    AddGauge(active, labels, static_cast<double>(c.opened - c.closed));
    if (client)
      AddHistogram(connect, labels, ToPrometheus(s.connect, kLatencySeconds));
    else
      AddHistogram(handshake, labels, ToPrometheus(s.handshake, kLatencySeconds));
    AddCounter(bytes_sent, labels, static_cast<double>(c.bytes_sent));
    AddCounter(bytes_received, labels, static_cast<double>(c.bytes_received));
    AddCounter(segs_sent, labels, static_cast<double>(c.segs_sent));
    AddCounter(segs_received, labels, static_cast<double>(c.segs_received));
    if (retransmits_) {
      AddCounter(retrans, labels, static_cast<double>(s.retrans_segs));
      AddCounter(syn_retrans, labels, static_cast<double>(s.syn_retrans));
    }
    if (resets_) {
      AddCounter(resets_sent, labels, static_cast<double>(s.resets_sent));
      AddCounter(resets_received, labels, static_cast<double>(s.resets_received));
    }
    if (rtt_) AddHistogram(rtt, labels, ToPrometheus(s.rtt, kLatencySeconds));
    if (windows_) {
      AddHistogram(cwnd, labels, ToPrometheus(s.cwnd, kWindow));
      AddHistogram(snd_wnd, labels, ToPrometheus(s.snd_wnd, kWindow));
      AddHistogram(rcv_wnd, labels, ToPrometheus(s.rcv_wnd, kWindow));
    }
  }
  for (const auto& [labels, l] : listener_series) {
    AddGauge(queue_len, labels, static_cast<double>(l.queue_len));
    AddGauge(queue_max, labels, static_cast<double>(l.queue_max));
    AddCounter(listener_drops, labels, static_cast<double>(l.drops));
  }
  std::vector<prometheus::MetricFamily> out;
  for (auto* f : {&opened, &failed, &closed, &active, &connect, &handshake, &bytes_sent, &bytes_received, &segs_sent,
                  &segs_received})
    out.push_back(std::move(*f));
  if (retransmits_) {
    out.push_back(std::move(retrans));
    out.push_back(std::move(syn_retrans));
  }
  if (resets_) {
    out.push_back(std::move(resets_sent));
    out.push_back(std::move(resets_received));
  }
  if (rtt_) out.push_back(std::move(rtt));
  if (windows_)
    for (auto* f : {&cwnd, &snd_wnd, &rcv_wnd}) out.push_back(std::move(*f));
  if (sockets_)
    for (auto* f : {&queue_len, &queue_max, &listener_drops}) out.push_back(std::move(*f));
  if (pods_) {
    auto known = MakeFamily("scry_net_peer_pod_addresses",
                            "Addresses of this node's pods known for naming peers (--collector.peers.pod-names).",
                            MetricType::Gauge);
    AddGauge(known, {}, static_cast<double>(pods_->size()));
    out.push_back(std::move(known));
  }
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
  int fd = bpf_.MapFd("drops"), slots_fd = bpf_.MapFd("drop_slots");
  std::map<std::pair<uint32_t, uint16_t>, uint64_t> node = retired_;
  std::map<Labels, uint64_t> workload;
  std::vector<net_drop_key> expired;
  // each key's count: in the hash, and in the slots it holds on some CPUs (never cleared)
  std::map<std::tuple<uint64_t, uint32_t, uint16_t>, std::pair<uint64_t, uint64_t>> counts;  // -> (hash, slots)
  ForEachPerCpuEntry<net_drop_key, __u64>(fd, [&](const net_drop_key& k, const std::vector<__u64>& per_cpu) {
    for (auto v : per_cpu) counts[{k.cgroup_id, k.reason, k.protocol}].first += v;
  });
  std::vector<net_drop_slot> per_cpu(PossibleCpus());
  for (__u32 i = 0; i < NET_DROP_SLOTS; i++)
    if (bpf_map_lookup_elem(slots_fd, &i, per_cpu.data()) == 0)
      for (const auto& slot : per_cpu)
        if (slot.key.reason > 1) counts[{slot.key.cgroup_id, slot.key.reason, slot.key.protocol}].second += slot.count;
  series_.Begin();
  for (const auto& [k, n] : counts) {
    const auto& [cgroup_id, reason, protocol] = k;
    node[{reason, protocol}] += n.first + n.second;
    if (cgroup_id == 0) continue;
    auto verdict = series_.Label(cgroup_id);
    if (verdict.action == WorkloadSeries::Action::kDelete && n.first) {
      expired.push_back({.cgroup_id = cgroup_id, .reason = reason, .protocol = protocol, .pad = 0});
      retired_[{reason, protocol}] += n.first;  // what stays in the slots is summed above at each scrape
    }
    if (verdict.action != WorkloadSeries::Action::kExport) continue;
    Labels labels = std::move(verdict.labels);
    labels.push_back({"reason", ReasonName(reason)});
    labels.push_back({"protocol", ProtocolName(protocol)});
    workload[std::move(labels)] += n.first + n.second;
  }
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

void FreeAllSeries(const BpfObject& bpf, uint32_t count) {
  int fd = bpf.MapFd("free_conns");
  for (__u32 id = 1; id <= count; id++)
    if (bpf_map_update_elem(fd, nullptr, &id, BPF_ANY))
      throw RuntimeError("cannot fill the BPF queue of series numbers: " + std::string(std::strerror(errno)));
}

uint64_t CountSeries(const BpfObject& bpf) {
  uint64_t n = 0;
  ForEachEntry<net_conn_key, __u32>(bpf.MapFd("conn_ids"), [&](const net_conn_key&, const __u32&) { n++; });
  return n;
}

uint64_t CountTrackedSockets(const BpfObject& bpf) {
  int fd = bpf.MapFd("sock_tags");
  std::vector<uint32_t> keys(1024);
  std::vector<net_sock_tags> tags(keys.size());
  uint64_t used = 0;
  auto count_used = [&](const net_sock_tags& bucket) {
    for (__u64 sk : bucket.sk) used += sk != 0;
  };
  uint32_t position = 0;
  for (bool first = true;; first = false) {
    uint32_t count = keys.size();
    int err = bpf_map_lookup_batch(fd, first ? nullptr : &position, &position, keys.data(), tags.data(), &count,
                                   nullptr);
    if (err && errno != ENOENT) break;  // kernels before 5.6 have no batch lookup
    for (uint32_t i = 0; i < count; i++) count_used(tags[i]);
    if (err) return used;  // ENOENT: that was the last batch
  }
  used = 0;
  net_sock_tags bucket;
  uint32_t buckets = bpf_map__max_entries(bpf_object__find_map_by_name(bpf.object(), "sock_tags"));
  for (uint32_t key = 0; key < buckets; key++)
    if (bpf_map_lookup_elem(fd, &key, &bucket) == 0) count_used(bucket);
  return used;
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
    auto stats = ParseProcNetStats(ReadFileContent(proc_ + "/" + std::to_string(pid) + "/net/netstat").value_or(""));
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
