// Decoders that turn kernel identifiers from BPF maps into label values.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace scry {

// Kernel-internal dev_t (major << 20 | minor, as BPF programs see it) -> userspace dev_t.
constexpr uint32_t KernelDevMajor(uint32_t kdev) { return kdev >> 20; }
constexpr uint32_t KernelDevMinor(uint32_t kdev) { return kdev & 0xfffff; }

// dev_t -> disk name as /proc/diskstats prints it ("vda", "loop0", "nvme0n1").
class DiskNames {
 public:
  explicit DiskNames(std::string diskstats_path = "/proc/diskstats");
  // nullopt when the device is not (or no longer) listed.
  std::optional<std::string> Lookup(uint32_t major, uint32_t minor);
  // "major:minor" when the device is not listed.
  std::string Name(uint32_t major, uint32_t minor);

  // Parses /proc/diskstats content: major minor name ... per line.
  static std::map<std::pair<uint32_t, uint32_t>, std::string> Parse(const std::string& content);

 private:
  void Reload();
  std::string path_;
  std::chrono::steady_clock::time_point last_reload_{};
  std::mutex mutex_;
  std::map<std::pair<uint32_t, uint32_t>, std::string> names_;
};

// 28 -> "ENOSPC"; unknown numbers -> "errno_<n>".
std::string ErrnoName(int error);

}  // namespace scry
