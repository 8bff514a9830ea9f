#include "scry/version.h"

#include <bpf/libbpf.h>

namespace scry {

const char* const kVersion = SCRY_VERSION;
const char* const kRevision = SCRY_REVISION;

std::string LibbpfVersion() { return libbpf_version_string(); }

}  // namespace scry
