/* Process filters (libcommon's Workloads): when user space sets scry_filter_enabled, only tasks whose
 * cgroup or process id user space put in these maps are observed; the rest cost two lookups. */
#ifndef SCRY_FILTER_BPF_H
#define SCRY_FILTER_BPF_H

#define SCRY_FILTER_MAX_ENTRIES 4096

const volatile bool scry_filter_enabled = false;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SCRY_FILTER_MAX_ENTRIES);
	__type(key, __u64); /* cgroup v2 id */
	__type(value, __u8);
} scry_filter_cgroups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SCRY_FILTER_MAX_ENTRIES);
	__type(key, __u32); /* thread group id */
	__type(value, __u8);
} scry_filter_tgids SEC(".maps");

static __always_inline bool scry_observed(__u64 cgroup_id, __u32 tgid)
{
	if (!scry_filter_enabled)
		return true;
	return bpf_map_lookup_elem(&scry_filter_cgroups, &cgroup_id) ||
	       bpf_map_lookup_elem(&scry_filter_tgids, &tgid);
}

/* The same for the current task, whose process id is read only when a filter is set. */
static __always_inline bool scry_observed_current(__u64 cgroup_id)
{
	return !scry_filter_enabled || scry_observed(cgroup_id, bpf_get_current_pid_tgid() >> 32);
}

#endif /* SCRY_FILTER_BPF_H */
