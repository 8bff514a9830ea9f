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

/* The slot of value v (base units) in a histogram with the given unit and first bound. */
static inline __u32 scry_hist_slot(__u64 v, __u64 unit, __u32 min_log2)
{
	__u64 steps = v / unit + (v % unit != 0);
	__u32 l = scry_log2_ceil(steps);

	if (l <= min_log2)
		return 0;
	l -= min_log2;
	return l < SCRY_HIST_SLOTS ? l : SCRY_HIST_SLOTS - 1;
}

/* Histogram shapes used by the exporters: latency from 1 us to 2^26 us (67 s), sizes from 512 B to 32 GiB. */
#define SCRY_LATENCY_UNIT_NS 1000ULL
#define SCRY_LATENCY_MIN_LOG2 0
#define SCRY_SIZE_UNIT_BYTES 1ULL
#define SCRY_SIZE_MIN_LOG2 9

#endif /* SCRY_HIST_H */
