/* Map layouts shared by mem_sli.bpf.c and scry-mem-sli's user space. */
#ifndef SCRY_MEM_SLI_H
#define SCRY_MEM_SLI_H

#include "scry_hist.h"

/* What a task stalled in. */
enum mem_stall_kind {
	MEM_STALL_MEMCG_RECLAIM, /* reclaim to stay under a memory cgroup limit */
	MEM_STALL_DIRECT_RECLAIM, /* reclaim by the allocating task (node short of memory) */
	MEM_STALL_COMPACTION,   /* direct compaction */
	MEM_STALL_SWAPIN,       /* a fault that read a page back from swap */
	MEM_STALL_NR,
};

/* Which limit an OOM kill enforced. */
enum mem_oom_scope {
	MEM_OOM_GLOBAL,
	MEM_OOM_MEMCG,
	MEM_OOM_SCOPE_NR,
};

/* mmap kinds */
enum mem_map_kind {
	MEM_MAP_ANON,   /* private anonymous */
	MEM_MAP_SHARED, /* MAP_SHARED, anonymous or file */
	MEM_MAP_FILE,   /* private file-backed */
	MEM_MAP_NR,
};

/* Workload slots: the per-CPU cgroup_stats array has one element per slot, cgroup_slots maps a cgroup
 * id to its slot. User space frees the slot of a dead cgroup (zeroes it, pushes it to free_slots). */
#define MEM_SLOTS 4096

/* Per cgroup, in a per-CPU array element: plain increments, summed by user space. */
struct mem_cgroup_stats {
	__u64 faults;       /* user page faults (exceptions:page_fault_user) */
	__u64 major_faults; /* completed user faults that needed I/O */
	__u64 mapped[MEM_MAP_NR]; /* bytes of successful mmap calls */
	__u64 unmapped;     /* bytes of successful munmap calls, page-rounded */
	__u64 brk_grown;    /* heap growth through brk */
	__u64 brk_shrunk;
};

/* Node-wide counters (a per-CPU array of one); the node's page faults are counted in struct mem_cpu. */
struct mem_node_stats {
	__u64 major_faults;
	__u64 oom_kills[MEM_OOM_SCOPE_NR];
};

/* The `cpus` array: element 0 holds the slot epoch (user space bumps it when it frees slots), element
 * 1 + n the line of CPU n: the workload slot of the task that last counted on that CPU, keyed by that
 * task, and the page faults counted there. The faults of the slot wait in `pending` and are added to its
 * cgroup_stats when a task of another cgroup counts on the CPU; `moves` is odd while that happens, so
 * that user space can tell a consistent read. The used fields sit in the middle of 128 bytes: whatever
 * the array's alignment, no cache line holds those of two elements (no false sharing between CPUs). */
struct mem_cpu {
	__u64 pad_before[7];
	__u64 task;      /* the task (its address), */
	__u64 css_set;   /* its css_set then, */
	__u32 tid;       /* and its thread id (a new task may take the address of an exited one) */
	__u32 slot;      /* the slot of its cgroup; SCRY_NO_SLOT: none */
	__u64 cgroup_id; /* that cgroup */
	__u64 epoch;     /* the slot epoch when the slot was looked up (element 0: the epoch) */
	__u64 faults;    /* all user page faults counted on this CPU */
	__u64 pending;   /* faults of `slot` not yet in its cgroup_stats */
	__u64 moves;     /* pending moved into cgroup_stats, twice per move */
	__u64 pad_after;
};

struct mem_stall_key {
	__u64 cgroup_id;
	__u32 kind;
	__u32 pad;
};

struct mem_oom_key {
	__u64 cgroup_id;
	__u32 scope;
	__u32 pad;
};

#define MEM_COMM_LEN 16

/* One OOM kill, sent to user space for the log. Sizes in bytes. */
struct mem_oom_event {
	__u64 cgroup_id; /* the victim's cgroup v2 id */
	__u64 total_vm;
	__u64 anon_rss;
	__u64 file_rss;
	__u64 shmem_rss;
	__u64 pgtables;
	__u32 pid;       /* the victim's process id */
	__u32 tid;
	__s32 oom_score_adj;
	__u32 scope;     /* enum mem_oom_scope */
	__u32 killer_pid; /* the task that ran the OOM killer */
	__u32 details;   /* 1 when the victim's task was seen (memory and score fields are valid) */
	char comm[MEM_COMM_LEN];
	char killer_comm[MEM_COMM_LEN];
};

enum mem_lost_reason {
	MEM_LOST_CGROUP_STATS_FULL,
	MEM_LOST_STALLS_FULL,
	MEM_LOST_OOM_FULL,
	MEM_LOST_OOM_EVENTS,
	MEM_LOST_PENDING_NO_MEMORY,
	MEM_LOST_NR,
};

#endif /* SCRY_MEM_SLI_H */
