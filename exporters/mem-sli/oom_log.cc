#include "oom_log.h"

#include <bpf/libbpf.h>

#include <chrono>
#include <cerrno>
#include <cstring>

#include "mem_sli_decode.h"
#include "scry/log.h"

namespace scry::mem {

OomLog::OomLog(std::shared_ptr<IdentityResolver> resolver) : resolver_(std::move(resolver)) {}

OomLog::~OomLog() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (rb_) ring_buffer__free(rb_);
}

int OomLog::OnEvent(void* self, void* data, size_t size) {
  auto* log_ = static_cast<OomLog*>(self);
  mem_oom_event ev{};
  std::memcpy(&ev, data, std::min(size, sizeof(ev)));
  // The victim's cgroup outlives it, but a cgroup made just before the kill is found only by the
  // resolver's next walk of the tree (at most once a second): retry a little. Kills are rare.
  std::optional<IdentityResolver::Result> r;
  for (int attempt = 0; log_->resolver_ && attempt < 4; attempt++) {
    if (attempt) std::this_thread::sleep_for(std::chrono::milliseconds(500));
    r = log_->resolver_->Resolve(ev.cgroup_id);
    if (r->ok() || log_->stop_) break;
  }
  log::Warn("oom kill", OomLogFields(ev, r && r->ok() ? &r->identity : nullptr));
  return 0;
}

void OomLog::Start(const BpfObject& bpf) {
  if (rb_) return;
  rb_ = ring_buffer__new(bpf.MapFd("oom_events"), &OomLog::OnEvent, this, nullptr);
  if (!rb_) {
    log::Error("cannot read OOM kill events; kills are counted but not logged", {{"error", strerror(errno)}});
    return;
  }
  thread_ = std::thread([this] {
    while (!stop_) {
      int n = ring_buffer__poll(rb_, 250);
      if (n < 0 && n != -EINTR) {
        log::Error("reading OOM kill events failed", {{"error", strerror(-n)}});
        break;
      }
    }
  });
}

}  // namespace scry::mem
