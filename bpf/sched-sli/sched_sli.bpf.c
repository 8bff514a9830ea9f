// CPU scheduling SLIs from sched_switch (sched_stat_* never fire on kernels without
// CONFIG_SCHEDSTATS): run-queue latency, time off CPU by reason, long stretches on CPU, per cgroup;
// and a task iterator that lists tasks in uninterruptible sleep (hung tasks).
//
// Two ways to know when a task became runnable, chosen by user space:
//   - use_sched_info: the kernel's own run-queue accounting (task_struct.sched_info, CONFIG_SCHED_INFO,
//     the source of /proc/<pid>/schedstat), read at switch-in with the run queue's clock. No wakeup
//     hook and no clock helper call: the cheapest, and exact to the kernel's run_delay.
//   - otherwise: sched_wakeup/sched_wakeup_new stamp the task with bpf_ktime_get_ns().
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

#define SCRY_SLOTS SCHED_SLOTS
#include "scry_slots.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by user space before load. */
const volatile __u64 long_run_ns = 0; /* on-CPU stretches at least this long are counted (0: off) */
const volatile bool use_sched_info = false;

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

/* Per workload, per CPU (no atomics, no cache line shared between CPUs), indexed by the slot each task
 * keeps of its cgroup: no hash lookup on the hot path. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SCHED_SLOTS);
	__type(key, __u32); /* slot */
	__type(value, struct sched_cgroup_stats);
} cgroup_stats SEC(".maps");

/* Moved by user space when it takes slots back: the tasks' slots are looked up again. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} slot_epoch SEC(".maps");

SCRY_DEFINE_LOST_MAP(SCHED_LOST_NR);

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

/* Now, in the clock of the kernel's run-queue accounting (the clock of the run queue of `t`, a task
 * on this CPU, just updated by the scheduler), or of bpf_ktime_get_ns. */
static __always_inline __u64 clock_now(struct task_struct *t)
{
	if (use_sched_info)
		return t->se.cfs_rq->rq->clock;
	return bpf_ktime_get_ns();
}

/* The statistics of the task's cgroup (s->cgroup_id), by the slot it keeps; NULL when all slots are
 * taken. */
static __always_inline struct sched_cgroup_stats *stats_of(struct sched_task *s)
{
	__u32 zero = 0, *epoch = bpf_map_lookup_elem(&slot_epoch, &zero);
	__u32 valid = (epoch ? *epoch : 0) + 1;

	if (s->slot_epoch != valid) {
		s->slot = scry_slot_of(s->cgroup_id);
		if (s->slot == SCRY_NO_SLOT) {
			scry_count_lost(&lost_events, SCHED_LOST_CGROUP_MAP_FULL);
			return NULL;
		}
		s->slot_epoch = valid;
	}
	return bpf_map_lookup_elem(&cgroup_stats, &s->slot);
}

/* A task waited `wait` ns for a CPU until now, after being off CPU for its last reason. */
static __always_inline void account(struct sched_task *s, __u64 now, __u64 wait)
{
	struct sched_cgroup_stats *st = stats_of(s);
	__u32 reason = s->off_reason;

	if (!st)
		return;
	if (reason == SCHED_OFF_PREEMPTED) {
		scry_hist_add_latency_local(&st->runq_preempted, wait);
		return;
	}
	scry_hist_add_latency_local(&st->runq_woken, wait);
	if (s->off_since && reason < SCHED_OFF_NR && now - wait > s->off_since)
		scry_hist_add_latency_local(&st->off[reason], now - wait - s->off_since);
}

/* Wakeup hooks (only without sched_info): stamp when the task became runnable. */
static __always_inline void on_wakeup(struct task_struct *p)
{
	struct sched_task *s = bpf_task_storage_get(&tasks, p, 0, 0);

	if (!s) {
		/* First sight (a new task, or one asleep since before we started). */
		__u64 cgroup_id = task_cgroup_id(p);
		if (!scry_observed(cgroup_id, BPF_CORE_READ(p, tgid)))
			return;
		s = bpf_task_storage_get(&tasks, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (!s) {
			/* No memory ready, or a wakeup from an interrupt that came while this CPU was in another
			 * task storage call (e.g. freeing an exited task's), which the kernel refuses. */
			scry_count_lost(&lost_events, SCHED_LOST_TASK_STORAGE);
			return;
		}
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

/* prev leaves the CPU. Its cgroup id is read again only when its css_set changed (it moved). */
static __always_inline void switch_out(struct task_struct *prev, bool preempt, __u64 now)
{
	unsigned int state = task_state(prev);
	__u64 css_set = (__u64)prev->cgroups;
	struct sched_task *s;
	__u64 cgroup_id;
	bool moved;

	if (state & (TASK_DEAD | EXIT_ZOMBIE | EXIT_DEAD))
		return;
	s = bpf_task_storage_get(&tasks, prev, 0, 0);
	moved = !s || s->css_set != css_set;
	cgroup_id = moved ? bpf_get_current_cgroup_id() /* prev is the current task */ : s->cgroup_id;
	if (!scry_observed(cgroup_id, prev->tgid)) {
		if (s) /* it left the filter: forget it */
			bpf_task_storage_delete(&tasks, prev);
		return;
	}
	if (!s) {
		s = bpf_task_storage_get(&tasks, prev, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (!s) {
			/* no memory ready in the scheduler's context (it cannot wait): this switch is not known */
			scry_count_lost(&lost_events, SCHED_LOST_TASK_STORAGE);
			return;
		}
	} else if (!s->on_since) {
		/* It left the CPU before and we never saw it get the CPU back: the kernel did not run the
		 * program for that switch. */
		scry_count_lost(&lost_events, SCHED_LOST_NOT_DELIVERED);
	}
	if (moved) {
		s->css_set = css_set;
		if (s->cgroup_id != cgroup_id) {
			s->cgroup_id = cgroup_id;
			s->slot_epoch = 0;
		}
	}
	if (long_run_ns && s->on_since && now - s->on_since >= long_run_ns) {
		struct sched_cgroup_stats *st = stats_of(s);
		if (st) {
			st->long_runs++;
			st->long_run_ns += now - s->on_since;
		}
	}
	s->on_since = 0;
	if (use_sched_info)
		s->run_delay_out = prev->sched_info.run_delay;
	if (preempt || state == TASK_RUNNING) {
		s->off_reason = SCHED_OFF_PREEMPTED;
		s->runnable_since = now;
		s->off_since = 0;
		return;
	}
	if ((state & TASK_UNINTERRUPTIBLE) && !(state & TASK_NOLOAD))
		s->off_reason = BPF_CORE_READ_BITFIELD(prev, in_iowait) ? SCHED_OFF_IOWAIT : SCHED_OFF_BLOCKED;
	else
		s->off_reason = SCHED_OFF_SLEEP;
	s->off_since = now;
	s->runnable_since = 0;
}

/* next gets the CPU: its run-queue wait ends. */
static __always_inline void switch_in(struct task_struct *next, __u64 now)
{
	struct sched_task *s = bpf_task_storage_get(&tasks, next, 0, 0);

	if (s && s->on_since) /* we never saw it leave the CPU since it last got it */
		scry_count_lost(&lost_events, SCHED_LOST_NOT_DELIVERED);

	if (use_sched_info) {
		/* The kernel's accounting: run_delay has the waits it already closed (a queued task that
		 * migrated between CPUs), last_queued the start of the one still open. */
		__u64 queued = next->sched_info.last_queued;
		__u64 wait = queued && now > queued ? now - queued : 0;

		if (s) {
			wait += next->sched_info.run_delay - s->run_delay_out;
		} else {
			/* A task that never ran: all its waits are since its creation. */
			__u64 cgroup_id;

			if (next->sched_info.pcount)
				return; /* ran before we started: its waits are unknown */
			cgroup_id = task_cgroup_id(next);
			if (!scry_observed(cgroup_id, next->tgid))
				return;
			s = bpf_task_storage_get(&tasks, next, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
			if (!s) {
				scry_count_lost(&lost_events, SCHED_LOST_TASK_STORAGE);
				return;
			}
			s->cgroup_id = cgroup_id;
			s->off_reason = SCHED_OFF_SLEEP;
			wait += next->sched_info.run_delay;
		}
		account(s, now, wait);
	} else {
		if (!s)
			return;
		if (s->runnable_since)
			account(s, now, now - s->runnable_since);
		else if (s->off_since) /* asleep, and its wakeup never reached the program */
			scry_count_lost(&lost_events, SCHED_LOST_NOT_DELIVERED);
		s->runnable_since = 0;
	}
	s->off_since = 0;
	s->on_since = now;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(switch_btf, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u64 now = clock_now(prev);

	/* The idle task is not a task that waits: its "runnable" time is the CPU's busy time. */
	if (prev->pid)
		switch_out(prev, preempt, now);
	if (next->pid)
		switch_in(next, now);
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
	rec.switches = task->nvcsw + task->nivcsw;
	s = bpf_task_storage_get(&tasks, task, 0, 0);
	if (s && s->off_since) {
		__u64 now = clock_now(bpf_get_current_task_btf()); /* this thread's run queue */
		rec.blocked_ns = now > s->off_since ? now - s->off_since : 1;
	}
	bpf_probe_read_kernel_str(rec.comm, sizeof(rec.comm), task->comm);
	bpf_seq_write(ctx->meta->seq, &rec, sizeof(rec));
	return 0;
}
