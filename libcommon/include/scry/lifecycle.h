// Process lifecycle: systemd notification, signals, capabilities, kernel BPF stats.
#pragma once

#include <string>
#include <vector>

namespace scry {

// Sends a state string ("READY=1", "STOPPING=1") to $NOTIFY_SOCKET; does nothing without one.
// Returns false if the socket was set but the message could not be sent.
bool SdNotify(const std::string& state);

// Blocks SIGINT and SIGTERM in this thread and every thread started after, so that
// WaitForStopSignal receives them. Call before starting threads.
void BlockStopSignals();
// Waits for SIGINT or SIGTERM; returns the signal number.
int WaitForStopSignal();

// Keeps only the given capabilities (by name, e.g. "cap_bpf") that the process has now, and drops
// every other one from the effective, permitted and inheritable sets. Returns what was kept.
std::vector<std::string> KeepOnlyCapabilities(const std::vector<std::string>& names);

// True if the process has what loading BPF programs takes (CAP_BPF, or CAP_SYS_ADMIN).
bool HasBpfPrivileges();

// What reading maps at scrape time needs: CAP_BPF (and CAP_PERFMON), or CAP_SYS_ADMIN on kernels
// older than 5.8, which have no CAP_BPF.
std::vector<std::string> CapabilitiesToReadMaps();

// Turns on the kernel's BPF run-time stats for as long as the object lives (BPF_ENABLE_STATS).
class BpfStatsGuard {
 public:
  BpfStatsGuard() = default;
  // Throws RuntimeError if the kernel refuses (needs CAP_SYS_ADMIN).
  void Enable();
  ~BpfStatsGuard();
  bool enabled() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// True if the kernel already collects BPF stats (kernel.bpf_stats_enabled = 1).
bool KernelBpfStatsEnabled();

}  // namespace scry
