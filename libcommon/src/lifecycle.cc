#include "scry/lifecycle.h"

#include <bpf/bpf.h>
#include <signal.h>
#include <sys/capability.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "scry/errors.h"

namespace scry {

bool SdNotify(const std::string& state) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (!path || !*path) return true;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  size_t len = std::strlen(path);
  if (len >= sizeof(addr.sun_path)) return false;
  std::memcpy(addr.sun_path, path, len);
  if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';  // abstract namespace
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  ssize_t sent = sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr),
                        static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len));
  close(fd);
  return sent == static_cast<ssize_t>(state.size());
}

namespace {
sigset_t StopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}
}  // namespace

void BlockStopSignals() {
  sigset_t set = StopSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int WaitForStopSignal() {
  sigset_t set = StopSignals();
  int sig = 0;
  while (sigwait(&set, &sig) != 0) {
  }
  return sig;
}

std::vector<std::string> KeepOnlyCapabilities(const std::vector<std::string>& names) {
  cap_t current = cap_get_proc();
  cap_t wanted = cap_init();
  std::vector<std::string> kept;
  for (const auto& name : names) {
    cap_value_t cap;
    if (cap_from_name(name.c_str(), &cap) != 0 || !CAP_IS_SUPPORTED(cap)) continue;
    cap_flag_value_t have = CAP_CLEAR;
    cap_get_flag(current, cap, CAP_PERMITTED, &have);
    if (have != CAP_SET) continue;
    cap_set_flag(wanted, CAP_PERMITTED, 1, &cap, CAP_SET);
    cap_set_flag(wanted, CAP_EFFECTIVE, 1, &cap, CAP_SET);
    kept.push_back(name);
  }
  int rc = cap_set_proc(wanted);
  int err = errno;
  cap_free(wanted);
  cap_free(current);
  if (rc != 0) throw RuntimeError(std::string("cannot drop capabilities: ") + std::strerror(err));
  return kept;
}

bool HasBpfPrivileges() {
  cap_t caps = cap_get_proc();
  auto has = [caps](cap_value_t cap) {
    cap_flag_value_t v = CAP_CLEAR;
    return CAP_IS_SUPPORTED(cap) && cap_get_flag(caps, cap, CAP_EFFECTIVE, &v) == 0 && v == CAP_SET;
  };
  bool ok = has(CAP_BPF) || has(CAP_SYS_ADMIN);
  cap_free(caps);
  return ok;
}

std::vector<std::string> CapabilitiesToReadMaps() {
  if (CAP_IS_SUPPORTED(CAP_BPF)) return {"cap_bpf", "cap_perfmon"};
  return {"cap_sys_admin"};
}

void BpfStatsGuard::Enable() {
  if (fd_ >= 0) return;
  fd_ = bpf_enable_stats(BPF_STATS_RUN_TIME);
  if (fd_ < 0)
    throw RuntimeError(std::string("cannot enable BPF stats (needs CAP_SYS_ADMIN): ") + std::strerror(errno));
}

BpfStatsGuard::~BpfStatsGuard() {
  if (fd_ >= 0) close(fd_);  // the kernel stops counting when the last such fd closes
}

bool KernelBpfStatsEnabled() {
  std::ifstream in("/proc/sys/kernel/bpf_stats_enabled");
  int v = 0;
  return (in >> v) && v == 1;
}

}  // namespace scry
