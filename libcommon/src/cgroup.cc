#include "scry/cgroup.h"

#include <dirent.h>
#include <sys/stat.h>

#include <sstream>
#include <vector>

#include "scry/files.h"

namespace scry {

namespace {
// The mount point of the first mountinfo line whose filesystem type and super options satisfy `match`.
// Fields: id parent major:minor root mount-point options [optional...] - fstype source super-options
template <typename Match>
std::string FindMount(const std::string& mountinfo_content, Match match) {
  std::istringstream in(mountinfo_content);
  std::string line;
  while (std::getline(in, line)) {
    auto sep = line.find(" - ");
    if (sep == std::string::npos) continue;
    std::istringstream tail(line.substr(sep + 3));
    std::string fstype, source, options;
    tail >> fstype >> source >> options;
    if (!match(fstype, options)) continue;
    std::istringstream head(line.substr(0, sep));
    std::string id, parent, devno, root, mount_point;
    if (head >> id >> parent >> devno >> root >> mount_point) return mount_point;
  }
  return "";
}
}  // namespace

std::string FindCgroup2Mount(const std::string& mountinfo_content) {
  return FindMount(mountinfo_content, [](const std::string& fstype, const std::string&) { return fstype == "cgroup2"; });
}

std::string FindCgroup1Mount(const std::string& mountinfo_content, const std::string& controller) {
  return FindMount(mountinfo_content, [&](const std::string& fstype, const std::string& options) {
    if (fstype != "cgroup") return false;
    std::istringstream opts(options);
    std::string opt;
    while (std::getline(opts, opt, ','))
      if (opt == controller) return true;
    return false;
  });
}

std::map<std::string, uint64_t> ParseFlatKeyed(const std::string& content) {
  std::map<std::string, uint64_t> out;
  std::istringstream in(content);
  std::string line, key, rest;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    uint64_t value;
    if (fields >> key >> value && !(fields >> rest)) out[key] = value;
  }
  return out;
}

std::string HostMountinfo(const std::string& host_root) {
  bool on_host = host_root.empty() || host_root == "/";
  return ReadFileContent(on_host ? "/proc/self/mountinfo" : host_root + "/proc/1/mountinfo").value_or("");
}

CgroupControllerFiles::CgroupControllerFiles(std::string controller, const std::string& host_root,
                                             std::string v2_root)
    : controller_(std::move(controller)), v2_root_(std::move(v2_root)) {
  std::string mount = FindCgroup1Mount(HostMountinfo(host_root), controller_);
  bool on_host = host_root.empty() || host_root == "/";
  if (!mount.empty()) v1_root_ = on_host ? mount : host_root + mount;
  if (!v2_root_.empty()) {
    std::istringstream controllers(ReadFileContent(v2_root_ + "/cgroup.controllers").value_or(""));
    std::string name;
    while (controllers >> name) v2_enabled_ = v2_enabled_ || name == controller_;
  }
}

std::optional<std::string> CgroupControllerFiles::Read(const std::string& cgroup_path, const std::string& name) const {
  if (!available()) return std::nullopt;
  std::string dir = (v1() ? v1_root_ : v2_root_) + (cgroup_path == "/" ? "" : cgroup_path);
  return ReadFileContent(dir + "/" + name);
}

CgroupPaths::CgroupPaths(std::string root, std::chrono::seconds rescan_interval, std::chrono::seconds retention,
                         SteadyClock clock)
    : root_(std::move(root)), rescan_interval_(rescan_interval), retention_(retention), clock_(std::move(clock)) {
  if (root_.empty()) {
    root_ = FindCgroup2Mount(ReadFileContent("/proc/self/mountinfo").value_or(""));
  }
}

namespace {
// Depth-first walk recording every directory's inode and path relative to the root. A directory that
// cannot be opened (removed during the walk, so its children went before it) is skipped with its
// subtree; the rest of the walk goes on.
void WalkCgroupTree(const std::string& dir, const std::string& rel, std::map<uint64_t, std::string>& live) {
  std::vector<std::string> subdirs;
  if (DIR* d = opendir(dir.c_str())) {
    while (const dirent* e = readdir(d)) {
      if (e->d_type != DT_DIR && e->d_type != DT_UNKNOWN) continue;  // cgroup files (cgroup.procs...)
      std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      subdirs.push_back(std::move(name));
    }
    closedir(d);
  }
  for (const auto& name : subdirs) {
    std::string path = dir + "/" + name;
    struct stat st;
    if (lstat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    std::string child = rel == "/" ? "/" + name : rel + "/" + name;
    live[st.st_ino] = child;
    WalkCgroupTree(path, child, live);
  }
}
}  // namespace

void CgroupPaths::Rescan() {
  auto now = Now();
  last_scan_ = now;
  if (root_.empty()) return;
  std::map<uint64_t, std::string> live;
  struct stat st;
  if (stat(root_.c_str(), &st) == 0) live.emplace(st.st_ino, "/");
  std::string top = root_;
  while (top.size() > 1 && top.back() == '/') top.pop_back();
  WalkCgroupTree(top, "/", live);
  for (auto it = paths_.begin(); it != paths_.end();) {
    auto& entry = it->second;
    if (live.count(it->first)) {
      ++it;
      continue;
    }
    if (!entry.gone_since) entry.gone_since = now;
    if (now - *entry.gone_since >= retention_)
      it = paths_.erase(it);
    else
      ++it;
  }
  for (auto& [id, path] : live) paths_[id] = Entry{std::move(path), std::nullopt};
}

void CgroupPaths::RescanIfDue() {
  if (!last_scan_ || Now() - *last_scan_ >= rescan_interval_) Rescan();
}

std::optional<std::string> CgroupPaths::Path(uint64_t id) {
  std::lock_guard lock(mutex_);
  RescanIfDue();
  auto it = paths_.find(id);
  if (it != paths_.end()) return it->second.path;
  unresolved_++;
  return std::nullopt;
}

std::optional<CgroupEntry> CgroupPaths::Lookup(uint64_t id) {
  std::lock_guard lock(mutex_);
  RescanIfDue();
  auto it = paths_.find(id);
  if (it == paths_.end()) return std::nullopt;
  return CgroupEntry{it->second.path, !it->second.gone_since.has_value()};
}

std::optional<std::chrono::steady_clock::time_point> CgroupPaths::last_scan() {
  std::lock_guard lock(mutex_);
  return last_scan_;
}

std::map<uint64_t, std::string> CgroupPaths::Alive() {
  std::lock_guard lock(mutex_);
  RescanIfDue();
  std::map<uint64_t, std::string> alive;
  for (const auto& [id, entry] : paths_)
    if (!entry.gone_since) alive.emplace(id, entry.path);
  return alive;
}

bool CgroupPaths::Known(uint64_t id) {
  std::lock_guard lock(mutex_);
  return paths_.count(id) > 0;
}
}  // namespace scry
