// Pod and container names from the kubelet's /pods endpoint: the PodList of the pods bound to this node,
// as the kubelet itself has them (its authenticated port 10250, or the read-only port 10255 where that is
// still enabled). For nodes whose kubelet log directories the exporter cannot see; the kubelet's files
// (identity.h) are read first either way.
//
// Requests run on a thread of their own, so that a slow or unreachable kubelet never holds up a scrape:
// List() returns the latest listing at once and asks for a fresh one.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "scry/identity.h"

namespace scry {

// The pods of a PodList (JSON, as GET /pods returns it): names, addresses (status.podIPs) and
// spec.hostNetwork by pod uid, and containers by id from the statuses of containers, init containers
// and ephemeral containers ("<runtime>://<64 hex>"; a container that has not started has no id and is
// left out). Throws std::runtime_error when the text
// is not JSON or has no "items" list.
PodListing ParsePodList(std::string_view json);

class KubeletApi {
 public:
  // Throws UsageError when the URL is not http:// or https://.
  explicit KubeletApi(KubeletApiOptions options);
  ~KubeletApi();
  KubeletApi(const KubeletApi&) = delete;
  KubeletApi& operator=(const KubeletApi&) = delete;

  // The latest listing (nullopt until a request has succeeded); asks the thread for a fresh one.
  std::optional<PodListing> List();
  // The latest listing, without asking for a fresh one.
  std::optional<PodListing> Latest() const;

  uint64_t requests_ok() const { return ok_; }
  uint64_t requests_failed() const { return failed_; }

 private:
  void Run();
  // One GET and parse; on failure, nullopt and why in *error.
  std::optional<PodListing> Fetch(std::string* error) const;

  KubeletApiOptions options_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool wanted_ = true;  // the first listing is fetched at start
  std::atomic<bool> stop_{false};  // also read by a request in progress, which it aborts
  std::optional<PodListing> latest_;
  std::atomic<uint64_t> ok_{0}, failed_{0};
  std::thread thread_;
};

}  // namespace scry
