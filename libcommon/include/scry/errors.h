// Error types that map to the exporters' exit codes: 2 for bad usage or config, 1 for runtime failures.
#pragma once

#include <stdexcept>

namespace scry {

// Bad flags, a bad config file or web-config, a bad listen address: exit code 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Anything that goes wrong at run time (BPF load, port in use, permissions): exit code 1.
class RuntimeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

constexpr int kExitOk = 0;
constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;

}  // namespace scry
