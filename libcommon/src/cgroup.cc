#include "scry/cgroup.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/stat.h>

namespace scry {

std::string FindCgroup2Mount(const std::string& mountinfo_content) {
  // Fields: id parent major:minor root mount-point options [optional...] - fstype source super-options
  std::istringstream in(mountinfo_content);
  std::string line;
  while (std::getline(in, line)) {
    auto sep = line.find(" - ");
    if (sep == std::string::npos) continue;
    std::istringstream tail(line.substr(sep + 3));
    std::string fstype;
    tail >> fstype;
    if (fstype != "cgroup2") continue;
    std::istringstream head(line.substr(0, sep));
    std::string id, parent, devno, root, mount_point;
    if (head >> id >> parent >> devno >> root >> mount_point) return mount_point;
  }
  return "";
}

CgroupPaths::CgroupPaths(std::string root, std::chrono::seconds rescan_interval, std::chrono::seconds retention)
    : root_(std::move(root)), rescan_interval_(rescan_interval), retention_(retention) {
  if (root_.empty()) {
    std::ifstream in("/proc/self/mountinfo");
    std::stringstream content;
    content << in.rdbuf();
    root_ = FindCgroup2Mount(content.str());
  }
}

void CgroupPaths::Rescan() {
  namespace fs = std::filesystem;
  auto now = std::chrono::steady_clock::now();
  last_scan_ = now;
  if (root_.empty()) return;
  std::map<uint64_t, std::string> live;
  struct stat st;
  if (stat(root_.c_str(), &st) == 0) live[st.st_ino] = "/";
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root_, fs::directory_options::skip_permission_denied, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    if (it->is_directory(ec) && !it->is_symlink(ec) && stat(it->path().c_str(), &st) == 0)
      live[st.st_ino] = "/" + fs::relative(it->path(), root_, ec).string();
  }
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

std::optional<std::string> CgroupPaths::Path(uint64_t id) {
  std::lock_guard lock(mutex_);
  if (std::chrono::steady_clock::now() - last_scan_ >= rescan_interval_) Rescan();
  auto it = paths_.find(id);
  if (it != paths_.end()) return it->second.path;
  unresolved_++;
  return std::nullopt;
}
}  // namespace scry
