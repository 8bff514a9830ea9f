#include "scry/workloads.h"

#include <bpf/bpf.h>
#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "scry/errors.h"
#include "scry/exporter.h"
#include "scry/files.h"
#include "scry/kubelet_api.h"
#include "scry/log.h"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace scry {

using prometheus::MetricType;

namespace {

// How long an id that never resolves keeps its map entries before they are deleted.
constexpr auto kUnresolvedGrace = std::chrono::minutes(1);
constexpr auto kFilterRefreshInterval = std::chrono::seconds(1);

std::vector<std::string> SplitList(const std::string& list) {
  std::vector<std::string> items;
  std::stringstream in(list);
  std::string item;
  while (std::getline(in, item, ',')) {
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (!item.empty()) items.push_back(item);
  }
  return items;
}

std::regex CompileRegex(const std::string& flag, const std::string& pattern) {
  try {
    return std::regex(pattern, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    throw UsageError("--" + flag + ": invalid regular expression \"" + pattern + "\": " + e.what());
  }
}

// Makes the map's keys `want`, as far as they fit; returns how many did not.
template <typename K>
size_t SyncKeys(int fd, const std::set<K>& want, std::set<K>& have) {
  for (auto it = have.begin(); it != have.end();) {
    if (want.count(*it)) {
      ++it;
      continue;
    }
    K key = *it;
    bpf_map_delete_elem(fd, &key);
    it = have.erase(it);
  }
  uint8_t one = 1;
  size_t missing = 0;
  for (K key : want) {
    if (have.count(key)) continue;
    if (bpf_map_update_elem(fd, &key, &one, BPF_ANY) == 0)
      have.insert(key);
    else
      missing++;
  }
  return missing;
}

}  // namespace

bool ProcessFilter::MatchesProcess(int pid, const std::string& comm_value, const std::string& cmdline_value) const {
  if (pids.count(pid)) return true;
  if (comm && std::regex_match(comm_value, *comm)) return true;
  if (cmdline && std::regex_search(cmdline_value, *cmdline)) return true;
  return false;
}

bool ProcessFilter::MatchesIdentity(const Identity& identity) const {
  if (!identity.container_id.empty())
    for (const auto& id : container_ids)
      if (identity.container_id.compare(0, id.size(), id) == 0) return true;
  if (!identity.pod.empty())
    for (const auto& pod : pods) {
      auto slash = pod.find('/');
      if (slash == std::string::npos ? pod == identity.pod
                                     : pod.substr(0, slash) == identity.pod_namespace &&
                                           pod.substr(slash + 1) == identity.pod)
        return true;
    }
  return false;
}

ProcessFilter ParseProcessFilter(const std::string& pids, const std::string& comm, const std::string& cmdline,
                                 const std::string& container_ids, const std::string& pods) {
  ProcessFilter filter;
  for (const auto& p : SplitList(pids)) {
    size_t used = 0;
    long pid = 0;
    try {
      pid = std::stol(p, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != p.size() || pid <= 0 || pid > 0x3fffffff)
      throw UsageError("--filter.pid: \"" + p + "\" is not a process id");
    filter.pids.insert(static_cast<int>(pid));
  }
  if (!comm.empty()) filter.comm = CompileRegex("filter.comm", comm);
  if (!cmdline.empty()) filter.cmdline = CompileRegex("filter.cmdline", cmdline);
  for (auto id : SplitList(container_ids)) {
    for (const char* prefix : {"containerd://", "docker://", "cri-o://"})
      if (id.rfind(prefix, 0) == 0) id.erase(0, std::string(prefix).size());
    std::transform(id.begin(), id.end(), id.begin(), ::tolower);
    if (id.size() < 12 || id.size() > 64 || id.find_first_not_of("0123456789abcdef") != std::string::npos)
      throw UsageError("--filter.container-id: \"" + id + "\" is not a container id (12 to 64 hex digits)");
    filter.container_ids.push_back(id);
  }
  for (const auto& pod : SplitList(pods)) {
    auto slash = pod.find('/');
    if (pod.find('/', slash == std::string::npos ? 0 : slash + 1) != std::string::npos || pod.front() == '/' ||
        pod.back() == '/')
      throw UsageError("--filter.pod: \"" + pod + "\" is not \"namespace/pod\" or \"pod\"");
    filter.pods.push_back(pod);
  }
  std::vector<std::string> given;
  for (const auto& [name, value] : {std::pair<const char*, const std::string&>{"pid", pids},
                                    {"comm", comm},
                                    {"cmdline", cmdline},
                                    {"container-id", container_ids},
                                    {"pod", pods}})
    if (!value.empty()) given.push_back(std::string(name) + "=" + value);
  for (const auto& g : given) filter.text += (filter.text.empty() ? "" : " ") + g;
  return filter;
}

// ---- WorkloadSeries ----

WorkloadSeries::WorkloadSeries(std::shared_ptr<IdentityResolver> resolver, size_t max_series, SteadyClock clock)
    : resolver_(std::move(resolver)), max_series_(max_series), clock_(std::move(clock)) {}

Labels WorkloadSeries::OtherLabels() {
  Labels labels = IdentityLabels(Identity{});
  labels.back().value = "other";
  return labels;
}

void WorkloadSeries::Begin() { seen_.clear(); }

WorkloadSeries::Verdict WorkloadSeries::Label(uint64_t cgroup_id) {
  auto result = resolver_->Resolve(cgroup_id);
  if (result.status == IdentityResolver::Status::kGone) {
    unknown_since_.erase(cgroup_id);
    return {Action::kDelete, {}};
  }
  if (!result.ok()) {
    auto now = Now();
    auto [it, inserted] = unknown_since_.emplace(cgroup_id, now);
    if (now - it->second < kUnresolvedGrace) return {Action::kSkip, {}};
    unknown_since_.erase(it);
    return {Action::kDelete, {}};
  }
  unknown_since_.erase(cgroup_id);
  Verdict verdict{Action::kExport, IdentityLabels(result.identity)};
  std::string key;
  for (const auto& l : verdict.labels) key += l.value + '\x1f';
  seen_.insert(key);
  if (!named_.count(key)) {
    if (named_.size() < max_series_)
      named_.insert(key);
    else
      verdict.labels = OtherLabels();
  }
  return verdict;
}

void WorkloadSeries::End() {
  std::erase_if(named_, [&](const std::string& key) { return !seen_.count(key); });
}

// ---- Workloads ----

void Workloads::AddOptions(po::options_description& desc, size_t default_max) {
  desc.add_options()
    ("path.rootfs", po::value<std::string>()->default_value("/"),
     "The node's root file system as seen by the exporter (e.g. /host when it runs in a container with the "
     "host mounted there): /proc, the cgroup tree and the kubelet's /var/log/pods are read below it.")
    ("cgroup.root", po::value<std::string>()->default_value(""),
     "The cgroup v2 hierarchy (default: the cgroup2 mount found under --path.rootfs).")
    ("workload.max", po::value<size_t>()->default_value(default_max),
     "Most workloads (containers, or cgroups of host services) exported one by one; the rest are summed "
     "into one series with cgroup=\"other\".")
    ("workload.retention", po::value<std::string>()->default_value("5m"),
     "How long a removed cgroup keeps its series (so that scrapes after its end still read its last "
     "numbers); then they go, with its BPF entries. Make it at least two scrape intervals.")
    ("filter.pid", po::value<std::string>()->default_value(""),
     "Observe only these processes (comma-separated process ids). Filters add up: a task is observed "
     "when any filter matches it; with none, all tasks are.")
    ("filter.comm", po::value<std::string>()->default_value(""),
     "Observe only processes whose name (/proc/<pid>/comm) matches this regular expression in full.")
    ("filter.cmdline", po::value<std::string>()->default_value(""),
     "Observe only processes whose command line contains a match of this regular expression.")
    ("filter.container-id", po::value<std::string>()->default_value(""),
     "Observe only these containers (comma-separated ids, or prefixes of at least 12 hex digits).")
    ("filter.pod", po::value<std::string>()->default_value(""),
     "Observe only these pods (comma-separated \"namespace/pod\" or \"pod\").")
    ("kubelet.url", po::value<std::string>()->default_value(""),
     "Also ask the kubelet for pod and container names, for pods whose log directories are not visible "
     "under --path.rootfs: the URL of its /pods endpoint, e.g. https://127.0.0.1:10250/pods (the node's own "
     "kubelet; from a pod, with hostNetwork) or http://127.0.0.1:10255/pods (its read-only port, where "
     "enabled). Asked in the background when a container is not named yet, at most every 5 s. Default: off.")
    ("kubelet.token-file", po::value<std::string>()->default_value(""),
     "A bearer token for the kubelet, re-read for every request (tokens rotate), e.g. "
     "/var/run/secrets/kubernetes.io/serviceaccount/token; its account needs get on nodes/proxy.")
    ("kubelet.ca-file", po::value<std::string>()->default_value(""),
     "CA certificates that signed the kubelet's serving certificate (default: the system's).")
    ("kubelet.insecure-skip-verify", po::bool_switch(),
     "Do not verify the kubelet's certificate (kubelets serve a self-signed one unless their serving "
     "certificates are bootstrapped from the cluster's CA).");
}

namespace {
KubeletApiOptions KubeletApiFromFlags(const po::variables_map& vm) {
  KubeletApiOptions api;
  api.url = vm["kubelet.url"].as<std::string>();
  api.token_file = vm["kubelet.token-file"].as<std::string>();
  api.ca_file = vm["kubelet.ca-file"].as<std::string>();
  api.insecure_skip_verify = vm["kubelet.insecure-skip-verify"].as<bool>();
  if (api.url.empty()) {
    if (!api.token_file.empty() || !api.ca_file.empty() || api.insecure_skip_verify)
      throw UsageError("--kubelet.token-file, --kubelet.ca-file and --kubelet.insecure-skip-verify need --kubelet.url");
    return api;
  }
  for (const auto& [flag, path] : {std::pair{"--kubelet.token-file", api.token_file}, {"--kubelet.ca-file", api.ca_file}})
    if (!path.empty() && access(path.c_str(), R_OK) != 0)
      throw UsageError(std::string(flag) + ": cannot read " + path + ": " + std::strerror(errno));
  return api;
}
}  // namespace

Workloads::Workloads(const po::variables_map& vm)
    : max_series_(vm["workload.max"].as<size_t>()),
      filter_(ParseProcessFilter(vm["filter.pid"].as<std::string>(), vm["filter.comm"].as<std::string>(),
                                 vm["filter.cmdline"].as<std::string>(), vm["filter.container-id"].as<std::string>(),
                                 vm["filter.pod"].as<std::string>())) {
  if (max_series_ == 0) throw UsageError("--workload.max must be at least 1");
  IdentityOptions options;
  options.host_root = vm["path.rootfs"].as<std::string>();
  options.cgroup_root = vm["cgroup.root"].as<std::string>();
  options.kubelet_api = KubeletApiFromFlags(vm);
  options.retention = std::chrono::duration_cast<std::chrono::seconds>(
      ParseDuration("workload.retention", vm["workload.retention"].as<std::string>()));
  if (!fs::is_directory(options.host_root)) throw UsageError("--path.rootfs: " + options.host_root + " is not a directory");
  resolver_ = std::make_shared<IdentityResolver>(options);
  if (resolver_->cgroup_root().empty())
    log::Warn("no cgroup v2 hierarchy found: per-workload series cannot be labelled");
  if (filter_.has_cgroup_filters() && resolver_->cgroup_root().empty())
    throw UsageError("--filter.container-id and --filter.pod need a cgroup v2 hierarchy (see --cgroup.root)");
}

Workloads::~Workloads() { Stop(); }

void Workloads::Stop() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Workloads::ConfigureBpf(BpfSpec& spec) const { spec.SetConst<bool>("scry_filter_enabled", !filter_.empty()); }

void Workloads::Start(const BpfObject& bpf) {
  if (filter_.empty()) return;
  if (thread_.joinable()) return;
  filter_cgroups_fd_ = bpf.MapFd("scry_filter_cgroups");
  filter_tgids_fd_ = bpf.MapFd("scry_filter_tgids");
  log::Info("observing only tasks that match the filter", {{"filter", filter_.text}});
  RefreshFilter();
  thread_ = std::thread([this] {
    std::unique_lock lock(mutex_);
    while (!stop_cv_.wait_for(lock, kFilterRefreshInterval, [this] { return stop_; })) {
      lock.unlock();
      RefreshFilter();
      lock.lock();
    }
  });
}

void Workloads::RefreshFilter() {
  if (filter_.empty() || filter_tgids_fd_ < 0) return;
  std::set<uint32_t> tgids;
  if (filter_.has_process_filters()) {
    fs::path proc = fs::path(resolver_->host_root()) / "proc";
    if (DIR* d = opendir(proc.c_str())) {
      while (const dirent* e = readdir(d)) {
        char* end = nullptr;
        long pid = std::strtol(e->d_name, &end, 10);
        if (*end != '\0' || pid <= 0) continue;
        std::string comm, cmdline;
        if (filter_.comm) {
          comm = ReadFileContent(proc / e->d_name / "comm").value_or("");
          if (!comm.empty() && comm.back() == '\n') comm.pop_back();
        }
        if (filter_.cmdline) {
          cmdline = ReadFileContent(proc / e->d_name / "cmdline").value_or("");
          while (!cmdline.empty() && cmdline.back() == '\0') cmdline.pop_back();
          std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
        }
        if (filter_.MatchesProcess(static_cast<int>(pid), comm, cmdline)) tgids.insert(static_cast<uint32_t>(pid));
      }
      closedir(d);
    }
  }
  std::set<uint64_t> cgroups;
  if (filter_.has_cgroup_filters())
    for (const auto& identity : resolver_->AliveCgroups())
      if (filter_.MatchesIdentity(identity)) cgroups.insert(identity.cgroup_id);
  {
    std::lock_guard lock(matched_mutex_);
    matched_cgroups_ = cgroups;
    matched_tgids_ = tgids;
  }
  size_t missing = SyncKeys(filter_tgids_fd_, tgids, allowed_tgids_) +
                   SyncKeys(filter_cgroups_fd_, cgroups, allowed_cgroups_);
  tgid_entries_ = allowed_tgids_.size();
  cgroup_entries_ = allowed_cgroups_.size();
  if (missing && !filter_missing_) log::Warn("the process filter matches more than its BPF maps hold", {{"missing", std::to_string(missing)}});
  filter_missing_ = missing;
}

std::set<uint64_t> Workloads::ObservedCgroups() {
  if (!filter_.empty()) {
    std::set<uint64_t> out;
    std::set<uint32_t> tgids;
    {
      std::lock_guard lock(matched_mutex_);
      out = matched_cgroups_;
      tgids = matched_tgids_;
    }
    for (uint32_t tgid : tgids)
      if (auto r = resolver_->ResolvePid(static_cast<int>(tgid)); r.ok() && r.identity.cgroup_id)
        out.insert(r.identity.cgroup_id);
    return out;
  }
  std::set<uint64_t> out;
  for (const auto& identity : resolver_->AliveCgroups()) {
    std::ifstream procs(fs::path(resolver_->cgroup_root()) / fs::path(identity.cgroup).relative_path() / "cgroup.procs");
    if (procs.peek() != std::ifstream::traits_type::eof()) out.insert(identity.cgroup_id);
  }
  return out;
}

std::vector<prometheus::MetricFamily> Workloads::Collect() const {
  std::vector<prometheus::MetricFamily> out;
  auto unresolved = MakeFamily("scry_cgroup_unresolved_total",
                               "Cgroup ids seen in BPF maps that could not be mapped to a cgroup (gone before "
                               "the exporter looked); their numbers are left out of per-workload series.",
                               MetricType::Counter);
  AddCounter(unresolved, {}, static_cast<double>(resolver_->unresolved()));
  out.push_back(std::move(unresolved));
  if (const KubeletApi* api = resolver_->kubelet_api()) {
    auto requests = MakeFamily("scry_kubelet_requests_total",
                               "Requests for the kubelet's pod list (--kubelet.url), by result: ok, or error "
                               "(unreachable, refused, not a pod list; the log says why).",
                               MetricType::Counter);
    AddCounter(requests, {{"result", "ok"}}, static_cast<double>(api->requests_ok()));
    AddCounter(requests, {{"result", "error"}}, static_cast<double>(api->requests_failed()));
    out.push_back(std::move(requests));
  }
  if (!filter_.empty()) {
    auto entries = MakeFamily("scry_filter_entries",
                              "Cgroups and processes the process filter currently lets the BPF programs observe.",
                              MetricType::Gauge);
    AddGauge(entries, {{"kind", "cgroup"}}, static_cast<double>(cgroup_entries_.load()));
    AddGauge(entries, {{"kind", "process"}}, static_cast<double>(tgid_entries_.load()));
    out.push_back(std::move(entries));
    auto full = MakeFamily("scry_filter_unobserved",
                           "Matching cgroups and processes that did not fit in the BPF filter maps at the last "
                           "refresh: they are not observed.",
                           MetricType::Gauge);
    AddGauge(full, {}, static_cast<double>(filter_missing_.load()));
    out.push_back(std::move(full));
  }
  return out;
}

}  // namespace scry
