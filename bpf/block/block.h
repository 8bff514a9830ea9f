/* Map layouts shared by block.bpf.c and scry-block's user space. */
#ifndef SCRY_BLOCK_H
#define SCRY_BLOCK_H

#include "scry_hist.h"

enum block_op {
	BLOCK_OP_READ,
	BLOCK_OP_WRITE,
	BLOCK_OP_DISCARD,
	BLOCK_OP_FLUSH,
	BLOCK_OP_OTHER,
};

/* dev is the kernel's dev_t: major << 20 | minor. */
struct block_disk_key {
	__u32 dev;
	__u32 op;
};

struct block_disk_stats {
	struct scry_hist queue;   /* insert -> issue, ns */
	struct scry_hist service; /* issue -> completion, ns */
	struct scry_hist size;    /* bytes per completed request; its count and sum are requests and bytes */
};

struct block_error_key {
	__u32 dev;
	__u32 op;
	__s32 error; /* positive errno */
	__u32 pad;
};

struct block_cgroup_key {
	__u64 cgroup_id;
	__u32 dev;
	__u32 pad;
};

/* The in-flight table: a direct-mapped array of 2^BLOCK_INFLIGHT_BITS slots indexed by a hash of the
 * struct request pointer (a hash map's update and delete cost several times more per event). */
#define BLOCK_INFLIGHT_BITS 14

struct block_inflight {
	__u64 rq; /* the struct request * in this slot; 0 when free */
	__u64 insert_ns;
	__u64 issue_ns;
	__u64 cgroup_id;
	__u64 partial_bytes; /* completed by earlier partial completions */
};

enum block_page_cache_counter {
	PAGE_CACHE_ACCESSES,
	PAGE_CACHE_ADDITIONS,
	PAGE_CACHE_DIRTIED,
	PAGE_CACHE_NR,
};

enum block_lost_reason {
	LOST_INFLIGHT_FULL,
	LOST_DISK_STATS_FULL,
	LOST_ERRORS_FULL,
	LOST_CGROUP_FULL,
	LOST_NR,
};

#endif /* SCRY_BLOCK_H */
