// Whole-file reads of small kernel and configuration files (procfs, cgroupfs, sysfs, tokens).
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace scry {

// The file's content; nullopt if it cannot be opened (missing, or not readable).
std::optional<std::string> ReadFileContent(const std::filesystem::path& path);

}  // namespace scry
