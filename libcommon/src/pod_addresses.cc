#include "scry/pod_addresses.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <sstream>

#include "scry/files.h"
#include "scry/kubelet_api.h"
#include "scry/procnet.h"

namespace scry {

namespace {

std::string ReadFile(const std::string& path) { return ReadFileContent(path).value_or(""); }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::set<std::string> ParseFibTrieLocal(std::string_view fib_trie) {
  std::set<std::string> out;
  std::string leaf;  // the address of the last "|-- a.b.c.d" line; its attributes follow it
  while (!fib_trie.empty()) {
    size_t end = fib_trie.find('\n');
    std::string_view line = Trim(fib_trie.substr(0, end));
    fib_trie.remove_prefix(end == std::string_view::npos ? fib_trie.size() : end + 1);
    if (line.rfind("|-- ", 0) == 0) {
      leaf = std::string(line.substr(4));
    } else if (line.rfind("/32 host LOCAL", 0) == 0 && !leaf.empty()) {
      in_addr a{};
      if (inet_pton(AF_INET, leaf.c_str(), &a) == 1 && (ntohl(a.s_addr) >> 24) != 127) out.insert(leaf);
    }
  }
  return out;
}

std::set<std::string> ParseIfInet6(std::string_view if_inet6) {
  // "fe800000000000000000000000000001 02 40 20 80 eth0": address, ifindex, prefix length, scope, flags, name
  std::set<std::string> out;
  std::istringstream in{std::string(if_inet6)};
  std::string hex, ifindex, prefix, scope;
  std::string rest;
  while (in >> hex >> ifindex >> prefix >> scope && std::getline(in, rest)) {
    if (hex.size() != 32 || hex.find_first_not_of("0123456789abcdef") != std::string::npos) continue;
    unsigned long scope_bits = std::strtoul(scope.c_str(), nullptr, 16);
    if (scope_bits & 0x30) continue;  // IFA_HOST (loopback) 0x10, IFA_LINK 0x20
    uint8_t addr[16];
    for (int i = 0; i < 16; i++) addr[i] = static_cast<uint8_t>(std::stoul(hex.substr(2 * i, 2), nullptr, 16));
    out.insert(FormatAddress(AF_INET6, addr));
  }
  return out;
}

PodAddresses::PodAddresses(std::shared_ptr<IdentityResolver> resolver, std::chrono::seconds refresh_interval,
                           SteadyClock clock)
    : resolver_(std::move(resolver)), refresh_interval_(refresh_interval), clock_(std::move(clock)) {}

std::string PodAddresses::Pod(const std::string& address) {
  std::lock_guard lock(mutex_);
  RefreshIfDueLocked();
  auto it = pods_.find(address);
  return it == pods_.end() ? "" : it->second;
}

size_t PodAddresses::size() {
  std::lock_guard lock(mutex_);
  RefreshIfDueLocked();
  return pods_.size();
}

void PodAddresses::RefreshIfDueLocked() {
  auto now = clock_ ? clock_() : std::chrono::steady_clock::now();
  if (last_refresh_ && now - *last_refresh_ < refresh_interval_) return;
  last_refresh_ = now;
  std::string root = resolver_->host_root();
  while (!root.empty() && root.back() == '/') root.pop_back();
  const std::string proc = root + "/proc/";
  // the node's own addresses (init's namespace): a pod that has them runs in the node's namespace
  std::set<std::string> node = ParseFibTrieLocal(ReadFile(proc + "1/net/fib_trie"));
  for (const auto& a : ParseIfInet6(ReadFile(proc + "1/net/if_inet6"))) node.insert(a);

  std::map<std::string, std::string> pods;
  std::set<std::string> done;  // pod uids read
  for (const Identity& id : resolver_->AliveCgroups()) {
    if (id.pod_uid.empty() || id.pod.empty() || done.count(id.pod_uid)) continue;
    std::istringstream procs(ReadFile(resolver_->cgroup_root() + id.cgroup + "/cgroup.procs"));
    std::string pid;
    if (!(procs >> pid)) continue;  // the pod's own slice, or a container without processes
    std::set<std::string> addresses = ParseFibTrieLocal(ReadFile(proc + pid + "/net/fib_trie"));
    for (const auto& a : ParseIfInet6(ReadFile(proc + pid + "/net/if_inet6"))) addresses.insert(a);
    if (addresses.empty()) continue;  // the process went meanwhile: another of the pod's may do
    done.insert(id.pod_uid);
    bool host_network = false;
    for (const auto& a : addresses) host_network |= node.count(a) > 0;
    if (host_network) continue;
    for (const auto& a : addresses) pods[a] = id.pod_namespace + "/" + id.pod;
  }
  // With --kubelet.url, also the addresses the kubelet gives for its pods (those whose processes could
  // not be read here, or have not run yet); what the namespaces said stays.
  if (const KubeletApi* api = resolver_->kubelet_api()) {
    if (auto listing = api->Latest()) {
      for (const auto& [uid, pod] : listing->pods) {
        if (pod.host_network) continue;
        for (const auto& a : pod.addresses) pods.emplace(a, pod.pod_namespace + "/" + pod.pod);
      }
    }
  }
  pods_ = std::move(pods);
}

}  // namespace scry
