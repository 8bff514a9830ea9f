// User space of bpf/include/scry_slots.bpf.h: workload statistics in a per-CPU array indexed by a
// small slot per cgroup (cgroup_slots: cgroup id -> slot).
#pragma once

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "scry/bpf_loader.h"
#include "scry/bpf_maps.h"

namespace scry {

// Sizes the slot maps and the statistics array stats_map for `slots` cgroups (before load).
inline void SizeSlots(BpfSpec& spec, const std::string& stats_map, uint32_t slots) {
  for (const std::string& map : {stats_map, std::string("cgroup_slots"), std::string("free_slots"),
                                 std::string("slot_owners")})
    spec.max_entries[map] = slots;
  spec.SetConst<uint32_t>("slot_count", slots);
}

// Takes back the slots of dead cgroups, given as (cgroup id, slot): deletes their cgroup_slots entries,
// calls invalidate (the exporter makes its BPF caches of slots look them up again, so that none keeps a
// slot about to be reused), zeroes their statistics (Stats per CPU) in the per-CPU array stats_map, and
// queues them in free_slots for the next new cgroups. No task is left in a dead cgroup to count into
// its slot meanwhile.
template <typename Stats>
void ReleaseSlots(const BpfObject& bpf, const std::vector<std::pair<uint64_t, uint32_t>>& gone,
                  const char* stats_map, const std::function<void()>& invalidate) {
  if (gone.empty()) return;
  int slots_fd = bpf.MapFd("cgroup_slots");
  std::vector<uint32_t> freed;
  for (const auto& [cgroup_id, slot] : gone)
    if (bpf_map_delete_elem(slots_fd, &cgroup_id) == 0) freed.push_back(slot);
  invalidate();
  std::vector<Stats> zero(PossibleCpus());
  int stats_fd = bpf.MapFd(stats_map), owners_fd = bpf.MapFd("slot_owners"), free_fd = bpf.MapFd("free_slots");
  for (uint32_t slot : freed) {
    bpf_map_update_elem(stats_fd, &slot, zero.data(), BPF_ANY);
    bpf_map_delete_elem(owners_fd, &slot);
    bpf_map_update_elem(free_fd, nullptr, &slot, BPF_ANY);
  }
}

}  // namespace scry
