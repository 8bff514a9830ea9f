// cgroup id (what bpf_get_current_cgroup_id returns: the inode of the cgroup v2 directory) -> path.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace scry {

// The cgroup v2 mount point from mountinfo content: "/sys/fs/cgroup" on pure v2, "/sys/fs/cgroup/unified"
// on hybrid hosts. Empty if there is none.
std::string FindCgroup2Mount(const std::string& mountinfo_content);

// The node's mountinfo: this process's on the host (host_root "/" or empty), init's below a host root
// (the exporter in a container with the host mounted at host_root). Empty if unreadable.
std::string HostMountinfo(const std::string& host_root);

// The mount point of the cgroup v1 hierarchy that has `controller` (e.g. "memory": "/sys/fs/cgroup/memory"
// on hybrid and v1 hosts) from mountinfo content. Empty if there is none (pure cgroup v2).
std::string FindCgroup1Mount(const std::string& mountinfo_content, const std::string& controller);

// "key value" lines, as in memory.stat and cpu.stat: key -> value. Lines of another shape are skipped.
std::map<std::string, uint64_t> ParseFlatKeyed(const std::string& content);

// Where a cgroup's files of one controller are, on any layout: in the controller's v1 hierarchy at the
// same path as in the v2 tree (hybrid and v1 hosts, e.g. <mount>/memory/system.slice/foo.service), else
// in the v2 tree itself. A cgroup has the files only if it has a cgroup of its own in that hierarchy (v1)
// or the controller is enabled for it (v2); its tasks are otherwise accounted to an ancestor.
class CgroupControllerFiles {
 public:
  // host_root: the node's root as seen from here ("/" on the host); v2_root: the cgroup v2 mount there
  // ("" if none).
  CgroupControllerFiles(std::string controller, const std::string& host_root, std::string v2_root);
  // Whether the controller is mounted at all (a v1 hierarchy, or listed in the v2 root's controllers).
  bool available() const { return !v1_root_.empty() || v2_enabled_; }
  bool v1() const { return !v1_root_.empty(); }
  // The content of the cgroup's file `name` (e.g. "memory.stat"); nullopt if it has none.
  std::optional<std::string> Read(const std::string& cgroup_path, const std::string& name) const;

 private:
  std::string controller_;
  std::string v1_root_;  // the controller's v1 mount as seen from here, or ""
  std::string v2_root_;
  bool v2_enabled_ = false;
};

// Where "now" comes from; empty means std::chrono::steady_clock::now. Tests pass a fake clock to step
// through retention times without sleeping.
using SteadyClock = std::function<std::chrono::steady_clock::time_point()>;

// What CgroupPaths knows of an id: its path, and whether the directory still existed at the last scan
// (false: the cgroup is gone and only kept for the retention time).
struct CgroupEntry {
  std::string path;
  bool alive = true;
};

// Walks the cgroup v2 tree at most once per rescan interval. A cgroup that disappears keeps its path
// for the retention time, so that scrapes after its death still label its last numbers.
class CgroupPaths {
 public:
  // root: the cgroup v2 mount; empty: found from /proc/self/mountinfo.
  explicit CgroupPaths(std::string root = "",
                       std::chrono::seconds rescan_interval = std::chrono::seconds(1),
                       std::chrono::seconds retention = std::chrono::seconds(300), SteadyClock clock = {});

  // "/system.slice/foo.service" ("/" for the root cgroup); nullopt if the id is unknown or long gone.
  std::optional<std::string> Path(uint64_t id);
  const std::string& root() const { return root_; }
  uint64_t unresolved() const { return unresolved_; }

  // Like Path() (rescans when due), but says whether the cgroup is still alive, and does not count
  // misses in unresolved(): callers that keep their own count of unknown ids use this.
  std::optional<CgroupEntry> Lookup(uint64_t id);
  // Every cgroup alive at the last scan (rescans when due): id -> path.
  std::map<uint64_t, std::string> Alive();
  // Whether the id is known (alive or retained) as of the last scan; never rescans.
  bool Known(uint64_t id);
  // When the tree was last walked (nullopt: never). An id unknown to a walk that started after the id was
  // first looked up is really unknown, not merely newer than the previous walk.
  std::optional<std::chrono::steady_clock::time_point> last_scan();
  std::chrono::seconds rescan_interval() const { return rescan_interval_; }
  std::chrono::seconds retention() const { return retention_; }

 private:
  void Rescan();
  void RescanIfDue();
  std::chrono::steady_clock::time_point Now() const { return clock_ ? clock_() : std::chrono::steady_clock::now(); }
  std::string root_;
  std::chrono::seconds rescan_interval_;
  std::chrono::seconds retention_;
  SteadyClock clock_;
  std::optional<std::chrono::steady_clock::time_point> last_scan_;
  std::mutex mutex_;
  struct Entry {
    std::string path;
    std::optional<std::chrono::steady_clock::time_point> gone_since;
  };
  std::map<uint64_t, Entry> paths_;
  uint64_t unresolved_ = 0;
};

}  // namespace scry
