// Reference probes for bench/block.py: what the building blocks of scry-block's hooks cost on this
// kernel and machine, measured the same way (kernel BPF stats). Not part of scry; never shipped.
// Each program does one thing on block_rq_issue or block_rq_complete, so that run_time/run_count of
// scry's programs can be compared with: an empty program (the floor: BPF stats' own sched_clock()
// pair plus the call), one bpf_ktime_get_ns(), one bpf_get_current_cgroup_id(), six
// BPF_CORE_READs (bpf_probe_read_kernel calls) vs the same six fields read directly through BTF,
// a hash map update keyed by the request pointer (and its lookup+delete at completion; also with a
// 1024-entry map and with BPF_F_NO_PREALLOC), the direct-mapped array scry-block uses instead (a
// slot write at issue, a read and free at completion), and two log2 histogram updates (64-bit divisions and
// atomic adds). The programs on one hook run one after the other, in the order of this file.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#include "scry_hist.bpf.h"

char LICENSE[] SEC("license") = "GPL";

struct fl_val {
	__u64 a, b, c;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct fl_val);
} fl_inflight SEC(".maps");

/* The same with 1024 entries (map size), and without preallocation. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, struct fl_val);
} fl_inflight_small SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u64);
	__type(value, struct fl_val);
} fl_inflight_noprealloc SEC(".maps");

/* Like scry-block's in-flight table: 16384 slots of 40 bytes, indexed by a hash of the request. */
struct fl_slot {
	__u64 rq, a, b, c, d;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct fl_slot);
} fl_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scry_hist);
} fl_hist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} fl_sink SEC(".maps");

static __always_inline void sink(__u64 v)
{
	__u32 zero = 0;
	__u64 *s = bpf_map_lookup_elem(&fl_sink, &zero);

	if (s)
		*s += v;
}

SEC("tp_btf/block_rq_issue")
int fl_empty(__u64 *ctx)
{
	return 0;
}

SEC("tp_btf/block_rq_complete")
int fl_empty_c(__u64 *ctx)
{
	return 0;
}

SEC("tp_btf/block_rq_issue")
int fl_pcpu_inc(__u64 *ctx)
{
	sink(1);
	return 0;
}

SEC("tp_btf/block_rq_issue")
int fl_ktime(__u64 *ctx)
{
	sink(bpf_ktime_get_ns());
	return 0;
}

SEC("tp_btf/block_rq_issue")
int fl_cgroup_id(__u64 *ctx)
{
	sink(bpf_get_current_cgroup_id());
	return 0;
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(fl_core_read6, struct request *rq)
{
	struct gendisk *disk = BPF_CORE_READ(rq, q, disk);
	__u64 v = BPF_CORE_READ(rq, cmd_flags) + BPF_CORE_READ(rq, __data_len);

	if (disk)
		v += ((__u32)BPF_CORE_READ(disk, major) << 20) | (__u32)BPF_CORE_READ(disk, first_minor);
	sink(v);
	return 0;
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(fl_direct_read6, struct request *rq)
{
	struct gendisk *disk = rq->q->disk;
	__u64 v = rq->cmd_flags + rq->__data_len;

	if (disk)
		v += ((__u32)disk->major << 20) | (__u32)disk->first_minor;
	sink(v);
	return 0;
}

static __always_inline void hash_update(void *map, __u64 key)
{
	struct fl_val val = { .b = 1 };
	struct fl_val *in = bpf_map_lookup_elem(map, &key);

	if (in) {
		in->b = 1;
		return;
	}
	bpf_map_update_elem(map, &key, &val, BPF_ANY);
}

static __always_inline void hash_delete(void *map, __u64 key)
{
	struct fl_val *in = bpf_map_lookup_elem(map, &key);

	if (in)
		bpf_map_delete_elem(map, &key);
}

/* Like scry's inflight map: insert keyed by the request at issue, delete at completion. */
SEC("tp_btf/block_rq_issue")
int fl_hash_update(__u64 *ctx)
{
	hash_update(&fl_inflight, ctx[0]);
	return 0;
}

SEC("tp_btf/block_rq_complete")
int fl_hash_delete(__u64 *ctx)
{
	hash_delete(&fl_inflight, ctx[0]);
	return 0;
}

SEC("tp_btf/block_rq_issue")
int fl_hupd_1k(__u64 *ctx)
{
	hash_update(&fl_inflight_small, ctx[0]);
	return 0;
}

SEC("tp_btf/block_rq_complete")
int fl_hdel_1k(__u64 *ctx)
{
	hash_delete(&fl_inflight_small, ctx[0]);
	return 0;
}

SEC("tp_btf/block_rq_issue")
int fl_hupd_noprea(__u64 *ctx)
{
	hash_update(&fl_inflight_noprealloc, ctx[0]);
	return 0;
}

SEC("tp_btf/block_rq_complete")
int fl_hdel_noprea(__u64 *ctx)
{
	hash_delete(&fl_inflight_noprealloc, ctx[0]);
	return 0;
}

/* As block.bpf.c: the low half of the BTF-typed pointer as a number (a 32-bit move). */
static __always_inline struct fl_slot *slot_of(__u64 rq)
{
	__u64 lo;
	__u32 idx;

	asm volatile("r0 = %[rq]; w0 = w0; %[lo] = r0" : [lo] "=r"(lo) : [rq] "r"(rq) : "r0");
	idx = ((lo >> 6) * 0x9E3779B97F4A7C15ULL) >> (64 - 14);

	return bpf_map_lookup_elem(&fl_slots, &idx);
}

SEC("tp_btf/block_rq_issue")
int fl_arr_update(__u64 *ctx)
{
	struct fl_slot *s = slot_of(ctx[0]);

	if (s && s->rq != ctx[0]) {
		s->rq = ctx[0];
		s->b = 1;
	}
	return 0;
}

SEC("tp_btf/block_rq_complete")
int fl_arr_take(__u64 *ctx)
{
	struct fl_slot *s = slot_of(ctx[0]);

	if (s && s->rq == ctx[0]) {
		sink(s->b);
		s->rq = 0;
	}
	return 0;
}

SEC("tp_btf/block_rq_complete")
int fl_hist2(__u64 *ctx)
{
	__u32 zero = 0;
	struct scry_hist *h = bpf_map_lookup_elem(&fl_hist, &zero);
	__u64 v = ctx[2] * 37 + 40000; /* nr_bytes scaled: some varying value in ns */

	if (h) {
		scry_hist_add_latency(h, v);
		scry_hist_add_latency(h, v + 12345);
	}
	return 0;
}

/* The same empty program again, attached last, to see whether the position on the hook matters. */
SEC("tp_btf/block_rq_issue")
int fl_empty_last(__u64 *ctx)
{
	return 0;
}

SEC("tp_btf/block_rq_complete")
int fl_empty_c_last(__u64 *ctx)
{
	return 0;
}
