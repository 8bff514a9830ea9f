// CPU scheduling SLIs from sched_switch, sched_wakeup and sched_wakeup_new (sched_stat_* never fire
// on kernels without CONFIG_SCHEDSTATS): run-queue latency, time off CPU by reason, long stretches on
// CPU, per cgroup; and a task iterator that lists tasks in uninterruptible sleep (hung tasks).
// Per-task state lives in task local storage: no hash map insert or delete on the hot path.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#include "sched_sli.h"
#include "scry_filter.bpf.h"
#include "scry_hist.bpf.h"
#include "scry_lost.bpf.h"
#include "scry_maps.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by user space before load: on-CPU stretches at least this long are counted (0: off). */
const volatile __u64 long_run_ns = 0;

#define TASK_RUNNING 0x0
#define TASK_UNINTERRUPTIBLE 0x2
#define TASK_DEAD 0x80
#define TASK_NOLOAD 0x400
#define EXIT_ZOMBIE 0x20
#define EXIT_DEAD 0x10

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sched_task);
} tasks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 8192);
	__type(key, __u64); /* cgroup v2 id */
	__type(value, struct sched_cgroup_stats);
} cgroup_stats SEC(".maps");

SCRY_DEFINE_LOST_MAP(SCHED_LOST_NR);

static const struct sched_cgroup_stats zero_stats;

/* task_struct.state was renamed __state in 5.14. */
struct task_struct___old {
	long state;
} __attribute__((preserve_access_index));

static __always_inline unsigned int task_state(struct task_struct *t)
{
	if (bpf_core_field_exists(t->__state))
		return t->__state;
	return ((struct task_struct___old *)t)->state;
}

static __always_inline __u64 task_cgroup_id(struct task_struct *t)
{
	return BPF_CORE_READ(t, cgroups, dfl_cgrp, kn, id);
}

static __always_inline struct sched_cgroup_stats *stats_of(__u64 cgroup_id)
{
	struct sched_cgroup_stats *s = scry_lookup_or_init(&cgroup_stats, &cgroup_id, &zero_stats);
	if (!s)
		scry_count_lost(&lost_events, SCHED_LOST_CGROUP_MAP_FULL);
	return s;
}

/* A task became runnable. Its time off CPU and its run-queue wait are both accounted when it next
 * gets the CPU, so that a wakeup (often of a task last run on another CPU) touches only its storage. */
static __always_inline void on_wakeup(struct task_struct *p)
{
	struct sched_task *s = bpf_task_storage_get(&tasks, p, 0, 0);

	if (!s) {
		/* First sight (a new task, or one asleep since before we started). */
		__u64 cgroup_id = task_cgroup_id(p);
		if (!scry_observed(cgroup_id, BPF_CORE_READ(p, tgid)))
			return;
		s = bpf_task_storage_get(&tasks, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (!s)
			return;
		s->cgroup_id = cgroup_id;
		s->off_reason = SCHED_OFF_SLEEP;
	}
	s->runnable_since = bpf_ktime_get_ns();
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(wakeup_btf, struct task_struct *p)
{
	on_wakeup(p);
	return 0;
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(wakeup_new_btf, struct task_struct *p)
{
	on_wakeup(p);
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(switch_btf, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u64 now = bpf_ktime_get_ns();
	unsigned int state = task_state(prev);
	struct sched_task *s;

	/* prev leaves the CPU. Its cgroup id is read again only when its css_set changed (it moved). */
	if (!(state & (TASK_DEAD | EXIT_ZOMBIE | EXIT_DEAD))) {
		__u64 css_set = (__u64)prev->cgroups;
		__u64 cgroup_id;

		bool moved;

		s = bpf_task_storage_get(&tasks, prev, 0, 0);
		moved = !s || s->css_set != css_set;
		cgroup_id = moved ? bpf_get_current_cgroup_id() /* prev is the current task */ : s->cgroup_id;
		if (!scry_observed(cgroup_id, prev->tgid)) {
			if (s) /* it left the filter: forget it */
				bpf_task_storage_delete(&tasks, prev);
			s = NULL;
		} else if (!s) {
			s = bpf_task_storage_get(&tasks, prev, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
		}
		if (s && moved)
			s->css_set = css_set;
		if (s) {
			if (long_run_ns && s->on_since && now - s->on_since >= long_run_ns) {
				struct sched_cgroup_stats *st = stats_of(cgroup_id);
				if (st) {
					st->long_runs++;
					st->long_run_ns += now - s->on_since;
				}
			}
			s->cgroup_id = cgroup_id;
			s->on_since = 0;
			if (preempt || state == TASK_RUNNING) {
				s->off_reason = SCHED_OFF_PREEMPTED;
				s->runnable_since = now;
				s->off_since = 0;
			} else {
				if ((state & TASK_UNINTERRUPTIBLE) && !(state & TASK_NOLOAD))
					s->off_reason = BPF_CORE_READ_BITFIELD(prev, in_iowait) ? SCHED_OFF_IOWAIT
												: SCHED_OFF_BLOCKED;
				else
					s->off_reason = SCHED_OFF_SLEEP;
				s->off_since = now;
				s->runnable_since = 0;
			}
		}
	}

	/* next gets the CPU: its run-queue wait ends. */
	s = bpf_task_storage_get(&tasks, next, 0, 0);
	if (!s)
		return 0;
	if (s->runnable_since) {
		struct sched_cgroup_stats *st = stats_of(s->cgroup_id);
		__u32 reason = s->off_reason;
		if (st) {
			if (reason == SCHED_OFF_PREEMPTED) {
				scry_hist_add_latency_local(&st->runq_preempted, now - s->runnable_since);
			} else {
				scry_hist_add_latency_local(&st->runq_woken, now - s->runnable_since);
				if (s->off_since && reason < SCHED_OFF_NR)
					scry_hist_add_latency_local(&st->off[reason], s->runnable_since - s->off_since);
			}
		}
		s->runnable_since = 0;
	}
	s->off_since = 0;
	s->on_since = now;
	return 0;
}

/* Lists tasks in uninterruptible sleep (TASK_IDLE excluded, as the kernel's hung task detector does). */
SEC("iter/task")
int blocked_tasks(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;
	struct sched_blocked_task rec = {};
	struct sched_task *s;
	unsigned int state;

	if (!task)
		return 0;
	state = task_state(task);
	if (!(state & TASK_UNINTERRUPTIBLE) || (state & TASK_NOLOAD))
		return 0;
	rec.pid = task->pid;
	rec.tgid = task->tgid;
	rec.cgroup_id = task_cgroup_id(task);
	if (!scry_observed(rec.cgroup_id, rec.tgid))
		return 0;
	rec.iowait = BPF_CORE_READ_BITFIELD_PROBED(task, in_iowait);
	s = bpf_task_storage_get(&tasks, task, 0, 0);
	if (s)
		rec.off_since = s->off_since;
	bpf_probe_read_kernel_str(rec.comm, sizeof(rec.comm), task->comm);
	bpf_seq_write(ctx->meta->seq, &rec, sizeof(rec));
	return 0;
}
