// TCP connections per workload, direction and peer from sock:inet_sock_set_state; retransmits, resets
// and sampled RTT and windows of those connections; packet drops by reason from skb:kfree_skb. Softirq
// events are attributed by socket (the socket's cgroup and the state recorded when it was opened), not
// by the interrupted task. An iterator over the processes' files reports listeners' queues and drops
// and the transfer of open connections at scrape time.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_tracing.h>

#include "net.h"
#include "scry_filter.bpf.h"
#include "scry_hist.bpf.h"
#include "scry_lost.bpf.h"
#include "scry_maps.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define NET_AF_INET 2
#define NET_AF_INET6 10
#define NET_IPPROTO_TCP 6
#define NET_ECONNRESET 104
#define NET_ETIMEDOUT 110
#define NET_ECONNREFUSED 111

/* Set by user space before load. */
const volatile __u32 rtt_sample_every = 16;      /* tcp_probe: one event in N per CPU feeds the RTT histogram */
const volatile bool rtt_enabled = true;
const volatile bool windows_enabled = false;     /* window histograms with each RTT sample */
const volatile bool kfree_skb_has_rx_sk = false; /* kfree_skb passes the receiving socket (6.12+) */

/* Tracked sockets, from connect() or the handshake until TCP_CLOSE (every socket reaches it before it is
 * freed), in a set-associative table of two arrays: a socket's address picks a bucket of NET_SOCK_WAYS
 * slots, sock_tags holds the address of each slot's socket (0: free) and socks its state. A slot is taken
 * with a compare-and-swap and given back at the socket's close; the socket's own events are serialized
 * by its lock, so nothing else writes its slot meanwhile. A socket whose bucket is full goes to the
 * socks_spill hash, which is looked up only for buckets that have sockets there. Array lookups are
 * inlined: a hash map's update and delete cost about 300 ns per socket (socket local storage, 1.3 us;
 * see bench/README.md). User space sizes the table (--bpf.tracked-sockets) and, on kernels without BPF
 * atomics, keeps every socket in the hash (--bpf.socket-table). */
const volatile __u32 sock_bucket_mask = NET_SOCK_BUCKETS - 1;
/* false on kernels without BPF atomics (before 5.12): every tracked socket is in socks_spill, and the
 * compare-and-swap below is dead code the verifier never sees */
const volatile bool sock_table = true;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NET_SOCK_BUCKETS);
	__type(key, __u32);
	__type(value, struct net_sock_tags);
} sock_tags SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NET_SOCK_BUCKETS * NET_SOCK_WAYS);
	__type(key, __u32);
	__type(value, struct net_sock);
} socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NET_SOCK_SPILL);
	__type(key, __u64); /* struct sock * */
	__type(value, struct net_sock);
} socks_spill SEC(".maps");

/* A socket's address as a number: a BTF-typed pointer takes no arithmetic, but its value stored to
 * memory and loaded back is a plain number. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} sock_addr_scratch SEC(".maps");

/* Per-peer values, found by number: a tracked socket keeps the number of its series in its slot, so its
 * events index an array instead of hashing the key (a hash lookup of this key costs about 110 ns; see
 * bench/README.md). conn_ids gives a key's number and free_conns the numbers not in use: user space fills
 * it before the programs attach and gives back the numbers of the series it expires, clearing their
 * values. An entry of conns says whose it is: a socket whose number went to another series finds its
 * own again by key. Number 0 is never given out; its key stays zero, which no series has (family is
 * set). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NET_SERIES + 1); /* numbers from 1 */
	__type(key, __u32);
	__type(value, struct net_series);
} conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NET_SERIES + 1); /* by series number, as conns */
	__type(key, __u32);
	__type(value, struct net_conn_counts);
} conn_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NET_SERIES);
	__type(key, struct net_conn_key);
	__type(value, __u32);
} conn_ids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, NET_SERIES);
	__type(value, __u32);
} free_conns SEC(".maps");

/* The number of a key's series, by a hash of the key: each connection's first event finds it here. A
 * hint is checked against conns before use, so a stale or torn one costs only the conn_ids lookup. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NET_SERIES_HINTS);
	__type(key, __u32);
	__type(value, struct net_series_hint);
} conn_hints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct net_listener_key);
	__type(value, struct net_listener);
} listeners SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct net_drop_key);
	__type(value, __u64);
} drops SEC(".maps");

/* Drops counted without a hash lookup (a helper call per drop) while the key has its slot. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NET_DROP_SLOTS);
	__type(key, __u32);
	__type(value, struct net_drop_slot);
} drop_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32); /* tcp_probe events to skip before the next RTT sample */
} rtt_skip SEC(".maps");

/* The last tracked sockets that reached TCP_CLOSE on this CPU: a close that aborts the connection
 * (SO_LINGER 0, unread data, too many orphans) sends its reset right after, in the same call; on the
 * loopback the peer handles that reset, and closes, before the sender's tracepoint fires. */
#define NET_CLOSED_RING 4

struct net_closed {
	__u64 sk[NET_CLOSED_RING];
	__u32 ports[NET_CLOSED_RING]; /* the socket's port pair: a later socket at the same address differs */
	struct net_conn_key key[NET_CLOSED_RING];
	__u32 series[NET_CLOSED_RING];
	__u32 next;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct net_closed);
} last_closed SEC(".maps");

SCRY_DEFINE_LOST_MAP(NET_LOST_NR);

static const struct net_series zero_series;
static const __u64 zero_count;

/* A field of a kernel object: a direct load where the pointer is BTF-typed (tp_btf), a CO-RE probe read
 * otherwise. btf is a constant in every inlined copy, so only one of the two is compiled in. */
#define RD(btf, p, field) ((btf) ? (p)->field : BPF_CORE_READ(p, field))

#ifdef NET_KFUNC_CAST
/* 6.2+. Only the object built for kernels that have it names it: libbpf cannot load an object that names
 * a kfunc without the kernel's BTF, which older kernels may lack (--btf-path). */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;
#endif

/* The tcp_sock of a TCP socket (every caller's socket is a full TCP one): in tp_btf programs a BTF pointer
 * for direct loads, through the bpf_rdonly_cast kfunc where the object has it (the verifier makes it a
 * move: no helper call); elsewhere the same address, read with probe reads. */
static __always_inline struct tcp_sock *tcp_of(struct sock *sk, bool btf)
{
#ifdef NET_KFUNC_CAST
	if (btf)
		return bpf_rdonly_cast(sk, bpf_core_type_id_kernel(struct tcp_sock));
#endif
	return btf ? bpf_skc_to_tcp_sock(sk) : (struct tcp_sock *)sk;
}

#define STATE_BIT(s) (1u << (s))
#define HANDLED_STATES (STATE_BIT(TCP_ESTABLISHED) | STATE_BIT(TCP_SYN_SENT) | STATE_BIT(TCP_SYN_RECV) | \
			STATE_BIT(TCP_CLOSE) | STATE_BIT(TCP_LISTEN))
#define FIN_SENT_STATES (STATE_BIT(TCP_FIN_WAIT1) | STATE_BIT(TCP_FIN_WAIT2) | STATE_BIT(TCP_CLOSING) | \
			 STATE_BIT(TCP_LAST_ACK))
#define FIN_RECEIVED_STATES (STATE_BIT(TCP_CLOSE_WAIT) | STATE_BIT(TCP_LAST_ACK) | STATE_BIT(TCP_CLOSING))

struct net_transfer {
	__u64 sent, received, segs_sent, segs_received;
};

/* Kernels before 5.15 packed the cgroup pointer into a u64 with other data. */
static __always_inline __u64 sock_cgroup_id(struct sock *sk, bool btf)
{
	struct sock_cgroup_data *d = &sk->sk_cgrp_data;

	if (!bpf_core_field_exists(d->cgroup))
		return bpf_get_current_cgroup_id();
	if (btf)
		return sk->sk_cgrp_data.cgroup->kn->id;
	return BPF_CORE_READ(sk, sk_cgrp_data.cgroup, kn, id);
}

static __always_inline __u32 sock_netns(struct sock *sk, bool btf)
{
	if (btf)
		return sk->__sk_common.skc_net.net->ns.inum;
	return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
}

_Static_assert(sizeof(struct net_conn_key) == 32, "keys are compared as four words");

static __always_inline bool key_equal(const struct net_conn_key *a, const struct net_conn_key *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;

	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3];
}

/* The values of series number id, if it is still key's. */
static __always_inline struct net_conn_stats *series_at(__u32 id, const struct net_conn_key *key)
{
	struct net_series *v = bpf_map_lookup_elem(&conns, &id);

	return v && key_equal(&v->key, key) ? &v->stats : NULL;
}

/* A new series for key; 0 if every number is in use. */
static __always_inline __u32 series_new(const struct net_conn_key *key)
{
	struct net_series *v;
	__u32 id, *found;

	if (bpf_map_pop_elem(&free_conns, &id))
		return 0;
	/* user space cleared the values when it freed the number, but an event of a socket of the old series
	 * may have added to them since */
	bpf_map_update_elem(&conns, &id, &zero_series, BPF_ANY);
	v = bpf_map_lookup_elem(&conns, &id);
	if (!v)
		return 0;
	v->key = *key;
	if (!bpf_map_update_elem(&conn_ids, key, &id, BPF_NOEXIST))
		return id;
	/* another CPU made the series first */
	__builtin_memset(&v->key, 0, sizeof(v->key));
	bpf_map_push_elem(&free_conns, &id, 0);
	found = bpf_map_lookup_elem(&conn_ids, key);
	return found ? *found : 0;
}

/* The values of key's series, starting from the number in *id (where they were last found), which is
 * updated. */
static __always_inline struct net_conn_stats *series_stats(const struct net_conn_key *key, __u32 *id)
{
	const __u64 *w = (const __u64 *)key;
	struct net_conn_stats *st = *id ? series_at(*id, key) : NULL;
	struct net_series_hint *hint;
	__u32 slot, hinted, *found;

	if (st)
		return st;
	slot = (__u32)(((w[0] ^ w[1] ^ w[2] ^ w[3]) * 0x9E3779B97F4A7C15ull) >> 40) & (NET_SERIES_HINTS - 1);
	hint = bpf_map_lookup_elem(&conn_hints, &slot);
	if (hint && key_equal(&hint->key, key)) {
		hinted = hint->series;
		st = series_at(hinted, key);
		if (st) {
			*id = hinted;
			return st;
		}
	}
	found = bpf_map_lookup_elem(&conn_ids, key);
	*id = found ? *found : series_new(key);
	st = series_at(*id, key);
	if (!st) {
		scry_count_lost(&lost_events, NET_LOST_CONNS_FULL);
		return NULL;
	}
	if (hint) {
		hint->key = *key;
		hint->series = *id;
	}
	return st;
}

/* The values of key's series, for an event that has no socket slot to keep the number in. */
static __always_inline struct net_conn_stats *conn_stats(const struct net_conn_key *key)
{
	__u32 id = 0;

	return series_stats(key, &id);
}

/* The address of sk as a number. Every use of the scratch leaves it 0, so a program that interrupts this
 * one on the CPU between the store and the load makes the load 0 (tried again), never another socket's
 * address. */
static __always_inline __u64 sock_addr(struct sock *sk)
{
	__u32 zero = 0;
	__u64 *scratch = bpf_map_lookup_elem(&sock_addr_scratch, &zero), addr = 0;
	int i;

	for (i = 0; scratch && !addr && i < 2; i++) {
		*(volatile __u64 *)scratch = (__u64)sk;
		addr = *(volatile __u64 *)scratch;
		*(volatile __u64 *)scratch = 0;
	}
	return addr;
}

static __always_inline struct net_sock_tags *sock_bucket(__u64 addr, __u32 *bucket)
{
	/* slab objects are at least 64-byte aligned: the multiply spreads the bits above */
	*bucket = (__u32)(((addr >> 6) * 0x9E3779B97F4A7C15ull) >> 32) & sock_bucket_mask;
	return bpf_map_lookup_elem(&sock_tags, bucket);
}

static __always_inline struct net_sock *sock_slot(__u32 bucket, __u32 way)
{
	__u32 slot = bucket * NET_SOCK_WAYS + way;

	return bpf_map_lookup_elem(&socks, &slot);
}

/* Where a tracked socket's state is: a slot of its bucket (tag: the slot's tag), or the spill hash. */
struct sock_ref {
	struct net_sock_tags *bucket;
	__u32 index; /* the bucket's */
	__u64 *tag;
	__u64 addr;
};

/* The tracked state of sk, and in ref where it is (for sock_release); NULL if sk is not tracked. */
static __always_inline struct net_sock *sock_find(struct sock *sk, struct sock_ref *ref)
{
	struct net_sock_tags *tags;
	__u32 i;

	ref->addr = sock_addr(sk);
	ref->bucket = NULL;
	ref->tag = NULL;
	if (!ref->addr)
		return NULL;
	if (!sock_table)
		return bpf_map_lookup_elem(&socks_spill, &ref->addr);
	tags = ref->bucket = sock_bucket(ref->addr, &ref->index);
	if (!tags)
		return NULL;
	for (i = 0; i < NET_SOCK_WAYS; i++)
		if (tags->sk[i] == ref->addr) {
			ref->tag = &tags->sk[i];
			return sock_slot(ref->index, i);
		}
	return tags->spilled ? bpf_map_lookup_elem(&socks_spill, &ref->addr) : NULL;
}

static __always_inline struct net_sock *sock_get(struct sock *sk)
{
	struct sock_ref ref;

	return sock_find(sk, &ref);
}

/* Ends the tracking of the socket found by sock_find (its state is not used after). */
static __always_inline void sock_release(struct sock_ref *ref)
{
	if (ref->tag)
		*(volatile __u64 *)ref->tag = 0;
	else if (!bpf_map_delete_elem(&socks_spill, &ref->addr) && ref->bucket)
		__sync_fetch_and_add(&ref->bucket->spilled, -1);
}

/* Starts tracking sk with state ns (again, if it was: a socket may connect again after a failure). */
static __always_inline void track(struct sock *sk, const struct net_sock *ns)
{
	struct sock_ref ref;
	struct net_sock *s = sock_find(sk, &ref);
	__u32 i;

	if (s) {
		*s = *ns;
		return;
	}
	if (!ref.addr)
		return;
	if (sock_table && ref.bucket) {
		for (i = 0; i < NET_SOCK_WAYS; i++)
			if (!ref.bucket->sk[i] && __sync_val_compare_and_swap(&ref.bucket->sk[i], 0, ref.addr) == 0)
				break;
		if (i < NET_SOCK_WAYS) {
			s = sock_slot(ref.index, i);
			if (s)
				*s = *ns;
			return;
		}
	}
	if (bpf_map_update_elem(&socks_spill, &ref.addr, ns, BPF_NOEXIST))
		scry_count_lost(&lost_events, NET_LOST_SOCKS_FULL);
	else if (ref.bucket)
		__sync_fetch_and_add(&ref.bucket->spilled, 1);
}

static __always_inline void client_key(struct sock *sk, struct net_conn_key *key, bool btf)
{
	key->family = RD(btf, sk, __sk_common.skc_family);
	key->direction = NET_DIR_CLIENT;
	key->port = bpf_ntohs(RD(btf, sk, __sk_common.skc_dport));
	if (key->family == NET_AF_INET6)
		BPF_CORE_READ_INTO(&key->addr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	else
		*(__u32 *)key->addr = RD(btf, sk, __sk_common.skc_daddr);
}

/* The series of a listener's connections (sk: the listener or one of its children), if observed: under
 * a process filter, by the listener's owner when it was seen listening, else by the socket's cgroup. */
static __always_inline bool server_key(struct sock *sk, struct net_conn_key *key, bool btf)
{
	key->cgroup_id = sock_cgroup_id(sk, btf);
	key->port = RD(btf, sk, __sk_common.skc_num);
	if (scry_filter_enabled) {
		struct net_listener_key lkey = {.netns = sock_netns(sk, btf), .port = key->port};
		struct net_listener *l = bpf_map_lookup_elem(&listeners, &lkey);

		if (!(l ? l->observed : scry_observed(key->cgroup_id, 0)))
			return false;
	}
	key->family = RD(btf, sk, __sk_common.skc_family);
	key->direction = NET_DIR_SERVER;
	return true;
}

static __always_inline __u32 fail_reason(struct sock *sk, bool btf)
{
	switch (RD(btf, sk, sk_err)) {
	case NET_ECONNREFUSED: return NET_FAIL_REFUSED;
	case NET_ETIMEDOUT: return NET_FAIL_TIMED_OUT;
	case NET_ECONNRESET: return NET_FAIL_RESET;
	default: return NET_FAIL_OTHER;
	}
}

/* Data bytes and segments of an established connection in state `state`, the SYN and FIN taken out of
 * the sequence space the kernel counts. At the close, `state` is the one before CLOSE (`closing`). */
static __always_inline bool transfer(struct sock *sk, int state, bool client, bool closing, bool btf,
				     struct net_transfer *t)
{
	struct tcp_sock *tp = tcp_of(sk, btf);
	__u32 received_fin = FIN_RECEIVED_STATES;

	if (!tp)
		return false;
	t->sent = RD(btf, tp, bytes_acked);
	t->received = RD(btf, tp, bytes_received);

	/* a client's SYN is acknowledged through the normal path; a server's SYN-ACK is not counted */
	if (client && t->sent)
		t->sent--;
	/* our FIN: in the sequence space from FIN_WAIT1/LAST_ACK on; counted once acknowledged */
	if ((STATE_BIT(state) & FIN_SENT_STATES) && t->sent && RD(btf, tp, snd_una) == RD(btf, tp, write_seq))
		t->sent--;
	/* the peer's FIN; FIN_WAIT2 closes at the peer's FIN (or after tcp_fin_timeout without one) */
	if (closing)
		received_fin |= STATE_BIT(TCP_FIN_WAIT2);
	if ((STATE_BIT(state) & received_fin) && t->received)
		t->received--;
	t->segs_sent = RD(btf, tp, segs_out);
	t->segs_received = RD(btf, tp, segs_in);
	return true;
}

static __always_inline void add_transfer(struct net_conn_counts *c, struct sock *sk, int old, bool client, bool btf)
{
	struct net_transfer t;

	if (!transfer(sk, old, client, true, btf, &t))
		return;
	c->bytes_sent += t.sent;
	c->bytes_received += t.received;
	c->segs_sent += t.segs_sent;
	c->segs_received += t.segs_received;
}

/* When the SYN-ACK that establishes a client's connection came in: the socket's own clock sample, taken
 * as the kernel began to process it (4.20+, the clock of bpf_ktime_get_ns), which saves a clock read. */
static __always_inline __u64 synack_received_ns(struct tcp_sock *tp, bool btf)
{
	if (tp && bpf_core_field_exists(tp->tcp_clock_cache))
		return RD(btf, tp, tcp_clock_cache);
	return bpf_ktime_get_ns();
}

static __always_inline void on_set_state(struct sock *sk, int old, int new, bool btf)
{
	struct net_listener_key lkey = {};
	struct net_conn_counts *counts;
	struct net_conn_stats *st;
	struct net_sock *s, ns = {};
	struct tcp_sock *tp;
	struct sock_ref ref;
	__u32 srtt;

	/* most transitions (FIN_WAIT*, CLOSE_WAIT, LAST_ACK...) end here */
	if (new < 0 || new > 15 || !(STATE_BIT(new) & HANDLED_STATES))
		return;
	if (RD(btf, sk, sk_protocol) != NET_IPPROTO_TCP)
		return;

	if (new == TCP_LISTEN || (old == TCP_LISTEN && new == TCP_CLOSE)) {
		/* listen() and close() of a listener run in the owner's context */
		lkey.netns = sock_netns(sk, btf);
		lkey.port = RD(btf, sk, __sk_common.skc_num);
		if (new == TCP_LISTEN) {
			__u32 tgid = bpf_get_current_pid_tgid() >> 32;
			struct net_listener l = {.tgid = tgid, .observed = scry_observed(sock_cgroup_id(sk, btf), tgid)};

			if (bpf_map_update_elem(&listeners, &lkey, &l, BPF_ANY))
				scry_count_lost(&lost_events, NET_LOST_LISTENERS_FULL);
		} else {
			bpf_map_delete_elem(&listeners, &lkey);
		}
		return;
	}

	if (new == TCP_SYN_SENT) {
		/* connect(), in the caller's context */
		ns.key.cgroup_id = sock_cgroup_id(sk, btf);
		if (!scry_observed_current(ns.key.cgroup_id))
			return;
		client_key(sk, &ns.key, btf);
		ns.start_ns = bpf_ktime_get_ns();
		track(sk, &ns);
		return;
	}
	if (new == TCP_SYN_RECV && old != TCP_SYN_SENT) {
		/* a child of a listener, created in softirq at the handshake's final ACK: it carries the
		 * listener's cgroup */
		if (!server_key(sk, &ns.key, btf))
			return;
		track(sk, &ns);
		return;
	}

	s = sock_find(sk, &ref);
	if (!s)
		return;
	if (new == TCP_ESTABLISHED && !s->established) {
		st = series_stats(&s->key, &s->series);
		counts = st ? bpf_map_lookup_elem(&conn_counts, &s->series) : NULL;
		if (!counts)
			return;
		s->established = 1;
		counts->opened++;
		/* the handshake's round trip, measured by the kernel just before this transition */
		tp = tcp_of(sk, btf);
		/* a child starts with its request's SYN-ACK retransmits, counted for the listener */
		if (tp && s->key.direction == NET_DIR_SERVER)
			s->retrans = RD(btf, tp, total_retrans);
		srtt = tp ? RD(btf, tp, srtt_us) >> 3 : 0;
		if (s->key.direction == NET_DIR_CLIENT)
			scry_hist_add_latency(&st->connect, synack_received_ns(tp, btf) - s->start_ns);
		else if (srtt)
			scry_hist_add_latency(&st->handshake, (__u64)srtt * 1000);
		if (srtt && rtt_enabled)
			scry_hist_add_latency(&st->rtt, (__u64)srtt * 1000);
		return;
	}
	if (new == TCP_CLOSE) {
		__u64 skp = (__u64)sk;
		__u32 zero = 0;
		struct net_closed *closed = bpf_map_lookup_elem(&last_closed, &zero);

		st = series_stats(&s->key, &s->series);
		counts = st ? bpf_map_lookup_elem(&conn_counts, &s->series) : NULL;
		if (counts && s->established) {
			counts->closed++;
			add_transfer(counts, sk, old, s->key.direction == NET_DIR_CLIENT, btf);
		} else if (st && (old == TCP_SYN_SENT || old == TCP_SYN_RECV)) {
			__u32 reason = fail_reason(sk, btf);

			if (reason < NET_FAIL_NR)
				__sync_fetch_and_add(&st->failed[reason], 1);
		}
		if (closed) {
			__u32 i = closed->next++ % NET_CLOSED_RING;

			closed->sk[i] = skp;
			closed->ports[i] = RD(btf, sk, __sk_common.skc_portpair);
			closed->key[i] = s->key;
			closed->series[i] = s->series;
		}
		sock_release(&ref); /* the last use of s was above */
	}
}

static __always_inline struct net_conn_stats *tracked_stats(struct sock *sk, bool btf)
{
	struct net_sock *s;

	if (!sk)
		return NULL;
	s = sock_get(sk);
	if (!s)
		return NULL;
	return series_stats(&s->key, &s->series);
}

/* Segments retransmitted since the last event, from the socket's own count: the kernel counts a
 * retransmit it tried to send (RetransSegs, total_retrans) whether or not the send failed. Before 6.17
 * the tracepoint fires after successful sends only (a failed one is picked up at the next event); since,
 * on every attempt, with err, also on those given up before a send, which the kernel does not count. */
static __always_inline void on_retransmit(struct sock *sk, bool btf)
{
	struct tcp_sock *tp = tcp_of(sk, btf);
	struct net_conn_stats *st;
	struct net_sock *s;
	__u32 total, segs;

	if (!tp)
		return;
	s = sock_get(sk);
	if (!s)
		return;
	total = RD(btf, tp, total_retrans);
	segs = total - s->retrans;
	s->retrans = total; /* under the socket's lock, as every retransmit */
	if ((__s32)segs <= 0)
		return; /* nothing sent, or the count was reset (a disconnect) */
	st = series_stats(&s->key, &s->series);
	if (!st)
		return;
	__sync_fetch_and_add(&st->retrans_segs, segs);
	if (RD(btf, sk, __sk_common.skc_state) == TCP_SYN_SENT)
		__sync_fetch_and_add(&st->syn_retrans, segs);
}

/* A listener retransmitted a SYN-ACK (its timer, or a repeated SYN): counted for the listener's
 * workload and port, like the connections it accepts. */
static __always_inline void on_retransmit_synack(struct sock *listener, bool btf)
{
	struct net_conn_key key = {};
	struct net_conn_stats *st;

	if (!server_key(listener, &key, btf))
		return;
	st = conn_stats(&key);
	if (!st)
		return;
	__sync_fetch_and_add(&st->retrans_segs, 1);
	__sync_fetch_and_add(&st->syn_retrans, 1);
}

static __always_inline void on_reset(struct sock *sk, bool sent, bool btf)
{
	struct net_conn_stats *st = tracked_stats(sk, btf);
	__u32 zero = 0;

	if (!st && sent && sk) {
		/* sent by the close that just ended the socket's tracking (preempted in between: not counted) */
		struct net_closed *closed = bpf_map_lookup_elem(&last_closed, &zero);
		__u32 ports = RD(btf, sk, __sk_common.skc_portpair);
		int i;

		for (i = 0; closed && i < NET_CLOSED_RING; i++)
			if (closed->sk[i] == (__u64)sk && closed->ports[i] == ports) {
				closed->sk[i] = 0; /* one reset per close */
				st = series_stats(&closed->key[i], &closed->series[i]);
				break;
			}
	}
	if (!st)
		return;
	if (sent)
		__sync_fetch_and_add(&st->resets_sent, 1);
	else
		__sync_fetch_and_add(&st->resets_received, 1);
}

/* One event per received segment on every TCP socket: between samples, a per-CPU count is all it costs
 * (every connection also has the sample taken when it is established). */
static __always_inline void on_probe(struct sock *sk, bool btf)
{
	struct net_conn_stats *st;
	struct tcp_sock *tp;
	struct net_sock *s;
	__u32 srtt, zero = 0, *skip;

	skip = bpf_map_lookup_elem(&rtt_skip, &zero);
	if (!skip)
		return;
	if (*skip) {
		*skip -= 1;
		return;
	}
	*skip = rtt_sample_every - 1;
	s = sock_get(sk);
	if (!s)
		return;
	tp = tcp_of(sk, btf);
	if (!tp)
		return;
	srtt = RD(btf, tp, srtt_us) >> 3;
	if (!srtt)
		return;
	st = series_stats(&s->key, &s->series);
	if (!st)
		return;
	scry_hist_add_latency(&st->rtt, (__u64)srtt * 1000);
	if (windows_enabled) {
		scry_hist_add_window(&st->cwnd, RD(btf, tp, snd_cwnd));
		scry_hist_add_window(&st->snd_wnd, RD(btf, tp, snd_wnd));
		scry_hist_add_window(&st->rcv_wnd, RD(btf, tp, rcv_wnd));
	}
}

static __always_inline void on_drop(struct sk_buff *skb, __u32 reason, struct sock *sk, bool btf)
{
	struct net_drop_key key = {.reason = reason};
	struct net_drop_slot *slot;
	__u32 slot_index;
	__u64 *n;

	if (reason <= 1) /* not dropped yet, consumed */
		return;
	if (!sk)
		sk = RD(btf, skb, sk);
	if (sk) {
		__u8 state = RD(btf, sk, __sk_common.skc_state);

		/* time-wait and request sockets are not full sockets: no cgroup */
		if (state != TCP_TIME_WAIT && state != TCP_NEW_SYN_RECV) {
			key.protocol = RD(btf, sk, sk_protocol);
			key.cgroup_id = sock_cgroup_id(sk, btf);
			if (!scry_observed(key.cgroup_id, 0))
				key.cgroup_id = 0;
		}
	}
	/* per-CPU, and the program never runs nested in itself on a CPU: plain adds */
	slot_index = (__u32)(((key.cgroup_id ^ ((__u64)key.reason << 16 | key.protocol)) * 0x9E3779B97F4A7C15ull) >> 32) &
		     (NET_DROP_SLOTS - 1);
	slot = bpf_map_lookup_elem(&drop_slots, &slot_index);
	if (slot && !slot->key.reason) {
		slot->key = key;
		slot->count = 1;
		return;
	}
	if (slot && slot->key.cgroup_id == key.cgroup_id && slot->key.reason == key.reason &&
	    slot->key.protocol == key.protocol) {
		slot->count++;
		return;
	}
	n = scry_lookup_or_init(&drops, &key, &zero_count);
	if (n)
		*n += 1;
	else
		scry_count_lost(&lost_events, NET_LOST_DROPS_FULL);
}

/* Entry points: tp_btf (BTF-typed pointers: direct loads), then raw_tp (same arguments),
 * then the classic tracepoint where it has the socket pointer. Arguments are read from ctx by index so
 * that one body fits both prototypes. */

SEC("tp_btf/inet_sock_set_state")
int set_state_btf(__u64 *ctx)
{
	on_set_state((struct sock *)ctx[0], (int)ctx[1], (int)ctx[2], true);
	return 0;
}

SEC("raw_tp/inet_sock_set_state")
int set_state_raw(__u64 *ctx)
{
	on_set_state((struct sock *)ctx[0], (int)ctx[1], (int)ctx[2], false);
	return 0;
}

SEC("tracepoint/sock/inet_sock_set_state")
int set_state_tp(struct trace_event_raw_inet_sock_set_state *ctx)
{
	on_set_state((struct sock *)ctx->skaddr, ctx->oldstate, ctx->newstate, false);
	return 0;
}

SEC("tp_btf/tcp_retransmit_skb")
int retransmit_btf(__u64 *ctx)
{
	on_retransmit((struct sock *)ctx[0], true);
	return 0;
}

SEC("raw_tp/tcp_retransmit_skb")
int retransmit_raw(__u64 *ctx)
{
	on_retransmit((struct sock *)ctx[0], false);
	return 0;
}

SEC("tp_btf/tcp_retransmit_synack")
int retransmit_synack_btf(__u64 *ctx)
{
	on_retransmit_synack((struct sock *)ctx[0], true);
	return 0;
}

SEC("raw_tp/tcp_retransmit_synack")
int retransmit_synack_raw(__u64 *ctx)
{
	on_retransmit_synack((struct sock *)ctx[0], false);
	return 0;
}

SEC("tp_btf/tcp_send_reset")
int send_reset_btf(__u64 *ctx)
{
	on_reset((struct sock *)ctx[0], true, true);
	return 0;
}

SEC("raw_tp/tcp_send_reset")
int send_reset_raw(__u64 *ctx)
{
	on_reset((struct sock *)ctx[0], true, false);
	return 0;
}

SEC("tp_btf/tcp_receive_reset")
int receive_reset_btf(__u64 *ctx)
{
	on_reset((struct sock *)ctx[0], false, true);
	return 0;
}

SEC("raw_tp/tcp_receive_reset")
int receive_reset_raw(__u64 *ctx)
{
	on_reset((struct sock *)ctx[0], false, false);
	return 0;
}

SEC("tp_btf/tcp_probe")
int probe_btf(__u64 *ctx)
{
	on_probe((struct sock *)ctx[0], true);
	return 0;
}

SEC("raw_tp/tcp_probe")
int probe_raw(__u64 *ctx)
{
	on_probe((struct sock *)ctx[0], false);
	return 0;
}

static __always_inline void drop(__u64 *ctx, bool btf)
{
	on_drop((struct sk_buff *)ctx[0], (__u32)ctx[2], kfree_skb_has_rx_sk ? (struct sock *)ctx[3] : NULL, btf);
}

SEC("tp_btf/kfree_skb")
int drop_btf(__u64 *ctx)
{
	drop(ctx, true);
	return 0;
}

SEC("raw_tp/kfree_skb")
int drop_raw(__u64 *ctx)
{
	drop(ctx, false);
	return 0;
}

/* At scrape time: each TCP socket in a process's files. Listeners: their accept queue and drops.
 * Tracked established connections: their transfer so far, counted as the close will count it. */
SEC("iter/task_file")
int socket_files(struct bpf_iter__task_file *ctx)
{
	struct net_socket_record rec = {};
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	struct socket *sock;
	struct net_sock *s;
	struct net_transfer t;
	struct sock *sk;
	int state;

	if (!file || !task)
		return 0;
	sock = bpf_sock_from_file(file);
	if (!sock)
		return 0;
	sk = sock->sk;
	if (!sk || sk->sk_protocol != NET_IPPROTO_TCP)
		return 0;
	rec.inode = file->f_inode->i_ino;
	state = sk->__sk_common.skc_state;
	if (state == TCP_LISTEN) {
		rec.cgroup_id = sock_cgroup_id(sk, true);
		if (!scry_observed(rec.cgroup_id, task->tgid))
			return 0;
		rec.kind = NET_SOCKET_LISTENER;
		rec.port = sk->__sk_common.skc_num;
		rec.drops = (__u32)sk->sk_drops.counter;
		rec.queue_len = sk->sk_ack_backlog;
		rec.queue_max = sk->sk_max_ack_backlog;
		bpf_seq_write(ctx->meta->seq, &rec, sizeof(rec));
		return 0;
	}
	s = sock_get(sk);
	if (!s || !s->established)
		return 0;
	/* probe reads: newer kernels mark socket->sk untrusted, which the tcp_sock cast helper refuses */
	if (!transfer(sk, state, s->key.direction == NET_DIR_CLIENT, false, false, &t))
		return 0;
	rec.kind = NET_SOCKET_CONN;
	rec.key = s->key;
	rec.bytes_sent = t.sent;
	rec.bytes_received = t.received;
	rec.segs_sent = t.segs_sent;
	rec.segs_received = t.segs_received;
	bpf_seq_write(ctx->meta->seq, &rec, sizeof(rec));
	return 0;
}
