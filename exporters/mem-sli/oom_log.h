// Reads OOM kill events from the BPF ring buffer and logs one structured line per kill.
#pragma once

#include <atomic>
#include <memory>
#include <thread>

#include "scry/bpf_loader.h"
#include "scry/identity.h"

struct ring_buffer;

namespace scry::mem {

class OomLog {
 public:
  explicit OomLog(std::shared_ptr<IdentityResolver> resolver);
  ~OomLog();
  // Starts the reader thread on the object's oom_events ring buffer.
  void Start(const BpfObject& bpf);

 private:
  static int OnEvent(void* self, void* data, size_t size);

  std::shared_ptr<IdentityResolver> resolver_;
  ring_buffer* rb_ = nullptr;
  std::thread thread_;
  std::atomic<bool> stop_{false};
};

}  // namespace scry::mem
