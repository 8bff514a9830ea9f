// Block I/O: per-disk latency, sizes and errors from the request tracepoints, per-cgroup latency,
// and page cache events. Each hook has several programs, one per attach mode; user space loads the
// best one the running kernel accepts (see libcommon's loader).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#include "block.h"
#include "scry_filter.bpf.h"
#include "scry_hist.bpf.h"
#include "scry_lost.bpf.h"
#include "scry_maps.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by user space before load. */
const volatile bool track_cgroups = false;
/* Kernels before 5.11 pass (struct request_queue *, struct request *) to block_rq_insert/issue/merge;
 * user space reads the prototype from BTF. */
const volatile bool rq_hooks_have_queue_arg = false;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1 << BLOCK_INFLIGHT_BITS);
	__type(key, __u32); /* inflight_slot() of the struct request * */
	__type(value, struct block_inflight);
} inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct block_disk_key);
	__type(value, struct block_disk_stats);
} disk_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct block_error_key);
	__type(value, __u64);
} errors SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct block_cgroup_key);
	__type(value, struct scry_hist);
} cgroup_latency SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PAGE_CACHE_NR);
	__type(key, __u32);
	__type(value, __u64);
} page_cache SEC(".maps");

SCRY_DEFINE_LOST_MAP(LOST_NR);

static const struct block_disk_stats zero_stats;
static const struct scry_hist zero_hist;
static const __u64 zero_count;

/* struct request before 6.0 had its own gendisk pointer. */
struct request___with_rq_disk {
	struct gendisk *rq_disk;
} __attribute__((preserve_access_index));

/* Field reads from the kernel. BTF-typed hooks (tp_btf, fentry) may load fields directly, which is
 * much cheaper than a probe-read helper call; raw_tp and kprobe hooks must use the helper. The
 * `direct` argument is a constant at each call site, so each program keeps one of the two. */
#define RQ_READ(direct, ptr, field) ((direct) ? (ptr)->field : BPF_CORE_READ(ptr, field))

static __always_inline __u32 rq_dev(struct request *rq, bool direct)
{
	struct request___with_rq_disk *old = (void *)rq;
	struct gendisk *disk;

	if (bpf_core_field_exists(old->rq_disk)) {
		disk = RQ_READ(direct, old, rq_disk);
	} else {
		struct request_queue *q = RQ_READ(direct, rq, q);

		disk = RQ_READ(direct, q, disk);
	}
	if (!disk)
		return 0;
	return ((__u32)RQ_READ(direct, disk, major) << 20) | (__u32)RQ_READ(direct, disk, first_minor);
}

/* Grouped as the classic tracepoints' rwbs groups them, so that every attach mode labels alike. */
static __always_inline __u32 op_from_flags(__u32 cmd_flags)
{
	switch (cmd_flags & 0xff) { /* REQ_OP_MASK */
	case 0: return BLOCK_OP_READ;
	case 1: return BLOCK_OP_WRITE;
	case 2: return BLOCK_OP_FLUSH;
	case 3: return BLOCK_OP_DISCARD;
	case 5: return BLOCK_OP_DISCARD; /* SECURE_ERASE: rwbs "DE" */
	case 9: return BLOCK_OP_WRITE;   /* WRITE_ZEROES: rwbs "WZ" */
	default: return BLOCK_OP_OTHER;
	}
}

/* rwbs as the classic tracepoints print it: an optional F (preflush), then the operation. */
static __always_inline __u32 op_from_rwbs(const char *rwbs)
{
	char c = rwbs[0];

	if (c == 'F' && (rwbs[1] == 'W' || rwbs[1] == 'R' || rwbs[1] == 'D'))
		c = rwbs[1];
	switch (c) {
	case 'R': return BLOCK_OP_READ;
	case 'W': return BLOCK_OP_WRITE;
	case 'D': return BLOCK_OP_DISCARD;
	case 'F': return BLOCK_OP_FLUSH;
	default: return BLOCK_OP_OTHER;
	}
}

/* blk_status_t -> errno, as the kernel's blk_errors[] table maps them. */
static const __s32 blk_status_errno[] = {
	0,   /* OK */
	95,  /* NOTSUPP: EOPNOTSUPP */
	110, /* TIMEOUT: ETIMEDOUT */
	28,  /* NOSPC: ENOSPC */
	67,  /* TRANSPORT: ENOLINK */
	121, /* TARGET: EREMOTEIO */
	52,  /* RESV_CONFLICT (NEXUS): EBADE */
	61,  /* MEDIUM: ENODATA */
	84,  /* PROTECTION: EILSEQ */
	12,  /* RESOURCE: ENOMEM */
	5,   /* IOERR: EIO */
	78,  /* DM_REQUEUE: EREMCHG */
	11,  /* AGAIN: EAGAIN */
	16,  /* DEV_RESOURCE: EBUSY */
	109, /* ZONE_OPEN_RESOURCE: ETOOMANYREFS */
	75,  /* ZONE_ACTIVE_RESOURCE: EOVERFLOW */
	19,  /* OFFLINE: ENODEV */
	62,  /* DURATION_LIMIT: ETIME */
};

static __always_inline __s32 errno_of_status(__u8 status)
{
	if (status < sizeof(blk_status_errno) / sizeof(blk_status_errno[0]))
		return blk_status_errno[status];
	return 5; /* EIO, as the kernel maps unknown statuses */
}

static __always_inline void count_error(__u32 dev, __u32 op, __s32 error)
{
	struct block_error_key key = { .dev = dev, .op = op, .error = error };
	__u64 *n = scry_lookup_or_init(&errors, &key, &zero_count);

	if (n)
		__sync_fetch_and_add(n, 1);
	else
		scry_count_lost(&lost_events, LOST_ERRORS_FULL);
}

static __always_inline struct block_disk_stats *disk_stats_of(__u32 dev, __u32 op)
{
	struct block_disk_key key = { .dev = dev, .op = op };
	struct block_disk_stats *s = scry_lookup_or_init(&disk_stats, &key, &zero_stats);

	if (!s)
		scry_count_lost(&lost_events, LOST_DISK_STATS_FULL);
	return s;
}

/* The low half of the request's address as a plain number. The verifier forbids shifts and products
 * of a BTF-typed pointer (tp_btf, fentry) but lets a privileged program copy its low 32 bits; in the
 * other modes the pointer is a number already, and the same code gives the same slot. */
static __always_inline __u64 rq_low32(struct request *rq)
{
	__u64 lo;

	asm volatile("r0 = %[rq]; w0 = w0; %[lo] = r0" : [lo] "=r"(lo) : [rq] "r"(rq) : "r0");
	return lo;
}

/* The slot of a request. Requests sit in arrays of equal, cache-line aligned structs: a
 * multiplicative hash spreads such an arithmetic progression evenly over the slots. Two requests
 * in flight in the same slot are told apart by their full address. */
static __always_inline struct block_inflight *inflight_slot(struct request *rq)
{
	__u32 idx = ((rq_low32(rq) >> 6) * 0x9E3779B97F4A7C15ULL) >> (64 - BLOCK_INFLIGHT_BITS);

	return bpf_map_lookup_elem(&inflight, &idx);
}

/* Takes the slot for rq. Another request still in it loses its latency (counted): a collision. */
static __always_inline void inflight_claim(struct block_inflight *in, __u64 rq, __u64 insert_ns, __u64 issue_ns)
{
	if (in->rq && in->rq != rq)
		scry_count_lost(&lost_events, LOST_INFLIGHT_FULL);
	in->rq = rq;
	in->insert_ns = insert_ns;
	in->issue_ns = issue_ns;
	in->cgroup_id = 0;
	if (track_cgroups) {
		__u64 cgroup_id = bpf_get_current_cgroup_id();

		/* Outside the process filter: no per-cgroup latency (the disk's numbers still count it). */
		if (scry_observed_current(cgroup_id))
			in->cgroup_id = cgroup_id;
	}
	in->partial_bytes = 0;
}

static __always_inline void on_insert(struct request *rq)
{
	struct block_inflight *in = inflight_slot(rq);

	if (in)
		inflight_claim(in, (__u64)rq, bpf_ktime_get_ns(), 0);
}

static __always_inline void on_issue(struct request *rq)
{
	struct block_inflight *in = inflight_slot(rq);
	__u64 now = bpf_ktime_get_ns();

	if (!in)
		return;
	if (in->rq == (__u64)rq)
		in->issue_ns = now; /* inserted earlier: keep its insert time and cgroup */
	else
		inflight_claim(in, (__u64)rq, 0, now);
}

static __always_inline void record_cgroup(__u64 cgroup_id, __u32 dev, __u64 ns)
{
	struct block_cgroup_key key = { .cgroup_id = cgroup_id, .dev = dev };
	struct scry_hist *h = scry_lookup_or_init(&cgroup_latency, &key, &zero_hist);

	if (h)
		scry_hist_add_latency(h, ns);
	else
		scry_count_lost(&lost_events, LOST_CGROUP_FULL);
}

/* One completion of nr_bytes. rq is NULL when the hook gives no request (classic tracepoint):
 * then there is no latency, and every partial completion counts as a request. */
static __always_inline void on_complete(struct request *rq, __u32 dev, __u32 op, __s32 error, __u32 nr_bytes,
					__u32 data_len)
{
	struct block_inflight *in = NULL;
	struct block_disk_stats *s;
	__u64 bytes = nr_bytes, insert_ns = 0, issue_ns = 0, cgroup_id = 0, now;

	if (!dev)
		return;
	if (rq) {
		in = inflight_slot(rq);
		if (in && in->rq != (__u64)rq)
			in = NULL; /* not seen at insert/issue, or its slot was taken since */
		if (data_len > nr_bytes) {
			/* A partial completion: the request goes on; its bytes count at the end. */
			if (in)
				in->partial_bytes += nr_bytes;
			return;
		}
		if (in) {
			bytes += in->partial_bytes;
			insert_ns = in->insert_ns;
			issue_ns = in->issue_ns;
			cgroup_id = in->cgroup_id;
			in->rq = 0; /* free the slot even when disk_stats is full */
		}
	}
	if (error)
		count_error(dev, op, error);
	s = disk_stats_of(dev, op);
	if (s)
		scry_hist_add_size(&s->size, bytes);
	if (!in)
		return;

	now = bpf_ktime_get_ns();
	if (s && insert_ns && issue_ns >= insert_ns)
		scry_hist_add_latency(&s->queue, issue_ns - insert_ns);
	if (s && issue_ns)
		scry_hist_add_latency(&s->service, now - issue_ns);
	if (track_cgroups) {
		__u64 start = insert_ns ? insert_ns : issue_ns;

		if (start && cgroup_id)
			record_cgroup(cgroup_id, dev, now - start);
	}
}

static __always_inline void on_complete_rq(struct request *rq, __u8 status, __u32 nr_bytes, bool direct)
{
	on_complete(rq, rq_dev(rq, direct), op_from_flags(RQ_READ(direct, rq, cmd_flags)), errno_of_status(status),
		    nr_bytes, RQ_READ(direct, rq, __data_len));
}

/* The request argument of block_rq_insert/issue/merge, whichever prototype the kernel has. */
static __always_inline struct request *rq_arg(__u64 *args)
{
	return (struct request *)(rq_hooks_have_queue_arg ? args[1] : args[0]);
}

/* block_rq_insert */
SEC("tp_btf/block_rq_insert")
int rq_insert_btf(__u64 *ctx)
{
	on_insert(rq_arg(ctx));
	return 0;
}

SEC("raw_tp/block_rq_insert")
int rq_insert_raw(struct bpf_raw_tracepoint_args *ctx)
{
	on_insert(rq_arg(ctx->args));
	return 0;
}

/* block_rq_merge: the request was merged into another and will never be issued; forget it, or a
 * later request reusing the same struct request would inherit its insert time. */
static __always_inline void on_merge(struct request *rq)
{
	struct block_inflight *in = inflight_slot(rq);

	if (in && in->rq == (__u64)rq)
		in->rq = 0;
}

SEC("tp_btf/block_rq_merge")
int rq_merge_btf(__u64 *ctx)
{
	on_merge(rq_arg(ctx));
	return 0;
}

SEC("raw_tp/block_rq_merge")
int rq_merge_raw(struct bpf_raw_tracepoint_args *ctx)
{
	on_merge(rq_arg(ctx->args));
	return 0;
}

/* block_rq_issue; blk_mq_start_request is where it fires */
SEC("tp_btf/block_rq_issue")
int rq_issue_btf(__u64 *ctx)
{
	on_issue(rq_arg(ctx));
	return 0;
}

SEC("raw_tp/block_rq_issue")
int rq_issue_raw(struct bpf_raw_tracepoint_args *ctx)
{
	on_issue(rq_arg(ctx->args));
	return 0;
}

SEC("fentry/blk_mq_start_request")
int BPF_PROG(rq_issue_fentry, struct request *rq)
{
	on_issue(rq);
	return 0;
}

SEC("kprobe/blk_mq_start_request")
int BPF_KPROBE(rq_issue_kprobe, struct request *rq)
{
	on_issue(rq);
	return 0;
}

/* block_rq_complete; blk_update_request is where it fires */
SEC("tp_btf/block_rq_complete")
int BPF_PROG(rq_complete_btf, struct request *rq, __u8 status, unsigned int nr_bytes)
{
	on_complete_rq(rq, status, nr_bytes, true);
	return 0;
}

SEC("raw_tp/block_rq_complete")
int rq_complete_raw(struct bpf_raw_tracepoint_args *ctx)
{
	on_complete_rq((struct request *)ctx->args[0], (__u8)ctx->args[1], (__u32)ctx->args[2], false);
	return 0;
}

SEC("tracepoint/block/block_rq_complete")
int rq_complete_tp(struct trace_event_raw_block_rq_completion *ctx)
{
	char rwbs[4];
	__s32 error = BPF_CORE_READ(ctx, error);

	bpf_probe_read_kernel(rwbs, sizeof(rwbs), ctx->rwbs);
	on_complete(NULL, BPF_CORE_READ(ctx, dev), op_from_rwbs(rwbs), error < 0 ? -error : error,
		    BPF_CORE_READ(ctx, nr_sector) << 9, 0);
	return 0;
}

SEC("fentry/blk_update_request")
int BPF_PROG(rq_complete_fentry, struct request *rq, __u8 status, unsigned int nr_bytes)
{
	on_complete_rq(rq, status, nr_bytes, true);
	return 0;
}

SEC("kprobe/blk_update_request")
int BPF_KPROBE(rq_complete_kprobe, struct request *rq, __u8 status, unsigned int nr_bytes)
{
	on_complete_rq(rq, status, nr_bytes, false);
	return 0;
}

/* Page cache */
static __always_inline void count_page_cache(__u32 counter)
{
	__u64 *n = bpf_map_lookup_elem(&page_cache, &counter);

	if (n)
		*n += 1;
}

SEC("fentry/folio_mark_accessed")
int BPF_PROG(page_access_fentry)
{
	count_page_cache(PAGE_CACHE_ACCESSES);
	return 0;
}

SEC("kprobe/folio_mark_accessed")
int BPF_KPROBE(page_access_kprobe)
{
	count_page_cache(PAGE_CACHE_ACCESSES);
	return 0;
}

SEC("fentry/mark_page_accessed")
int BPF_PROG(page_access_old_fentry)
{
	count_page_cache(PAGE_CACHE_ACCESSES);
	return 0;
}

SEC("kprobe/mark_page_accessed")
int BPF_KPROBE(page_access_old_kprobe)
{
	count_page_cache(PAGE_CACHE_ACCESSES);
	return 0;
}

SEC("tp_btf/mm_filemap_add_to_page_cache")
int page_add_btf(__u64 *ctx)
{
	count_page_cache(PAGE_CACHE_ADDITIONS);
	return 0;
}

SEC("tracepoint/filemap/mm_filemap_add_to_page_cache")
int page_add_tp(void *ctx)
{
	count_page_cache(PAGE_CACHE_ADDITIONS);
	return 0;
}

SEC("tp_btf/writeback_dirty_folio")
int page_dirty_btf(__u64 *ctx)
{
	count_page_cache(PAGE_CACHE_DIRTIED);
	return 0;
}

SEC("tracepoint/writeback/writeback_dirty_folio")
int page_dirty_tp(void *ctx)
{
	count_page_cache(PAGE_CACHE_DIRTIED);
	return 0;
}

/* Kernels before 5.17 named it writeback_dirty_page. */
SEC("tracepoint/writeback/writeback_dirty_page")
int page_dirty_old_tp(void *ctx)
{
	count_page_cache(PAGE_CACHE_DIRTIED);
	return 0;
}
