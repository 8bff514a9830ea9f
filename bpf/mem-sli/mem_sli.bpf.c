// Memory SLIs per workload: reclaim and compaction stalls, swap-ins, page faults, OOM kills and
// process VM growth. Each hook has one program per attach mode it can be reached in; user space loads
// the best one the running kernel accepts (see libcommon's loader).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#include "mem_sli.h"
#include "scry_filter.bpf.h"
#include "scry_hist.bpf.h"
#include "scry_lost.bpf.h"
#include "scry_maps.bpf.h"

#define SCRY_SLOTS MEM_SLOTS
#include "scry_slots.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by user space before load. */
const volatile __u64 page_size = 4096;
/* mark_victim passes the victim's task_struct since 6.8 (before: only its pid); read from BTF. */
const volatile bool victim_arg_is_task = false;

#define PF_KTHREAD 0x00200000

/* Per-workload counters live in a per-CPU array indexed by a small slot per cgroup, so that the hot
 * hooks (every page fault) do no hash lookup: each CPU keeps the slot of the task that last counted on
 * it (`cpus`), and cgroup_slots is looked up only when a task of another cgroup counts there. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MEM_SLOTS);
	__type(key, __u32); /* slot */
	__type(value, struct mem_cgroup_stats);
} cgroup_stats SEC(".maps");

/* struct mem_cpu: the slot epoch, then a line per CPU. A plain array that user space sizes to the
 * possible CPUs: small, it is kmalloc'ed into the kernel's direct map, which costs the fault hook less
 * to touch than the vmalloc'ed pages behind per-CPU maps (with page table isolation the TLB starts
 * empty at every kernel entry), and the epoch shares the CPUs' lines' pages. A CPU's line is written
 * only by programs that run on that CPU with preemption off. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1 + 1024);
	__type(key, __u32); /* 0: the epoch; 1 + CPU */
	__type(value, struct mem_cpu);
} cpus SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mem_node_stats);
} node_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct mem_stall_key);
	__type(value, struct scry_hist);
} stalls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MEM_STALL_NR);
	__type(key, __u32);
	__type(value, struct scry_hist);
} node_stalls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct mem_oom_key);
	__type(value, __u64);
} oom_kills SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} oom_events SEC(".maps");

/* Per thread: when its current stalls began, and which reclaim it did last (to tell a memcg OOM from
 * a global one: the OOM killer runs right after the reclaim that failed). LRU: threads that exit
 * mid-stall need no cleanup. */
struct mem_task_state {
	__u64 start[MEM_STALL_NR];
	__u32 last_reclaim;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32); /* thread id */
	__type(value, struct mem_task_state);
} task_state SEC(".maps");

/* A syscall between its enter and exit tracepoints. */
struct mem_pending {
	__u64 value; /* mmap/munmap: page-rounded length; brk: the break before the call */
	__u32 kind;  /* mmap: enum mem_map_kind */
	__u32 armed; /* set at enter, cleared at exit */
};

/* Per thread, in task local storage: created at the thread's first call and freed with it, so enter and
 * exit only write and read the thread's own entry (a hash keyed by thread id took an insert and a
 * delete, under one lock for all CPUs, per call). */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct mem_pending);
} pending SEC(".maps");

SCRY_DEFINE_LOST_MAP(MEM_LOST_NR);

static const struct mem_task_state zero_state;
static const struct scry_hist zero_hist;
static const __u64 zero_count;

static __always_inline bool observed_current(__u64 *cgroup_id)
{
	*cgroup_id = bpf_get_current_cgroup_id();
	return scry_observed_current(*cgroup_id);
}

static __always_inline struct mem_cgroup_stats *slot_stats(__u32 slot)
{
	return slot < MEM_SLOTS ? bpf_map_lookup_elem(&cgroup_stats, &slot) : NULL;
}

#define compiler_barrier() asm volatile("" ::: "memory")

/* Adds the faults pending on this CPU to their slot's counters. If slots were freed since the slot was
 * looked up (the epoch moved), they go only if it is still their cgroup's. */
static __always_inline void move_pending(struct mem_cpu *c, __u64 epoch)
{
	struct mem_cgroup_stats *s;
	__u32 slot = c->slot;
	__u64 *owner;

	if (!c->pending)
		return;
	if (c->epoch != epoch) {
		owner = bpf_map_lookup_elem(&slot_owners, &slot);
		if (!owner || *owner != c->cgroup_id)
			slot = SCRY_NO_SLOT; /* the cgroup is gone, and its series with it */
	}
	s = slot_stats(slot);
	c->moves++; /* odd: user space reads again */
	compiler_barrier();
	if (s)
		s->faults += c->pending;
	c->pending = 0;
	compiler_barrier();
	c->moves++;
}

/* Keys this CPU's line by the current task; when that is of another cgroup (or slots were freed
 * since), the pending faults go to their slot and the line takes the new cgroup's slot.
 * cgroup_id: the current task's, 0 if not known yet. */
static __noinline void rekey(struct mem_cpu *c, __u64 cgroup_id, __u64 epoch)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();

	if (!cgroup_id)
		cgroup_id = bpf_get_current_cgroup_id();
	if (cgroup_id != c->cgroup_id || epoch != c->epoch) {
		move_pending(c, epoch);
		c->slot = scry_slot_of(cgroup_id);
		c->cgroup_id = c->slot == SCRY_NO_SLOT ? 0 : cgroup_id; /* none: tried again at the next rekey */
		c->epoch = epoch;
	}
	c->task = (__u64)t;
	c->css_set = (__u64)BPF_CORE_READ(t, cgroups);
	c->tid = (__u32)bpf_get_current_pid_tgid();
}

/* This CPU's line, keyed by the current task: its address, thread id and css_set, loads from a
 * task_struct that the kernel has just touched (no cgroup id, four dependent loads, on the hot path).
 * A task keeps its cgroup while it keeps its css_set; a css_set freed and allocated again at the same
 * address would need the task to leave the cgroup and come back with no fault on this CPU between.
 * btf: direct loads (tp_btf and fexit programs); else probe reads. */
static __always_inline struct mem_cpu *cpu_line(__u64 cgroup_id, bool btf)
{
	__u32 line = 1 + bpf_get_smp_processor_id(), zero = 0;
	struct mem_cpu *c = bpf_map_lookup_elem(&cpus, &line);
	struct mem_cpu *epoch = bpf_map_lookup_elem(&cpus, &zero);
	struct task_struct *t;
	__u64 css_set;
	__u32 tid;

	if (!c || !epoch)
		return NULL;
	if (btf) {
		t = bpf_get_current_task_btf();
		css_set = (__u64)t->cgroups;
		tid = t->pid;
	} else {
		t = (struct task_struct *)bpf_get_current_task();
		css_set = (__u64)BPF_CORE_READ(t, cgroups);
		tid = (__u32)bpf_get_current_pid_tgid();
	}
	if (c->task != (__u64)t || c->tid != tid || c->css_set != css_set || c->epoch != epoch->epoch)
		rekey(c, cgroup_id, epoch->epoch);
	return c;
}

/* The counters of the current task's cgroup (NULL if it has no slot: counted lost). cgroup_id: its
 * id, when the caller already has it (0: not known). */
static __always_inline struct mem_cgroup_stats *current_stats(__u64 cgroup_id, bool btf)
{
	struct mem_cpu *c = cpu_line(cgroup_id, btf);

	if (!c)
		return NULL;
	if (c->slot == SCRY_NO_SLOT) {
		scry_count_lost(&lost_events, MEM_LOST_CGROUP_STATS_FULL);
		return NULL;
	}
	return slot_stats(c->slot);
}

static __always_inline struct mem_node_stats *node(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&node_stats, &zero);
}

/* Stalls */

static __always_inline void stall_begin(__u32 kind)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct mem_task_state *st;
	__u64 cgroup_id;
	bool watch = observed_current(&cgroup_id);
	bool reclaim = kind == MEM_STALL_MEMCG_RECLAIM || kind == MEM_STALL_DIRECT_RECLAIM;

	/* A reclaim's kind is kept for every task: the OOM victim may be observed when the killer is not. */
	if (!watch && !reclaim)
		return;
	st = scry_lookup_or_init(&task_state, &tid, &zero_state);
	if (!st)
		return;
	if (reclaim)
		st->last_reclaim = kind;
	if (watch && kind < MEM_STALL_NR)
		st->start[kind] = bpf_ktime_get_ns();
}

static __always_inline void stall_end(__u32 kind)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct mem_task_state *st = bpf_map_lookup_elem(&task_state, &tid);
	struct mem_stall_key key = { .kind = kind };
	struct scry_hist *h;
	__u64 start, ns;

	if (!st || kind >= MEM_STALL_NR)
		return;
	start = st->start[kind];
	if (!start)
		return; /* began before we attached, or not observed */
	st->start[kind] = 0;
	ns = bpf_ktime_get_ns() - start;
	key.cgroup_id = bpf_get_current_cgroup_id();
	h = scry_lookup_or_init(&stalls, &key, &zero_hist);
	if (h)
		scry_hist_add_latency(h, ns);
	else
		scry_count_lost(&lost_events, MEM_LOST_STALLS_FULL);
	h = bpf_map_lookup_elem(&node_stalls, &kind);
	if (h)
		scry_hist_add_latency(h, ns);
}

/* Kernel threads (kcompactd) compact in the background: nobody waits for that. */
static __always_inline bool in_kthread(void)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();

	return BPF_CORE_READ(t, flags) & PF_KTHREAD;
}

#define STALL_PROGS(name, tp_category, tp, kind)                    \
	SEC("tp_btf/" #tp) int name##_btf(void *ctx) { STALL_BODY(kind) return 0; } \
	SEC("raw_tp/" #tp) int name##_raw(void *ctx) { STALL_BODY(kind) return 0; } \
	SEC("tracepoint/" #tp_category "/" #tp) int name##_tp(void *ctx) { STALL_BODY(kind) return 0; }

#define STALL_BODY(kind) stall_begin(kind);
STALL_PROGS(memcg_reclaim_begin, vmscan, mm_vmscan_memcg_reclaim_begin, MEM_STALL_MEMCG_RECLAIM)
STALL_PROGS(direct_reclaim_begin, vmscan, mm_vmscan_direct_reclaim_begin, MEM_STALL_DIRECT_RECLAIM)
#undef STALL_BODY
#define STALL_BODY(kind) stall_end(kind);
STALL_PROGS(memcg_reclaim_end, vmscan, mm_vmscan_memcg_reclaim_end, MEM_STALL_MEMCG_RECLAIM)
STALL_PROGS(direct_reclaim_end, vmscan, mm_vmscan_direct_reclaim_end, MEM_STALL_DIRECT_RECLAIM)
#undef STALL_BODY
#define STALL_BODY(kind) if (!in_kthread()) stall_begin(kind);
STALL_PROGS(compaction_begin, compaction, mm_compaction_begin, MEM_STALL_COMPACTION)
#undef STALL_BODY
#define STALL_BODY(kind) if (!in_kthread()) stall_end(kind);
STALL_PROGS(compaction_end, compaction, mm_compaction_end, MEM_STALL_COMPACTION)
#undef STALL_BODY

/* Swap-in: a fault on a swapped-out page (do_swap_page). No tracepoint: fentry/fexit or kprobes. */
SEC("fentry/do_swap_page")
int swapin_begin_fentry(void *ctx)
{
	stall_begin(MEM_STALL_SWAPIN);
	return 0;
}

SEC("kprobe/do_swap_page")
int swapin_begin_kprobe(void *ctx)
{
	stall_begin(MEM_STALL_SWAPIN);
	return 0;
}

SEC("fexit/do_swap_page")
int swapin_end_fexit(void *ctx)
{
	stall_end(MEM_STALL_SWAPIN);
	return 0;
}

SEC("kretprobe/do_swap_page")
int swapin_end_kretprobe(void *ctx)
{
	stall_end(MEM_STALL_SWAPIN);
	return 0;
}

/* Page faults */

/* The hottest hook: no cgroup id (unless a filter needs it), no hash lookup, no atomic, and one
 * cache line of memory of its own (the CPU's line) while the same task faults. */
static __always_inline void on_user_fault(bool btf)
{
	struct mem_cpu *c;
	__u64 cgroup_id = 0;

	if (scry_filter_enabled && !observed_current(&cgroup_id))
		return;
	c = cpu_line(cgroup_id, btf);
	if (!c)
		return;
	c->faults++;
	if (c->slot != SCRY_NO_SLOT)
		c->pending++;
	else
		scry_count_lost(&lost_events, MEM_LOST_CGROUP_STATS_FULL);
}

SEC("tp_btf/page_fault_user")
int fault_btf(void *ctx)
{
	on_user_fault(true);
	return 0;
}

SEC("raw_tp/page_fault_user")
int fault_raw(void *ctx)
{
	on_user_fault(false);
	return 0;
}

SEC("tracepoint/exceptions/page_fault_user")
int fault_tp(void *ctx)
{
	on_user_fault(false);
	return 0;
}

/* Major faults as the kernel accounts them (mm_account_fault): a user fault that completed (no retry
 * pending) and needed I/O, or the retry of one. Needs the fault flags and the result together: fexit. */
SEC("fexit/handle_mm_fault")
int BPF_PROG(major_fault_fexit, struct vm_area_struct *vma, unsigned long address, unsigned int flags,
	     struct pt_regs *regs, vm_fault_t ret)
{
	struct mem_cgroup_stats *s;
	struct mem_node_stats *n;
	__u64 cgroup_id;

	if (!(flags & bpf_core_enum_value(enum fault_flag, FAULT_FLAG_USER)))
		return 0;
	if (ret & bpf_core_enum_value(enum vm_fault_reason, VM_FAULT_RETRY))
		return 0;
	if (!(ret & bpf_core_enum_value(enum vm_fault_reason, VM_FAULT_MAJOR)) &&
	    !(flags & bpf_core_enum_value(enum fault_flag, FAULT_FLAG_TRIED)))
		return 0;
	if (!observed_current(&cgroup_id))
		return 0;
	s = current_stats(cgroup_id, true);
	if (s)
		s->major_faults++;
	n = node();
	if (n)
		n->major_faults++;
	return 0;
}

/* OOM kills */

/* mm_struct before 6.2 kept its RSS counters in a struct of atomics. */
struct mm_rss_stat___old {
	atomic_long_t count[4];
} __attribute__((preserve_access_index));

struct mm_struct___old {
	struct mm_rss_stat___old rss_stat;
} __attribute__((preserve_access_index));

static __always_inline __u64 mm_pages(struct mm_struct *mm, int member)
{
	struct mm_struct___old *old = (void *)mm;
	long v = 0;

	/* Asked of mm_struct's field, not with bpf_core_type_exists(mm_rss_stat___old): a type missing
	 * from vmlinux makes libbpf (< 1.2) list module BTFs, which needs CAP_SYS_ADMIN, and fail the
	 * load without it (the systemd unit grants CAP_BPF and CAP_PERFMON only). */
	if (bpf_core_field_exists(old->rss_stat)) {
		bpf_core_read(&v, sizeof(v), &old->rss_stat.count[member].counter);
	} else {
		bpf_core_read(&v, sizeof(v), &mm->rss_stat[member].count);
	}
	return v > 0 ? (__u64)v : 0;
}

/* The tracepoint's fields since 6.8 (in kB); absent before. */
struct trace_event_raw_mark_victim___new {
	unsigned long total_vm;
	unsigned long anon_rss;
	unsigned long file_rss;
	unsigned long shmem_rss;
	unsigned long pgtables;
	short oom_score_adj;
} __attribute__((preserve_access_index));

static __always_inline void victim_details(struct mem_oom_event *ev, struct task_struct *victim)
{
	struct mm_struct *mm = BPF_CORE_READ(victim, mm);

	ev->oom_score_adj = BPF_CORE_READ(victim, signal, oom_score_adj);
	BPF_CORE_READ_STR_INTO(&ev->comm, victim, comm);
	if (mm) {
		ev->total_vm = BPF_CORE_READ(mm, total_vm) * page_size;
		ev->anon_rss = mm_pages(mm, MM_ANONPAGES) * page_size;
		ev->file_rss = mm_pages(mm, MM_FILEPAGES) * page_size;
		ev->shmem_rss = mm_pages(mm, MM_SHMEMPAGES) * page_size;
		ev->pgtables = BPF_CORE_READ(mm, pgtables_bytes.counter);
	}
	ev->details = 1;
}

/* victim: the victim's task, or NULL when the hook gave only its thread id (tid). tp: the classic
 * tracepoint's record, for the fields it has. */
static __always_inline void on_victim(struct task_struct *victim, __u32 tid, void *tp)
{
	struct task_struct *cur = (struct task_struct *)bpf_get_current_task();
	__u32 cur_tid = (__u32)bpf_get_current_pid_tgid();
	struct mem_task_state *st = bpf_map_lookup_elem(&task_state, &cur_tid);
	struct mem_oom_key key = {};
	struct mem_oom_event *ev;
	struct mem_node_stats *n;
	__u64 cgroup_id, *count;
	__u32 tgid, scope;

	if (!victim && tid == cur_tid)
		victim = cur; /* the task that ran the OOM killer picked itself */
	if (victim) {
		tid = BPF_CORE_READ(victim, pid);
		tgid = BPF_CORE_READ(victim, tgid);
		cgroup_id = BPF_CORE_READ(victim, cgroups, dfl_cgrp, kn, id);
	} else {
		/* Only the tid is known: the killer's cgroup stands in (the limit it hit covers it). */
		tgid = tid;
		cgroup_id = bpf_get_current_cgroup_id();
	}
	if (!scry_observed(cgroup_id, tgid))
		return;
	scope = st && st->last_reclaim == MEM_STALL_MEMCG_RECLAIM ? MEM_OOM_MEMCG : MEM_OOM_GLOBAL;

	key.cgroup_id = cgroup_id;
	key.scope = scope;
	count = scry_lookup_or_init(&oom_kills, &key, &zero_count);
	if (count)
		__sync_fetch_and_add(count, 1);
	else
		scry_count_lost(&lost_events, MEM_LOST_OOM_FULL);
	n = node();
	if (n)
		n->oom_kills[scope & 1]++;

	ev = bpf_ringbuf_reserve(&oom_events, sizeof(*ev), 0);
	if (!ev) {
		scry_count_lost(&lost_events, MEM_LOST_OOM_EVENTS);
		return;
	}
	__builtin_memset(ev, 0, sizeof(*ev));
	ev->cgroup_id = cgroup_id;
	ev->pid = tgid;
	ev->tid = tid;
	ev->scope = scope;
	ev->killer_pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(&ev->killer_comm, sizeof(ev->killer_comm));
	if (victim) {
		victim_details(ev, victim);
	} else if (tp && bpf_core_field_exists(((struct trace_event_raw_mark_victim___new *)tp)->anon_rss)) {
		struct trace_event_raw_mark_victim___new *rec = tp;

		ev->total_vm = BPF_CORE_READ(rec, total_vm) << 10;
		ev->anon_rss = BPF_CORE_READ(rec, anon_rss) << 10;
		ev->file_rss = BPF_CORE_READ(rec, file_rss) << 10;
		ev->shmem_rss = BPF_CORE_READ(rec, shmem_rss) << 10;
		ev->pgtables = BPF_CORE_READ(rec, pgtables) << 10;
		ev->oom_score_adj = BPF_CORE_READ(rec, oom_score_adj);
		ev->details = 1;
	}
	bpf_ringbuf_submit(ev, 0);
}

SEC("tp_btf/mark_victim")
int mark_victim_btf(__u64 *ctx)
{
	if (victim_arg_is_task)
		on_victim((struct task_struct *)ctx[0], 0, NULL);
	else
		on_victim(NULL, (__u32)ctx[0], NULL);
	return 0;
}

SEC("raw_tp/mark_victim")
int mark_victim_raw(struct bpf_raw_tracepoint_args *ctx)
{
	if (victim_arg_is_task)
		on_victim((struct task_struct *)ctx->args[0], 0, NULL);
	else
		on_victim(NULL, (__u32)ctx->args[0], NULL);
	return 0;
}

SEC("tracepoint/oom/mark_victim")
int mark_victim_tp(struct trace_event_raw_mark_victim *ctx)
{
	on_victim(NULL, BPF_CORE_READ(ctx, pid), ctx);
	return 0;
}

/* VM growth: mmap, munmap and brk, from the syscall tracepoints (enter keeps the request, exit
 * counts it if the call succeeded). */

static __always_inline void pending_enter(__u64 value, __u32 kind)
{
	struct mem_pending *p;
	__u64 cgroup_id;

	if (!observed_current(&cgroup_id))
		return;
	p = bpf_task_storage_get(&pending, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!p) { /* no memory for the thread's first entry */
		scry_count_lost(&lost_events, MEM_LOST_PENDING_NO_MEMORY);
		return;
	}
	p->value = value;
	p->kind = kind;
	p->armed = 1;
}

/* The pending request of this thread, taken; false if there is none. */
static __always_inline bool pending_take(struct mem_pending *out)
{
	struct mem_pending *p = bpf_task_storage_get(&pending, bpf_get_current_task_btf(), 0, 0);

	if (!p || !p->armed)
		return false;
	*out = *p;
	p->armed = 0;
	return true;
}

static __always_inline __u64 page_round(__u64 len)
{
	return (len + page_size - 1) & ~(page_size - 1);
}

#define MAP_SHARED_TYPE 0x01 /* MAP_SHARED and MAP_SHARED_VALIDATE (0x03) have this bit */
#define MAP_TYPE_MASK 0x0f
#define MAP_ANONYMOUS_FLAG 0x20

SEC("tracepoint/syscalls/sys_enter_mmap")
int mmap_enter_tp(struct trace_event_raw_sys_enter *ctx)
{
	__u64 flags = ctx->args[3];
	__u32 kind;

	if ((flags & MAP_TYPE_MASK) & MAP_SHARED_TYPE)
		kind = MEM_MAP_SHARED;
	else if (flags & MAP_ANONYMOUS_FLAG)
		kind = MEM_MAP_ANON;
	else
		kind = MEM_MAP_FILE;
	pending_enter(page_round(ctx->args[1]), kind);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_mmap")
int mmap_exit_tp(struct trace_event_raw_sys_exit *ctx)
{
	struct mem_cgroup_stats *s;
	struct mem_pending p;

	if (!pending_take(&p))
		return 0;
	if ((unsigned long)ctx->ret >= (unsigned long)-4095) /* -errno */
		return 0;
	s = current_stats(0, false);
	if (s && p.kind < MEM_MAP_NR)
		s->mapped[p.kind] += p.value;
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_munmap")
int munmap_enter_tp(struct trace_event_raw_sys_enter *ctx)
{
	pending_enter(page_round(ctx->args[1]), 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_munmap")
int munmap_exit_tp(struct trace_event_raw_sys_exit *ctx)
{
	struct mem_cgroup_stats *s;
	struct mem_pending p;

	if (!pending_take(&p) || ctx->ret != 0)
		return 0;
	s = current_stats(0, false);
	if (s)
		s->unmapped += p.value;
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_brk")
int brk_enter_tp(struct trace_event_raw_sys_enter *ctx)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();

	pending_enter(BPF_CORE_READ(t, mm, brk), 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_brk")
int brk_exit_tp(struct trace_event_raw_sys_exit *ctx)
{
	struct mem_cgroup_stats *s;
	struct mem_pending p;
	__u64 now = ctx->ret; /* the break after the call (the old one if it failed) */

	if (!pending_take(&p) || now == p.value)
		return 0;
	s = current_stats(0, false);
	if (!s)
		return 0;
	if (now > p.value)
		s->brk_grown += now - p.value;
	else
		s->brk_shrunk += p.value - now;
	return 0;
}
