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

CgroupPaths::CgroupPaths(std::string root, std::chrono::seconds min_rescan_interval)
    : root_(std::move(root)), min_rescan_interval_(min_rescan_interval) {
  if (root_.empty()) {
    std::ifstream in("/proc/self/mountinfo");
    std::stringstream content;
    content << in.rdbuf();
    root_ = FindCgroup2Mount(content.str());
  }
}

void CgroupPaths::Rescan() {
  namespace fs = std::filesystem;
  last_scan_ = std::chrono::steady_clock::now();
  paths_.clear();
  if (root_.empty()) return;
  struct stat st;
  if (stat(root_.c_str(), &st) == 0) paths_[st.st_ino] = "/";
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root_, fs::directory_options::skip_permission_denied, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    if (!it->is_directory(ec) || it->is_symlink(ec)) {
      continue;
    }
    if (stat(it->path().c_str(), &st) == 0) paths_[st.st_ino] = "/" + fs::relative(it->path(), root_, ec).string();
  }
}

std::optional<std::string> CgroupPaths::Path(uint64_t id) {
  std::lock_guard lock(mutex_);
  auto it = paths_.find(id);
  if (it == paths_.end() && std::chrono::steady_clock::now() - last_scan_ >= min_rescan_interval_) {
    Rescan();  // new cgroups appear, dead ones go
    it = paths_.find(id);
  }
  if (it != paths_.end()) return it->second;
  unresolved_++;
  return std::nullopt;
}

}  // namespace scry
