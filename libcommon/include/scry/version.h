#pragma once

#include <string>

namespace scry {

extern const char* const kVersion;
extern const char* const kRevision;
std::string LibbpfVersion();

}  // namespace scry
