// Reference probes for bench/sched-sli.py: what the building blocks of scry-sched-sli's sched_switch
// program cost on this kernel and machine, measured the same way (kernel BPF stats). Not part of scry;
// never shipped. All run on tp_btf/sched_switch, one after the other in the order of this file.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "scry_hist.bpf.h"

char LICENSE[] SEC("license") = "GPL";

struct fl_task {
	__u64 a, b, c, d, e;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct fl_task);
} fl_tasks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, struct scry_hist);
} fl_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct scry_hist);
} fl_slots SEC(".maps");

static const struct scry_hist zero_hist;

/* The floor: BPF stats' own clock reads and the call. */
SEC("tp_btf/sched_switch")
int BPF_PROG(floor_empty, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(floor_ktime, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return bpf_ktime_get_ns() == 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(floor_cgroup_id, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return bpf_get_current_cgroup_id() == 0;
}

/* Task local storage of both tasks: what every switch needs for per-task state. */
SEC("tp_btf/sched_switch")
int BPF_PROG(floor_two_task_storages, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	struct fl_task *p = bpf_task_storage_get(&fl_tasks, prev, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	struct fl_task *n = bpf_task_storage_get(&fl_tasks, next, 0, 0);

	if (p)
		p->a++;
	if (n)
		n->b++;
	return 0;
}

/* A per-CPU hash lookup by cgroup id and one latency histogram update. */
SEC("tp_btf/sched_switch")
int BPF_PROG(floor_hist_per_cpu, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u64 key = prev->tgid & 63;
	struct scry_hist *h = bpf_map_lookup_elem(&fl_stats, &key);

	if (!h) {
		bpf_map_update_elem(&fl_stats, &key, &zero_hist, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&fl_stats, &key);
	}
	if (h)
		scry_hist_add_latency_local(h, key * 1000);
	return 0;
}

/* The same update in a per-CPU array indexed by a slot (what scry-sched-sli does). */
SEC("tp_btf/sched_switch")
int BPF_PROG(floor_hist_slot, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u32 slot = prev->tgid & 63;
	struct scry_hist *h = bpf_map_lookup_elem(&fl_slots, &slot);

	if (h)
		scry_hist_add_latency_local(h, slot * 1000);
	return 0;
}
