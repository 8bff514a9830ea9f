#include "scry/files.h"

#include <fstream>
#include <sstream>

namespace scry {

std::optional<std::string> ReadFileContent(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

}  // namespace scry
