// Pure helpers of scry-mem-sli (no BPF, no I/O): label values, per-CPU sums, the OOM kill log line.
// Header-only so that the unit tests can use them without the exporter's library.
#pragma once

#include <linux/types.h>

#include <cstring>
#include <string>
#include <vector>

#include "../../bpf/mem-sli/mem_sli.h"
#include "scry/identity.h"
#include "scry/log.h"

namespace scry::mem {

inline const char* StallKindName(uint32_t kind) {
  switch (kind) {
    case MEM_STALL_MEMCG_RECLAIM: return "memcg";
    case MEM_STALL_DIRECT_RECLAIM: return "direct";
    case MEM_STALL_COMPACTION: return "compaction";
    case MEM_STALL_SWAPIN: return "swapin";
    default: return "other";
  }
}

inline const char* OomScopeName(uint32_t scope) { return scope == MEM_OOM_MEMCG ? "memcg" : "global"; }

inline const char* MapKindName(uint32_t kind) {
  switch (kind) {
    case MEM_MAP_ANON: return "anon";
    case MEM_MAP_SHARED: return "shared";
    default: return "file";
  }
}

inline void Add(mem_cgroup_stats& a, const mem_cgroup_stats& b) {
  a.faults += b.faults;
  a.major_faults += b.major_faults;
  for (int i = 0; i < MEM_MAP_NR; i++) a.mapped[i] += b.mapped[i];
  a.unmapped += b.unmapped;
  a.brk_grown += b.brk_grown;
  a.brk_shrunk += b.brk_shrunk;
}

inline mem_cgroup_stats Sum(const std::vector<mem_cgroup_stats>& per_cpu) {
  mem_cgroup_stats total{};
  for (const auto& s : per_cpu) Add(total, s);
  return total;
}

inline mem_node_stats Sum(const std::vector<mem_node_stats>& per_cpu) {
  mem_node_stats total{};
  for (const auto& s : per_cpu) {
    total.major_faults += s.major_faults;
    for (int i = 0; i < MEM_OOM_SCOPE_NR; i++) total.oom_kills[i] += s.oom_kills[i];
  }
  return total;
}

// One CPU's share of a workload's counters (its slot `slot`, cgroup `cgroup_id`): the CPU's copy of the
// slot's counters plus the faults waiting in the CPU's line (struct mem_cpu) if the line holds that slot.
// `before` and `after` are the line read just before and just after the counters. False, when the CPU
// moved waiting faults into counters between the two reads (they might be counted twice or not at all):
// then read again.
inline bool CpuShare(const mem_cgroup_stats& counters, const mem_cpu& before, const mem_cpu& after, uint32_t slot,
                     uint64_t cgroup_id, mem_cgroup_stats* share) {
  if (before.moves != after.moves || after.moves % 2) return false;
  *share = counters;
  if (after.slot == slot && after.cgroup_id == cgroup_id) share->faults += after.pending;
  return true;
}

// A fixed-size kernel string (maybe without its terminating NUL) as a std::string.
inline std::string KernelString(const char* s, size_t size) { return std::string(s, strnlen(s, size)); }

// The fields of the log line of one OOM kill. identity: the victim's workload, when resolved. Memory
// fields only when the BPF side saw the victim's task (ev.details).
inline log::Fields OomLogFields(const mem_oom_event& ev, const Identity* identity) {
  log::Fields f{{"pid", std::to_string(ev.pid)},
                {"comm", KernelString(ev.comm, sizeof(ev.comm))},
                {"scope", OomScopeName(ev.scope)}};
  if (identity) {
    Labels labels = IdentityLabels(*identity);
    for (const auto& l : labels) f.emplace_back(l.name, l.value);
  } else {
    f.emplace_back("cgroup_id", std::to_string(ev.cgroup_id));
  }
  if (ev.details) {
    f.emplace_back("oom_score_adj", std::to_string(ev.oom_score_adj));
    f.emplace_back("anon_rss_bytes", std::to_string(ev.anon_rss));
    f.emplace_back("file_rss_bytes", std::to_string(ev.file_rss));
    f.emplace_back("shmem_rss_bytes", std::to_string(ev.shmem_rss));
    f.emplace_back("pgtables_bytes", std::to_string(ev.pgtables));
    f.emplace_back("total_vm_bytes", std::to_string(ev.total_vm));
  }
  f.emplace_back("killer_pid", std::to_string(ev.killer_pid));
  f.emplace_back("killer_comm", KernelString(ev.killer_comm, sizeof(ev.killer_comm)));
  return f;
}

}  // namespace scry::mem
