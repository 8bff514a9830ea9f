/* Log2 histograms shared by BPF programs and user space (the same code runs on both sides).
 *
 * A histogram counts values in base units (nanoseconds, bytes). Each has a unit (the value of
 * one step, e.g. 1000 ns) and a first bound 2^min_log2 units. Slot k has the upper bound
 * 2^(min_log2 + k) units and counts the values v with bound(k-1) < v <= bound(k); slot 0 also
 * takes everything smaller, and the last slot takes everything above the last finite bound
 * (it is exported as le="+Inf"). sum is the exact sum of the values in base units.
 */
#ifndef SCRY_HIST_H
#define SCRY_HIST_H

#define SCRY_HIST_SLOTS 28

struct scry_hist {
	__u64 slots[SCRY_HIST_SLOTS];
	__u64 sum;
};

/* floor(log2(v)) for v > 0, in shifts only (BPF has no count-leading-zeros instruction). */
static inline __u32 scry_log2_floor(__u64 v)
{
	__u32 r = 0, shift;

	shift = (v > 0xFFFFFFFFULL) << 5; v >>= shift; r |= shift;
	shift = (v > 0xFFFF) << 4; v >>= shift; r |= shift;
	shift = (v > 0xFF) << 3; v >>= shift; r |= shift;
	shift = (v > 0xF) << 2; v >>= shift; r |= shift;
	shift = (v > 0x3) << 1; v >>= shift; r |= shift;
	return r | (__u32)(v >> 1);
}

/* ceil(log2(v)); 0 for v <= 1. */
static inline __u32 scry_log2_ceil(__u64 v)
{
	return v <= 1 ? 0 : scry_log2_floor(v - 1) + 1;
}

/* The slot of value v (base units) in a histogram with the given unit and first bound: the smallest j
 * with v <= unit * 2^j, less min_log2, clamped to the slots. No division (slow in BPF): with
 * 2^f <= unit < 2^(f+1) and e = ceil(log2(v)), j is e-f-1 or e-f, told apart by one comparison. */
static inline __u32 scry_hist_slot(__u64 v, __u64 unit, __u32 min_log2)
{
	__s32 last = (__s32)(min_log2 + SCRY_HIST_SLOTS - 2); /* j of the last finite bound */
	__s32 j = (__s32)scry_log2_ceil(v) - (__s32)scry_log2_floor(unit) - 1;

	if (j < 0)
		j = 0;
	if (j > last)
		return SCRY_HIST_SLOTS - 1;
	if (v > (unit << j))
		j++;
	if (j <= (__s32)min_log2)
		return 0;
	j -= min_log2;
	return j < SCRY_HIST_SLOTS ? (__u32)j : SCRY_HIST_SLOTS - 1;
}

/* Histogram shapes used by the exporters: latency from 1 us to 2^26 us (67 s), sizes from 512 B to 32 GiB,
 * windows (bytes or segments) from 1 to 2^26 (slot 0, le="1", is in practice a zero window). */
#define SCRY_LATENCY_UNIT_NS 1000ULL
#define SCRY_LATENCY_MIN_LOG2 0
#define SCRY_SIZE_UNIT_BYTES 1ULL
#define SCRY_SIZE_MIN_LOG2 9
#define SCRY_WINDOW_UNIT 1ULL
#define SCRY_WINDOW_MIN_LOG2 0

#endif /* SCRY_HIST_H */
