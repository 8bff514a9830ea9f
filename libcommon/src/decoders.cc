#include "scry/decoders.h"

#include <cstring>
#include <sstream>

#include "scry/files.h"

namespace scry {

DiskNames::DiskNames(std::string diskstats_path) : path_(std::move(diskstats_path)) {}

std::map<std::pair<uint32_t, uint32_t>, std::string> DiskNames::Parse(const std::string& content) {
  std::map<std::pair<uint32_t, uint32_t>, std::string> names;
  std::istringstream in(content);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    uint32_t major, minor;
    std::string name;
    if (fields >> major >> minor >> name) names[{major, minor}] = name;
  }
  return names;
}

void DiskNames::Reload() {
  last_reload_ = std::chrono::steady_clock::now();
  names_ = Parse(ReadFileContent(path_).value_or(""));
}

std::optional<std::string> DiskNames::Lookup(uint32_t major, uint32_t minor) {
  std::lock_guard lock(mutex_);
  // Disks come and go: look again at most once a second, and at once for an unknown number.
  auto it = names_.find({major, minor});
  if (it == names_.end() || std::chrono::steady_clock::now() - last_reload_ >= std::chrono::seconds(1)) {
    Reload();
    it = names_.find({major, minor});
  }
  if (it != names_.end()) return it->second;
  return std::nullopt;
}

std::string DiskNames::Name(uint32_t major, uint32_t minor) {
  auto name = Lookup(major, minor);
  return name ? *name : std::to_string(major) + ":" + std::to_string(minor);
}

std::string ErrnoName(int error) {
  if (error < 0) error = -error;
  const char* name = strerrorname_np(error);
  return name ? name : "errno_" + std::to_string(error);
}

}  // namespace scry
