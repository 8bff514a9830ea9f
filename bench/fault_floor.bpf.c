// Reference probes for bench/mem-sli.py: what the building blocks of scry-mem-sli's page_fault_user
// program cost on this kernel and machine, measured the same way (kernel BPF stats). Not part of scry;
// never shipped. Each does one thing on tp_btf/page_fault_user; the bench attaches them one at a time.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

const volatile bool fl_setting = false; /* like scry_filter_enabled: a setting in .rodata */

struct fl_line {
	__u64 n;
	__u64 pad[7];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} fl_percpu SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32); /* CPU */
	__type(value, struct fl_line);
} fl_by_cpu SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u64);
} fl_hash SEC(".maps");

/* The floor: BPF stats' own clock reads and the call. */
SEC("tp_btf/page_fault_user")
int floor_empty(void *ctx)
{
	return 0;
}

/* A branch on a .rodata setting: the verifier knows its value, but the load stays. */
SEC("tp_btf/page_fault_user")
int rodata_setting(void *ctx)
{
	if (fl_setting)
		bpf_printk("never");
	return 0;
}

/* A counter in a per-CPU array (scry-mem-sli's node and per-slot counters). */
SEC("tp_btf/page_fault_user")
int percpu_array_count(void *ctx)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&fl_percpu, &zero);

	if (n)
		*n += 1;
	return 0;
}

/* The same in a plain array indexed by CPU, one cache line each. */
SEC("tp_btf/page_fault_user")
int cpu_array_count(void *ctx)
{
	__u32 cpu = bpf_get_smp_processor_id();
	struct fl_line *l = bpf_map_lookup_elem(&fl_by_cpu, &cpu);

	if (l)
		l->n++;
	return 0;
}

/* A hash map lookup that finds its key. */
SEC("tp_btf/page_fault_user")
int hash_lookup(void *ctx)
{
	__u64 key = 0, one = 1, *n = bpf_map_lookup_elem(&fl_hash, &key);

	if (n)
		*n += 1;
	else
		bpf_map_update_elem(&fl_hash, &key, &one, BPF_NOEXIST);
	return 0;
}

/* The current task's cgroup v2 id (task, css_set, cgroup, kernfs node: four dependent loads). */
SEC("tp_btf/page_fault_user")
int cgroup_id(void *ctx)
{
	if (bpf_get_current_cgroup_id() == 1)
		bpf_printk("never");
	return 0;
}

/* Only the first of those loads: the task's css_set pointer. */
SEC("tp_btf/page_fault_user")
int css_set_pointer(void *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();

	if ((__u64)t->cgroups == 1)
		bpf_printk("never");
	return 0;
}

SEC("tp_btf/page_fault_user")
int ktime(void *ctx)
{
	if (bpf_ktime_get_ns() == 1)
		bpf_printk("never");
	return 0;
}
