// Addresses of the pods running on this node, from their own network namespaces (or the kubelet's
// /pods), so that a peer address can be shown as "namespace/pod". No API server: pods of other nodes and service (cluster) addresses
// stay unknown.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>

#include "scry/cgroup.h"
#include "scry/identity.h"

namespace scry {

// The local IPv4 addresses of a network namespace from its /proc/<pid>/net/fib_trie (the "/32 host
// LOCAL" leaves), loopback left out.
std::set<std::string> ParseFibTrieLocal(std::string_view fib_trie);

// The IPv6 addresses of a network namespace from its /proc/<pid>/net/if_inet6, loopback and link-local
// left out, written as FormatAddress writes them.
std::set<std::string> ParseIfInet6(std::string_view if_inet6);

// Address -> "namespace/pod" for the pods the identity resolver knows (kubelet files), read through one
// process of each pod (the first in a container cgroup's cgroup.procs), and, when the resolver asks the
// kubelet's /pods, the addresses listed there. Pods in the node's network namespace (hostNetwork) are
// left out: their addresses are the node's. Refreshed on lookup, at most once per refresh interval.
// Thread-safe.
class PodAddresses {
 public:
  PodAddresses(std::shared_ptr<IdentityResolver> resolver,
               std::chrono::seconds refresh_interval = std::chrono::seconds(10), SteadyClock clock = {});

  // "namespace/pod" of an address (as FormatAddress writes it), or "" when it is not a known pod's.
  std::string Pod(const std::string& address);
  size_t size();

 private:
  void RefreshIfDueLocked();

  std::shared_ptr<IdentityResolver> resolver_;
  std::chrono::seconds refresh_interval_;
  SteadyClock clock_;
  std::mutex mutex_;
  std::map<std::string, std::string> pods_;  // address -> "namespace/pod"
  std::optional<std::chrono::steady_clock::time_point> last_refresh_;
};

}  // namespace scry
