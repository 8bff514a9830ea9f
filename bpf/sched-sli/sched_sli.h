/* Shared by sched_sli.bpf.c and scry-sched-sli's user space. */
#ifndef SCRY_SCHED_SLI_H
#define SCRY_SCHED_SLI_H

#include "scry_hist.h"

/* Why a task left the CPU. */
enum sched_off_reason {
	SCHED_OFF_SLEEP = 0,     /* interruptible sleep (and idle kernel threads' TASK_IDLE) */
	SCHED_OFF_IOWAIT = 1,    /* uninterruptible, waiting for I/O (in_iowait) */
	SCHED_OFF_BLOCKED = 2,   /* uninterruptible otherwise (locks, page faults, freezes...) */
	SCHED_OFF_PREEMPTED = 3, /* still runnable: preempted, or yielded */
	SCHED_OFF_NR = 3,        /* histograms of time off CPU until wakeup: the first three */
};

/* Per task (task local storage): what the next event needs to know. */
struct sched_task {
	__u64 cgroup_id;      /* cgroup v2 id when the task last left the CPU (or was first seen) */
	__u64 css_set;        /* the task's css_set (cgroup membership) that cgroup_id was read for */
	__u64 off_since;      /* ns when it left the CPU to sleep or block; 0 when runnable or unknown */
	__u64 runnable_since; /* ns when it became runnable (wakeup hooks only); 0 when not waiting */
	__u64 on_since;       /* ns when it last got the CPU; 0 when not known */
	__u64 run_delay_out;  /* the kernel's sched_info.run_delay when it left the CPU (sched_info only) */
	__u32 off_reason;     /* enum sched_off_reason of the last switch out */
	__u32 slot;           /* the slot of cgroup_id's statistics, valid while slot_epoch is the maps' epoch + 1 */
	__u32 slot_epoch;     /* 0: no slot looked up for cgroup_id yet */
	__u32 pad;
};

/* Workload statistics slots (scry_slots.bpf.h): cgroups with statistics at the same time; user space
 * sizes them (--bpf.cgroup-slots). */
#define SCHED_SLOTS 512

/* Per cgroup v2 id, per CPU (no atomics, no cache line shared between CPUs). */
struct sched_cgroup_stats {
	struct scry_hist runq_woken;         /* woken (or new) -> on CPU */
	struct scry_hist runq_preempted;     /* preempted -> on CPU again */
	struct scry_hist off[SCHED_OFF_NR];  /* left the CPU -> woken, by reason (added when it runs again) */
	__u64 long_runs;                     /* stretches on CPU of at least long_run_ns */
	__u64 long_run_ns;                   /* their total length */
};

/* One task in uninterruptible sleep, written by the task iterator. */
struct sched_blocked_task {
	__u32 pid;
	__u32 tgid;
	__u64 cgroup_id;
	__u64 blocked_ns; /* how long it has been off CPU; 0: asleep since before the exporter started */
	__u64 switches;   /* context switches so far: the same value in two looks means the same sleep */
	__u32 iowait;
	__u32 pad;
	char comm[16];
};

enum sched_lost_reason {
	SCHED_LOST_CGROUP_MAP_FULL = 0,   /* every statistics slot taken: a new cgroup gets none */
	SCHED_LOST_TASK_STORAGE = 1,      /* the kernel refused a task's record: busy CPU, or no memory */
	SCHED_LOST_NOT_DELIVERED = 2,     /* a switch or wakeup of a known task that never reached the programs */
	SCHED_LOST_NR,
};

#endif /* SCRY_SCHED_SLI_H */
