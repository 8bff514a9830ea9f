/* Events a BPF program had to drop (a full map, a failed reservation), counted per reason so that
 * user space can export them as scry_lost_events_total. Each exporter defines its reasons. */
#ifndef SCRY_LOST_BPF_H
#define SCRY_LOST_BPF_H

#define SCRY_DEFINE_LOST_MAP(nr_reasons)                 \
	struct {                                         \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); \
		__uint(max_entries, nr_reasons);         \
		__type(key, __u32);                      \
		__type(value, __u64);                    \
	} lost_events SEC(".maps")

static __always_inline void scry_count_lost(void *lost_map, __u32 reason)
{
	__u64 *n = bpf_map_lookup_elem(lost_map, &reason);

	if (n)
		*n += 1;
}

#endif /* SCRY_LOST_BPF_H */
