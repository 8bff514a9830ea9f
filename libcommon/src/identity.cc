#include "scry/identity.h"

#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include <algorithm>
#include <filesystem>

#include "scry/files.h"
#include "scry/kubelet_api.h"

namespace scry {

namespace fs = std::filesystem;

namespace {

bool StartsWith(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }
bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}
bool IsLowerHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

// A container id as runtimes write it in cgroup names: 64 lowercase hex digits.
bool IsContainerId(std::string_view s) { return s.size() == 64 && std::all_of(s.begin(), s.end(), IsLowerHex); }

// A pod uid in its dashed form: a UUID (8-4-4-4-12), or the 32 hex digits of a static pod's hash.
bool IsPodUid(std::string_view s) {
  if (s.size() == 32) return std::all_of(s.begin(), s.end(), IsLowerHex);
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); i++) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !IsLowerHex(s[i])) return false;
  }
  return true;
}

// The systemd driver writes the uid with '_' for '-' (a '-' in a slice name means nesting).
std::string PodUidFromSlice(std::string_view s) {
  std::string uid(s);
  std::replace(uid.begin(), uid.end(), '_', '-');
  return uid;
}

// Kubernetes object names: DNS-1123 labels and subdomains (lowercase letters, digits, '-', '.').
bool IsKubeName(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
  });
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t end = s.find(sep, start);
    out.push_back(s.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return out;
}

std::string RuntimeFromToken(std::string_view token) {
  if (token == "docker") return std::string(kRuntimeDocker);
  if (token == "cri-containerd" || token == "containerd" || token == "nerdctl") return std::string(kRuntimeContainerd);
  if (token == "crio") return std::string(kRuntimeCrio);
  if (token == "libpod") return std::string(kRuntimePodman);
  return "";
}

struct ContainerMatch {
  std::string id;       // "" for a runtime's monitor (conmon)
  std::string runtime;
};

// One path component as a container's cgroup (see ParseCgroupPath's comment for the forms).
std::optional<ContainerMatch> MatchContainer(std::string_view comp, std::string_view parent) {
  if (auto colon = comp.find(':'); colon != std::string_view::npos) {  // "<parent>:<runtime>:<id>"
    auto parts = Split(comp, ':');
    if (parts.size() == 3 && IsContainerId(parts[2]))
      return ContainerMatch{std::string(parts[2]), RuntimeFromToken(parts[1])};
    return std::nullopt;
  }
  std::string_view s = comp;
  if (EndsWith(s, ".scope")) s.remove_suffix(6);
  static const struct {
    std::string_view prefix, runtime;
    bool monitor;
  } kPrefixes[] = {
      {"crio-conmon-", kRuntimeCrio, true},      {"libpod-conmon-", kRuntimePodman, true},
      {"cri-containerd-", kRuntimeContainerd, false}, {"crio-", kRuntimeCrio, false},
      {"docker-", kRuntimeDocker, false},        {"libpod-", kRuntimePodman, false},
      {"nerdctl-", kRuntimeContainerd, false},
  };
  for (const auto& p : kPrefixes) {
    if (!StartsWith(s, p.prefix)) continue;
    std::string_view id = s.substr(p.prefix.size());
    if (!IsContainerId(id)) return std::nullopt;
    return ContainerMatch{p.monitor ? "" : std::string(id), std::string(p.runtime)};
  }
  if (IsContainerId(comp)) {
    std::string runtime;
    if (parent == "docker") runtime = kRuntimeDocker;
    if (parent == "libpod_parent") runtime = kRuntimePodman;
    return ContainerMatch{std::string(comp), runtime};
  }
  return std::nullopt;
}

// One component as a pod's cgroup: its uid and what the component says of the QoS class.
struct PodMatch {
  std::string uid;
  std::string qos;  // "" when the component does not tell (cgroupfs: the parent does)
};
std::optional<PodMatch> MatchPod(std::string_view comp, bool below_kubepods) {
  if (auto colon = comp.find(':'); colon != std::string_view::npos) comp = comp.substr(0, colon);
  if (EndsWith(comp, ".slice") && comp.find("kubepods") != std::string_view::npos) {  // systemd driver
    std::string_view s = comp.substr(0, comp.size() - 6);
    auto pos = s.rfind("-pod");
    if (pos == std::string_view::npos) return std::nullopt;
    std::string uid = PodUidFromSlice(s.substr(pos + 4));
    if (!IsPodUid(uid)) return std::nullopt;
    std::string_view prefix = s.substr(0, pos);  // "kubepods-burstable", "kubepods"
    std::string qos = "guaranteed";
    if (EndsWith(prefix, "-burstable")) qos = "burstable";
    if (EndsWith(prefix, "-besteffort")) qos = "besteffort";
    return PodMatch{uid, qos};
  }
  if (below_kubepods && StartsWith(comp, "pod") && IsPodUid(comp.substr(3)))
    return PodMatch{std::string(comp.substr(3)), ""};
  return std::nullopt;
}

bool IsUnitName(std::string_view comp) {
  for (std::string_view suffix : {".service", ".scope", ".slice", ".socket", ".mount", ".swap"})
    if (EndsWith(comp, suffix) && comp.size() > suffix.size()) return true;
  return false;
}

bool HasContainerOrPod(const Identity& id) {
  return !id.container_id.empty() || !id.pod_uid.empty() || !id.runtime.empty();
}

std::string ReadFile(const fs::path& path) { return ReadFileContent(path).value_or(""); }

}  // namespace

Identity ParseCgroupPath(std::string_view path) {
  Identity out;
  constexpr std::string_view kDeleted = " (deleted)";
  if (EndsWith(path, kDeleted)) path.remove_suffix(kDeleted.size());
  std::vector<std::string_view> comps;
  for (auto c : Split(path, '/'))
    if (!c.empty() && c != ".") comps.push_back(c);
  out.cgroup = "/";
  for (size_t i = 0; i < comps.size(); i++) out.cgroup += (i ? "/" : "") + std::string(comps[i]);

  // Index of the first component containing "kubepods" (the kubelet's cgroup root), if any.
  size_t kubepods = comps.size();
  for (size_t i = 0; i < comps.size(); i++)
    if (comps[i].find("kubepods") != std::string_view::npos) {
      kubepods = i;
      break;
    }
  out.kubernetes = kubepods < comps.size();

  // The deepest container component wins: sub-cgroups of a container belong to it, and on nested nodes
  // (kind) the inner container is the one that runs the workload.
  size_t container = comps.size();
  for (size_t i = comps.size(); i-- > 0;) {
    if (comps[i] == "..") continue;
    auto m = MatchContainer(comps[i], i > 0 ? comps[i - 1] : std::string_view());
    if (!m) continue;
    out.container_id = m->id;
    out.runtime = m->runtime;
    container = i;
    break;
  }

  // The deepest pod at or above the container.
  // (The container's own component counts: "kubepods-...-pod<uid>.slice:cri-containerd:<id>".)
  size_t end = container < comps.size() ? container + 1 : comps.size();
  for (size_t i = end; i-- > 0;) {
    bool below_kubepods = kubepods < i;
    auto m = MatchPod(comps[i], below_kubepods);
    if (!m) continue;
    out.pod_uid = m->uid;
    out.qos = m->qos;
    if (out.qos.empty()) {  // cgroupfs: /kubepods/<qos>/pod<uid> or /kubepods/pod<uid> (guaranteed)
      std::string_view parent = i > 0 ? comps[i - 1] : std::string_view();
      out.qos = parent == "burstable" || parent == "besteffort" ? std::string(parent) : "guaranteed";
    }
    break;
  }

  if (out.container_id.empty()) {
    for (size_t i = comps.size(); i-- > 0;)
      if (IsUnitName(comps[i])) {
        out.unit = comps[i];
        break;
      }
  }
  return out;
}

ProcCgroup ParseProcCgroup(std::string_view content) {
  ProcCgroup out;
  for (auto line : Split(content, '\n')) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    auto c1 = line.find(':');
    if (c1 == std::string_view::npos) continue;
    auto c2 = line.find(':', c1 + 1);
    if (c2 == std::string_view::npos) continue;
    ProcCgroupLine l;
    std::string_view num = line.substr(0, c1);
    if (num.empty() || !std::all_of(num.begin(), num.end(), [](char c) { return c >= '0' && c <= '9'; })) continue;
    l.hierarchy = std::stoi(std::string(num));
    l.controllers = line.substr(c1 + 1, c2 - c1 - 1);
    l.path = line.substr(c2 + 1);
    if (l.path.empty()) continue;
    if (l.hierarchy == 0 && l.controllers.empty())
      out.unified = l.path;
    else
      out.v1.push_back(std::move(l));
  }
  return out;
}

Identity IdentityFromProcCgroup(std::string_view content) {
  ProcCgroup pc = ParseProcCgroup(content);
  // v1 paths in preference order: name=systemd first (it mirrors the unit tree), then file order.
  std::vector<const ProcCgroupLine*> v1;
  for (const auto& l : pc.v1)
    if (l.controllers == "name=systemd") v1.push_back(&l);
  for (const auto& l : pc.v1)
    if (l.controllers != "name=systemd") v1.push_back(&l);

  Identity out;
  if (pc.unified)
    out = ParseCgroupPath(*pc.unified);
  else if (!v1.empty())
    out = ParseCgroupPath(v1.front()->path);
  else
    return out;
  if (HasContainerOrPod(out)) return out;
  for (const auto* l : v1) {
    Identity other = ParseCgroupPath(l->path);
    if (!HasContainerOrPod(other)) continue;
    out.container_id = other.container_id;
    out.runtime = other.runtime;
    out.pod_uid = other.pod_uid;
    out.qos = other.qos;
    out.kubernetes = other.kubernetes;
    if (!out.container_id.empty()) out.unit.clear();
    break;
  }
  return out;
}

std::optional<PodLogDir> ParsePodLogDirName(std::string_view name) {
  auto parts = Split(name, '_');
  if (parts.size() != 3 || !IsKubeName(parts[0]) || !IsKubeName(parts[1]) || !IsPodUid(parts[2])) return std::nullopt;
  return PodLogDir{std::string(parts[0]), std::string(parts[1]), std::string(parts[2])};
}

std::optional<ContainerLogName> ParseContainerLogName(std::string_view name) {
  if (!EndsWith(name, ".log")) return std::nullopt;
  name.remove_suffix(4);
  auto parts = Split(name, '_');
  if (parts.size() != 3 || !IsKubeName(parts[0]) || !IsKubeName(parts[1])) return std::nullopt;
  auto dash = parts[2].rfind('-');
  if (dash == std::string_view::npos) return std::nullopt;
  std::string_view container = parts[2].substr(0, dash), id = parts[2].substr(dash + 1);
  if (!IsKubeName(container) || !IsContainerId(id)) return std::nullopt;
  return ContainerLogName{std::string(parts[0]), std::string(parts[1]), std::string(container), std::string(id)};
}

std::string FindHostCgroup2Root(const std::string& host_root) {
  std::string mount = FindCgroup2Mount(HostMountinfo(host_root));
  if (host_root.empty() || host_root == "/") return mount;
  fs::path root(host_root);
  std::error_code ec;
  if (!mount.empty()) {
    fs::path candidate = root / fs::path(mount).relative_path();
    if (fs::is_directory(candidate, ec)) return candidate.string();
  }
  for (const char* sub : {"sys/fs/cgroup/unified", "sys/fs/cgroup"}) {
    fs::path candidate = root / sub;
    struct statfs sfs;
    if (statfs(candidate.c_str(), &sfs) == 0 && sfs.f_type == CGROUP2_SUPER_MAGIC) return candidate.string();
  }
  return "";
}

// ---- PodNames ----

PodListing ListKubeletFiles(const std::string& host_root) {
  fs::path root(host_root.empty() ? "/" : host_root);
  std::error_code ec;
  PodListing out;
  for (fs::directory_iterator it(root / "var/log/pods", ec), end; !ec && it != end; it.increment(ec)) {
    auto parsed = ParsePodLogDirName(it->path().filename().string());
    std::error_code dir_ec;
    if (!parsed || !it->is_directory(dir_ec)) continue;
    KubeletPod pod{parsed->pod_namespace, parsed->pod, parsed->pod_uid, {}};
    std::error_code sub_ec;
    for (fs::directory_iterator c(it->path(), sub_ec), cend; !sub_ec && c != cend; c.increment(sub_ec)) {
      std::error_code c_ec;
      if (c->is_directory(c_ec)) pod.containers.push_back(c->path().filename().string());
    }
    std::sort(pod.containers.begin(), pod.containers.end());
    out.pods[pod.pod_uid] = std::move(pod);
  }

  ec.clear();
  for (fs::directory_iterator it(root / "var/log/containers", ec), end; !ec && it != end; it.increment(ec)) {
    auto parsed = ParseContainerLogName(it->path().filename().string());
    if (!parsed) continue;
    KubeletContainer c{parsed->pod_namespace, parsed->pod, "", parsed->container, parsed->container_id};
    // The link points at /var/log/pods/<ns>_<pod>_<uid>/<container>/<n>.log on the host: read, not followed.
    std::error_code link_ec;
    fs::path target = fs::read_symlink(it->path(), link_ec);
    if (!link_ec) {
      for (const auto& comp : target) {
        auto dir = ParsePodLogDirName(comp.string());
        if (dir && dir->pod == c.pod && dir->pod_namespace == c.pod_namespace) c.pod_uid = dir->pod_uid;
      }
    }
    if (c.pod_uid.empty()) {  // the one live pod of that name, if there is exactly one
      std::string uid;
      int n = 0;
      for (const auto& [u, p] : out.pods)
        if (p.pod == c.pod && p.pod_namespace == c.pod_namespace) uid = u, n++;
      if (n == 1) c.pod_uid = uid;
    }
    out.containers[c.container_id] = std::move(c);
  }
  return out;
}

PodNames::PodNames(Source source, std::chrono::seconds refresh_interval, std::chrono::seconds retention,
                   SteadyClock clock)
    : source_(std::move(source)), refresh_interval_(refresh_interval), retention_(retention), clock_(std::move(clock)) {}

KubeletFiles::KubeletFiles(std::string host_root, std::chrono::seconds refresh_interval, std::chrono::seconds retention,
                           SteadyClock clock)
    : PodNames([root = std::move(host_root)] { return std::optional(ListKubeletFiles(root)); }, refresh_interval,
               retention, std::move(clock)) {}

void PodNames::RefreshLocked() {
  auto now = Now();
  last_refresh_ = now;
  refreshes_++;
  auto listing = source_();
  if (!listing) return;

  auto merge = [&](auto& kept, auto& live) {
    for (auto it = kept.begin(); it != kept.end();) {
      if (live.count(it->first)) {
        ++it;
        continue;
      }
      if (!it->second.gone_since) it->second.gone_since = now;
      if (now - *it->second.gone_since >= retention_)
        it = kept.erase(it);
      else
        ++it;
    }
    for (auto& [key, value] : live) {
      auto& k = kept[key];
      k.value = std::move(value);
      k.gone_since.reset();
    }
  };
  merge(pods_, listing->pods);
  merge(containers_, listing->containers);
}

void PodNames::RefreshIfDueLocked() {
  if (!last_refresh_ || Now() - *last_refresh_ >= refresh_interval_) RefreshLocked();
}

void PodNames::Refresh() {
  std::lock_guard lock(mutex_);
  RefreshLocked();
}

uint64_t PodNames::refreshes() const {
  std::lock_guard lock(mutex_);
  return refreshes_;
}

std::optional<PodNames::Pod> PodNames::FindPod(const std::string& pod_uid) {
  std::lock_guard lock(mutex_);
  auto it = pods_.find(pod_uid);
  if (it == pods_.end()) {
    RefreshIfDueLocked();
    it = pods_.find(pod_uid);
  }
  if (it == pods_.end()) return std::nullopt;
  return it->second.value;
}

std::optional<PodNames::Container> PodNames::FindContainer(const std::string& container_id) {
  std::lock_guard lock(mutex_);
  auto it = containers_.find(container_id);
  if (it == containers_.end()) {
    RefreshIfDueLocked();
    it = containers_.find(container_id);
  }
  if (it == containers_.end()) return std::nullopt;
  return it->second.value;
}

// ---- IdentityResolver ----

IdentityResolver::IdentityResolver(IdentityOptions options)
    : options_(std::move(options)),
      cgroup_root_(options_.cgroup_root.empty() ? FindHostCgroup2Root(options_.host_root) : options_.cgroup_root),
      kubelet_(options_.host_root, options_.kubelet_refresh_interval, options_.retention, options_.clock) {
  if (!options_.kubelet_api.url.empty()) {
    kubelet_api_ = std::make_shared<KubeletApi>(options_.kubelet_api);
    kubelet_api_names_ = std::make_unique<PodNames>([api = kubelet_api_] { return api->List(); },
                                                    options_.kubelet_refresh_interval, options_.retention,
                                                    options_.clock);
  }
  if (!cgroup_root_.empty())
    cgroups_ =
        std::make_unique<CgroupPaths>(cgroup_root_, options_.rescan_interval, options_.retention, options_.clock);
}

void IdentityResolver::AddKubeletNames(Identity& identity) {
  if (!identity.kubernetes) return;
  AddNames(kubelet_, identity);
  if (kubelet_api_names_) AddNames(*kubelet_api_names_, identity);
}

void IdentityResolver::AddNames(PodNames& names, Identity& identity) {
  if (!identity.container_id.empty() && identity.container.empty()) {
    if (auto c = names.FindContainer(identity.container_id)) {
      identity.pod = c->pod;
      identity.pod_namespace = c->pod_namespace;
      identity.container = c->container;
      if (identity.pod_uid.empty()) identity.pod_uid = c->pod_uid;
    }
  }
  if (identity.pod.empty() && !identity.pod_uid.empty()) {
    if (auto p = names.FindPod(identity.pod_uid)) {
      identity.pod = p->pod;
      identity.pod_namespace = p->pod_namespace;
    }
  }
}

namespace {
// Nothing more to learn from the kubelet.
bool Complete(const Identity& id) {
  return !id.kubernetes || (!id.pod.empty() && (id.container_id.empty() || !id.container.empty()));
}
}  // namespace

IdentityResolver::Result IdentityResolver::Resolve(uint64_t cgroup_id) {
  std::lock_guard lock(mutex_);
  auto now = Now();
  Result result;
  auto entry = cgroups_ ? cgroups_->Lookup(cgroup_id) : std::nullopt;
  if (entry) {
    unknown_.erase(cgroup_id);
    gone_.erase(cgroup_id);  // (an inode number used again)
    auto [it, inserted] = cache_.try_emplace(cgroup_id);
    Cached& c = it->second;
    if (inserted || c.identity.cgroup != entry->path) {
      c.identity = ParseCgroupPath(entry->path);
      c.identity.cgroup_id = cgroup_id;
      c.complete = false;
    }
    if (!c.complete) {
      AddKubeletNames(c.identity);
      c.complete = Complete(c.identity);
    }
    result = {entry->alive ? Status::kLive : Status::kDead, c.identity};
  } else if (auto it = cache_.find(cgroup_id); it != cache_.end()) {
    cache_.erase(it);
    gone_[cgroup_id] = now;
    result.status = Status::kGone;
  } else if (auto g = gone_.find(cgroup_id); g != gone_.end() && now - g->second < options_.forget_after) {
    result.status = Status::kGone;
  } else {
    if (g != gone_.end()) gone_.erase(g);
    auto [u, inserted] = unknown_.try_emplace(cgroup_id, Unknown{now, false});
    if (now - u->second.first_seen >= options_.forget_after) u->second = Unknown{now, false};  // forgotten
    // Count only once a tree walk that began after the first lookup has missed it too.
    auto scanned = cgroups_ ? cgroups_->last_scan() : std::optional(now);
    if (!u->second.counted && scanned && *scanned >= u->second.first_seen) {
      u->second.counted = true;
      unresolved_++;
    }
    result.status = Status::kUnknown;
  }
  if (!last_prune_ || now - *last_prune_ >= options_.rescan_interval) PruneLocked(now);
  return result;
}

void IdentityResolver::PruneLocked(std::chrono::steady_clock::time_point now) {
  last_prune_ = now;
  for (auto it = cache_.begin(); it != cache_.end();) {
    if (cgroups_ && cgroups_->Known(it->first)) {
      ++it;
      continue;
    }
    gone_[it->first] = now;
    it = cache_.erase(it);
  }
  std::erase_if(gone_, [&](const auto& kv) { return now - kv.second >= options_.forget_after; });
  std::erase_if(unknown_, [&](const auto& kv) { return now - kv.second.first_seen >= options_.forget_after; });
}

IdentityResolver::Result IdentityResolver::ResolvePid(int pid) {
  std::string content = ReadFile(fs::path(options_.host_root) / "proc" / std::to_string(pid) / "cgroup");
  Result result;
  if (content.empty()) return result;  // gone (or unreadable)
  result.identity = IdentityFromProcCgroup(content);
  result.status = Status::kLive;
  ProcCgroup pc = ParseProcCgroup(content);
  if (pc.unified && !cgroup_root_.empty() && pc.unified->find("..") == std::string::npos) {
    struct stat st;
    fs::path dir = fs::path(cgroup_root_) / fs::path(result.identity.cgroup).relative_path();
    if (stat(dir.c_str(), &st) == 0) result.identity.cgroup_id = st.st_ino;
  }
  std::lock_guard lock(mutex_);
  AddKubeletNames(result.identity);
  return result;
}

std::vector<Identity> IdentityResolver::AliveCgroups() {
  std::vector<Identity> out;
  if (!cgroups_) return out;
  for (const auto& [id, path] : cgroups_->Alive()) {
    Result r = Resolve(id);
    if (r.ok()) out.push_back(std::move(r.identity));
  }
  return out;
}

uint64_t IdentityResolver::unresolved() const {
  std::lock_guard lock(mutex_);
  return unresolved_;
}

size_t IdentityResolver::cached() const {
  std::lock_guard lock(mutex_);
  return cache_.size();
}

Labels IdentityLabels(const Identity& identity) {
  Labels labels;
  labels.reserve(kIdentityLabelNames.size());
  auto add = [&](const char* name, const std::string& value) {
    prometheus::ClientMetric::Label l;
    l.name = name;
    l.value = value;
    labels.push_back(std::move(l));
  };
  add("container_id", identity.container_id);
  add("container", identity.container);
  add("pod", identity.pod);
  add("namespace", identity.pod_namespace);
  add("cgroup", identity.container_id.empty() ? identity.cgroup : "");
  return labels;
}

}  // namespace scry
