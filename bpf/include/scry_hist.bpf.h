/* BPF side of scry_hist.h: lock-free updates of a histogram in a shared map value. */
#ifndef SCRY_HIST_BPF_H
#define SCRY_HIST_BPF_H

#include "scry_hist.h"

/* The slot as an index the verifier accepts. It is 64-bit and opaque to clang, so that the bound
 * check and the index are one register: otherwise clang checks one zero-extended copy and indexes with
 * another, which older verifiers (6.1) reject as an unbounded memory access. */
static __always_inline __u64 scry_hist_index(__u64 v, __u64 unit, __u32 min_log2)
{
	__u64 slot = scry_hist_slot(v, unit, min_log2);
	barrier_var(slot);
	if (slot >= SCRY_HIST_SLOTS) /* already true; the verifier wants to see it */
		slot = SCRY_HIST_SLOTS - 1;
	return slot;
}

/* For values shared between CPUs. */
static __always_inline void scry_hist_add(struct scry_hist *h, __u64 v, __u64 unit, __u32 min_log2)
{
	__sync_fetch_and_add(&h->slots[scry_hist_index(v, unit, min_log2)], 1);
	__sync_fetch_and_add(&h->sum, v);
}

/* For per-CPU map values: no other CPU writes them, so plain increments suffice. */
static __always_inline void scry_hist_add_local(struct scry_hist *h, __u64 v, __u64 unit, __u32 min_log2)
{
	h->slots[scry_hist_index(v, unit, min_log2)]++;
	h->sum += v;
}

#define scry_hist_add_latency(h, ns) scry_hist_add(h, ns, SCRY_LATENCY_UNIT_NS, SCRY_LATENCY_MIN_LOG2)
#define scry_hist_add_size(h, bytes) scry_hist_add(h, bytes, SCRY_SIZE_UNIT_BYTES, SCRY_SIZE_MIN_LOG2)
#define scry_hist_add_window(h, n) scry_hist_add(h, n, SCRY_WINDOW_UNIT, SCRY_WINDOW_MIN_LOG2)

#define scry_hist_add_latency_local(h, ns) scry_hist_add_local(h, ns, SCRY_LATENCY_UNIT_NS, SCRY_LATENCY_MIN_LOG2)

#endif /* SCRY_HIST_BPF_H */
