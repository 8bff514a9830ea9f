// cgroup id (what bpf_get_current_cgroup_id returns: the inode of the cgroup v2 directory) -> path.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace scry {

// The cgroup v2 mount point from mountinfo content: "/sys/fs/cgroup" on pure v2, "/sys/fs/cgroup/unified"
// on hybrid hosts. Empty if there is none.
std::string FindCgroup2Mount(const std::string& mountinfo_content);

// Walks the cgroup v2 tree at most once per rescan interval. A cgroup that disappears keeps its path
// for the retention time, so that scrapes after its death still label its last numbers.
class CgroupPaths {
 public:
  // root: the cgroup v2 mount; empty: found from /proc/self/mountinfo.
  explicit CgroupPaths(std::string root = "",
                       std::chrono::seconds rescan_interval = std::chrono::seconds(1),
                       std::chrono::seconds retention = std::chrono::seconds(300));

  // "/system.slice/foo.service" ("/" for the root cgroup); nullopt if the id is unknown or long gone.
  std::optional<std::string> Path(uint64_t id);
  const std::string& root() const { return root_; }
  uint64_t unresolved() const { return unresolved_; }

 private:
  void Rescan();
  std::string root_;
  std::chrono::seconds rescan_interval_;
  std::chrono::seconds retention_;
  std::chrono::steady_clock::time_point last_scan_{};
  std::mutex mutex_;
  struct Entry {
    std::string path;
    std::optional<std::chrono::steady_clock::time_point> gone_since;
  };
  std::map<uint64_t, Entry> paths_;
  uint64_t unresolved_ = 0;
};

}  // namespace scry
