// Container and pod identity: which container, which pod, which systemd unit a cgroup or a process is.
//
// Three layers, each usable alone:
//   1. Pure parsers (no I/O): a cgroup path, a /proc/<pid>/cgroup file, the kubelet's log file names.
//   2. PodNames: pod names, namespaces and container names from the kubelet's log directories on the
//      node (KubeletFiles, under a host root), or from the kubelet's /pods endpoint (kubelet_api.h); no
//      API server.
//   3. IdentityResolver: cgroup id (bpf_get_current_cgroup_id) or pid -> Identity, with caches that keep
//      a dead cgroup's labels for a retention time and a count of ids that could not be resolved.
//
// Prometheus labels of an identity (IdentityLabels), always these five, in this order:
//   container_id  the 64-hex container id (lowercase, no runtime prefix such as "containerd://") when the
//                 cgroup is a container's cgroup or lies below one; "" otherwise.
//   container     the Kubernetes container name (from /var/log/containers, or the kubelet's /pods); ""
//                 when not known: not in Kubernetes, or the kubelet does not name it (yet).
//   pod           the Kubernetes pod name (from /var/log/containers or /var/log/pods, or the kubelet's
//                 /pods); "" when not known.
//   namespace     the pod's namespace, same sources; "" when not known.
//   cgroup        "" when container_id is set; otherwise the cgroup path as in /proc/<pid>/cgroup, with its
//                 leading "/" ("/" for the root cgroup, "/system.slice/nginx.service",
//                 "/user.slice/user-1000.slice/session-3.scope", a pod-level slice such as
//                 "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice", a runtime's
//                 monitor such as ".../crio-conmon-<id>.scope"). Same form as scry-block's cgroup label.
// So every resolved cgroup has a non-empty container_id or a non-empty cgroup. Several cgroups can map to
// one label set (a container's sub-cgroups, e.g. ".../libpod-<id>.scope/container"): collectors must
// merge series whose labels are equal. An id that cannot be resolved has no identity: collectors either
// drop its series or fold them into one series with all five labels empty; IdentityResolver::unresolved()
// counts such ids for a self-metric (so they never become many unknown label values).
// The runtime, pod uid, QoS class and systemd unit are in Identity but are not labels (no extra series).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "scry/cgroup.h"
#include "scry/metrics.h"

namespace scry {

struct Identity {
  uint64_t cgroup_id = 0;     // cgroup v2 id (directory inode); 0 when not known (e.g. a v1-only host)
  std::string cgroup;         // path in the v2 hierarchy ("/" root); on v1-only hosts a v1 path (see below)
  std::string container_id;   // 64 lowercase hex digits, or ""
  std::string runtime;        // "docker", "containerd", "cri-o", "podman", or "" (unknown or not a container)
  std::string pod_uid;        // "0b0c7e6e-54a5-4c57-9ea2-2d0d3c1f7a11" (dashes; static pods: 32 hex), or ""
  std::string qos;            // "guaranteed", "burstable", "besteffort" for pods; "" otherwise
  std::string pod;            // from the kubelet's files; "" when not known
  std::string pod_namespace;  // likewise
  std::string container;      // likewise (Kubernetes container name)
  std::string unit;           // systemd unit of a non-container cgroup: "nginx.service", "session-3.scope"
  bool kubernetes = false;    // the path lies under a kubepods hierarchy

  bool operator==(const Identity&) const = default;
};

// Container runtime names as they appear in Identity::runtime.
inline constexpr std::string_view kRuntimeDocker = "docker";
inline constexpr std::string_view kRuntimeContainerd = "containerd";
inline constexpr std::string_view kRuntimeCrio = "cri-o";
inline constexpr std::string_view kRuntimePodman = "podman";

// What a cgroup path tells, without any I/O. Works on v2 paths and on v1 paths of any controller.
// Fills cgroup (normalized: leading "/", no empty components, " (deleted)" dropped), container_id,
// runtime, pod_uid, qos, kubernetes and unit; leaves cgroup_id and the kubelet names empty.
// Recognized, at any depth (the deepest container component wins, so kind/nested nodes work):
//   systemd driver  docker-<id>.scope, cri-containerd-<id>.scope, crio-<id>.scope, libpod-<id>.scope,
//                   nerdctl-<id>.scope; "<slice>:cri-containerd:<id>" style names (containerd's cgroupfs
//                   driver under systemd-style parents); crio-conmon-<id>.scope and libpod-conmon-<id>.scope
//                   are the runtime's monitor: runtime set, no container_id, labelled by cgroup.
//   cgroupfs driver a bare 64-hex component (/docker/<id>, /kubepods/burstable/pod<uid>/<id>,
//                   /libpod_parent/libpod-<id>, crio-<id>); the runtime of a bare id is known only from
//                   its parent ("docker", "libpod_parent"), else "".
//   pods            kubepods[-<qos>]-pod<uid with '_'>.slice (systemd) and pod<uid> below a component
//                   containing "kubepods" (cgroupfs); QoS from kubepods-burstable/besteffort slices or
//                   burstable/besteffort dirs, "guaranteed" for a pod directly below kubepods.
//   units           for non-container cgroups, the deepest component ending in .service, .scope, .slice,
//                   .socket, .mount or .swap ("/system.slice/nginx.service/worker" -> "nginx.service",
//                   "/user.slice/user-1000.slice/user@1000.service/app.slice/x.service" -> "x.service").
Identity ParseCgroupPath(std::string_view path);

// One line of /proc/<pid>/cgroup: "hierarchy-id:controller-list:path".
struct ProcCgroupLine {
  int hierarchy = 0;
  std::string controllers;  // "memory", "cpu,cpuacct", "name=systemd"; "" for the v2 line
  std::string path;
};
struct ProcCgroup {
  std::optional<std::string> unified;  // path of the "0::" line (pure v2 and hybrid hosts)
  std::vector<ProcCgroupLine> v1;      // v1 hierarchies in file order
};
ProcCgroup ParseProcCgroup(std::string_view content);

// The identity of a process from its /proc/<pid>/cgroup content. cgroup is the v2 path when there is
// one, else the name=systemd path, else the first v1 path. Container and pod fields come from the v2
// path; when it has none (hybrid hosts where a runtime manages only v1 controllers), from the first v1
// path that has them (name=systemd first). unit comes from the same path as cgroup.
Identity IdentityFromProcCgroup(std::string_view content);

// Kubelet log file names. Kubernetes names never contain '_' (DNS-1123), which makes both unambiguous.
struct PodLogDir {  // /var/log/pods/<namespace>_<pod>_<uid>
  std::string pod_namespace, pod, pod_uid;
};
std::optional<PodLogDir> ParsePodLogDirName(std::string_view name);
struct ContainerLogName {  // /var/log/containers/<pod>_<namespace>_<container>-<container id>.log
  std::string pod, pod_namespace, container, container_id;
};
std::optional<ContainerLogName> ParseContainerLogName(std::string_view name);

// Where a cgroup v2 hierarchy of the host is, seen from here: for host_root "" or "/", the cgroup2 mount
// in /proc/self/mountinfo; otherwise host_root + the cgroup2 mount in <host_root>/proc/1/mountinfo,
// else the first of <host_root>/sys/fs/cgroup/unified and <host_root>/sys/fs/cgroup that is a cgroup2
// file system. "" if none.
std::string FindHostCgroup2Root(const std::string& host_root);

// Pod and container names known on this node, as a source lists them.
struct KubeletPod {
  std::string pod_namespace, pod, pod_uid;
  std::vector<std::string> containers;  // container names
  std::vector<std::string> addresses;   // its IPs, as FormatAddress writes them (the kubelet's /pods only)
  bool host_network = false;            // in the node's network namespace: its addresses are the node's
};
struct KubeletContainer {
  std::string pod_namespace, pod, pod_uid, container, container_id;  // pod_uid "" when the source does not say
};
struct PodListing {
  std::map<std::string, KubeletPod> pods;              // by pod uid
  std::map<std::string, KubeletContainer> containers;  // by container id (64 hex)
};

// The kubelet's files under a host root:
//   <host_root>/var/log/pods/<namespace>_<pod>_<uid>/<container>/        pod uid -> names
//   <host_root>/var/log/containers/<pod>_<namespace>_<container>-<id>.log container id -> names; the
//     symlink's target (/var/log/pods/<ns>_<pod>_<uid>/<container>/N.log, read, not followed) gives the uid.
// Missing directories give an empty listing.
PodListing ListKubeletFiles(const std::string& host_root);

// A cache of a PodListing source. Lists lazily: only when a lookup misses, and at most once per refresh
// interval. Entries that leave the listing stay for the retention time; a failed listing (nullopt)
// changes nothing. Thread-safe.
class PodNames {
 public:
  using Pod = KubeletPod;
  using Container = KubeletContainer;
  using Source = std::function<std::optional<PodListing>()>;

  PodNames(Source source, std::chrono::seconds refresh_interval, std::chrono::seconds retention,
           SteadyClock clock = {});

  std::optional<Pod> FindPod(const std::string& pod_uid);
  std::optional<Container> FindContainer(const std::string& container_id);
  // Lists now, regardless of the refresh interval.
  void Refresh();
  uint64_t refreshes() const;

 private:
  void RefreshLocked();
  void RefreshIfDueLocked();
  std::chrono::steady_clock::time_point Now() const { return clock_ ? clock_() : std::chrono::steady_clock::now(); }

  Source source_;
  std::chrono::seconds refresh_interval_, retention_;
  SteadyClock clock_;
  mutable std::mutex mutex_;
  std::optional<std::chrono::steady_clock::time_point> last_refresh_;
  uint64_t refreshes_ = 0;
  template <typename T>
  struct Kept {
    T value;
    std::optional<std::chrono::steady_clock::time_point> gone_since;
  };
  std::map<std::string, Kept<Pod>> pods_;              // by pod uid
  std::map<std::string, Kept<Container>> containers_;  // by container id
};

// PodNames of the kubelet's files (ListKubeletFiles) under a host root.
class KubeletFiles : public PodNames {
 public:
  explicit KubeletFiles(std::string host_root = "/", std::chrono::seconds refresh_interval = std::chrono::seconds(10),
                        std::chrono::seconds retention = std::chrono::seconds(300), SteadyClock clock = {});
};

// Where to ask the kubelet for its pods (GET <url>, a PodList in JSON): see kubelet_api.h.
struct KubeletApiOptions {
  std::string url;         // "" = do not ask; e.g. "https://127.0.0.1:10250/pods"
  std::string token_file;  // bearer token, re-read for every request (tokens rotate); "" = none
  std::string ca_file;     // CA bundle for the kubelet's serving certificate; "" = the system's
  bool insecure_skip_verify = false;
  std::chrono::seconds timeout{5};
};
class KubeletApi;

struct IdentityOptions {
  std::string host_root = "/";  // the node's root as seen from here: "/" on the host, e.g. "/host" in a container
  std::string cgroup_root;      // the cgroup v2 hierarchy; "" finds it with FindHostCgroup2Root(host_root)
  std::chrono::seconds rescan_interval{1};           // cgroup tree walks, at most this often
  std::chrono::seconds retention{300};               // a dead cgroup's (or pod's) labels are kept this long
  std::chrono::seconds kubelet_refresh_interval{5};  // kubelet directory reads (on misses), at most this often
  KubeletApiOptions kubelet_api;                      // asked after the files, on their misses, as often
  // How long an id that went away (Status::kGone) or was counted unresolved is remembered, so that it is
  // neither reported as unknown nor counted again while stale BPF entries still carry it.
  std::chrono::seconds forget_after{3600};
  SteadyClock clock;  // tests
};

// cgroup id or pid -> Identity. Thread-safe; Resolve costs a few map lookups, plus a walk of the cgroup
// tree at most once per rescan interval and a read of the kubelet's directories on misses at most once
// per kubelet refresh interval.
class IdentityResolver {
 public:
  enum class Status {
    kLive,     // the cgroup exists; identity filled
    kDead,     // the cgroup has gone; identity is its last one, kept for the retention time
    kGone,     // the cgroup went and its retention is over: drop its series and BPF entries (not counted)
    kUnknown,  // never seen (a cgroup born and gone between scans, or a wrong id): no identity
  };
  struct Result {
    Status status = Status::kUnknown;
    Identity identity;
    bool ok() const { return status == Status::kLive || status == Status::kDead; }
  };

  explicit IdentityResolver(IdentityOptions options = {});

  Result Resolve(uint64_t cgroup_id);
  // From <host_root>/proc/<pid>/cgroup (paths there are relative to this process's cgroup namespace: run
  // in the host's). kLive when the file was read, kUnknown when not (process gone). Reads the file on
  // every call; never counted in unresolved().
  Result ResolvePid(int pid);

  // Every live cgroup (rescans when due) with its identity.
  std::vector<Identity> AliveCgroups();

  // Distinct cgroup ids that Resolve could not map to a path, even after a tree walk newer than their
  // first lookup (so a cgroup created just before its first lookup is not counted). Monotonic: a self-metric.
  uint64_t unresolved() const;
  const std::string& cgroup_root() const { return cgroup_root_; }
  const std::string& host_root() const { return options_.host_root; }
  size_t cached() const;
  // The kubelet API client when one is configured (its request counts are self-metrics), else null.
  const KubeletApi* kubelet_api() const { return kubelet_api_.get(); }

 private:
  std::chrono::steady_clock::time_point Now() const {
    return options_.clock ? options_.clock() : std::chrono::steady_clock::now();
  }
  // Adds the kubelet's names to a parsed identity (Kubernetes only): from its files, else its API.
  void AddKubeletNames(Identity& identity);
  static void AddNames(PodNames& names, Identity& identity);
  void PruneLocked(std::chrono::steady_clock::time_point now);

  IdentityOptions options_;
  std::string cgroup_root_;
  std::unique_ptr<CgroupPaths> cgroups_;  // null when there is no cgroup v2 hierarchy
  KubeletFiles kubelet_;
  std::shared_ptr<KubeletApi> kubelet_api_;       // null unless options_.kubelet_api.url is set
  std::unique_ptr<PodNames> kubelet_api_names_;  // a cache of kubelet_api_'s listings
  mutable std::mutex mutex_;
  struct Cached {
    Identity identity;
    bool complete = false;  // nothing left to learn from the kubelet's files
  };
  std::unordered_map<uint64_t, Cached> cache_;
  std::unordered_map<uint64_t, std::chrono::steady_clock::time_point> gone_;  // id -> when its retention ended
  struct Unknown {
    std::chrono::steady_clock::time_point first_seen;
    bool counted = false;
  };
  std::unordered_map<uint64_t, Unknown> unknown_;
  uint64_t unresolved_ = 0;
  std::optional<std::chrono::steady_clock::time_point> last_prune_;
};

inline constexpr std::array<const char*, 5> kIdentityLabelNames = {"container_id", "container", "pod", "namespace",
                                                                   "cgroup"};
// The five labels above, in that order, by the rules in this file's header comment.
Labels IdentityLabels(const Identity& identity);

}  // namespace scry
