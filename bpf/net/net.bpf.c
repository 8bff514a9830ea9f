// TCP connections per workload, direction and peer from sock:inet_sock_set_state; retransmits, resets
// and sampled RTT of those connections; packet drops by reason from skb:kfree_skb. Softirq events are
// attributed by socket (the socket's cgroup and the state recorded when it was opened), not by the
// interrupted task.
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
const volatile __u32 rtt_sample_every = 1;       /* tcp_probe: one event in N feeds the RTT histogram */
const volatile bool retransmit_has_err = false;  /* tcp_retransmit_skb passes err (6.12+) */
const volatile bool kfree_skb_has_rx_sk = false; /* kfree_skb passes the receiving socket (6.12+) */

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64); /* struct sock * */
	__type(value, struct net_sock);
} socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct net_conn_key);
	__type(value, struct net_conn_stats);
} conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct net_listener_key);
	__type(value, struct net_listener);
} listeners SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct net_drop_key);
	__type(value, __u64);
} drops SEC(".maps");

SCRY_DEFINE_LOST_MAP(NET_LOST_NR);

static const struct net_conn_stats zero_stats;
static const __u64 zero_count;

/* Kernels before 5.15 packed the cgroup pointer into a u64 with other data. */
static __always_inline __u64 sock_cgroup_id(struct sock *sk)
{
	struct sock_cgroup_data *d = &sk->sk_cgrp_data;

	if (bpf_core_field_exists(d->cgroup))
		return BPF_CORE_READ(sk, sk_cgrp_data.cgroup, kn, id);
	return bpf_get_current_cgroup_id();
}

static __always_inline __u32 sock_netns(struct sock *sk)
{
	return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
}

static __always_inline struct net_conn_stats *conn_stats(const struct net_conn_key *key)
{
	struct net_conn_stats *st = scry_lookup_or_init(&conns, key, &zero_stats);

	if (!st)
		scry_count_lost(&lost_events, NET_LOST_CONNS_FULL);
	return st;
}

static __always_inline void client_key(struct sock *sk, struct net_conn_key *key)
{
	key->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	key->direction = NET_DIR_CLIENT;
	key->port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (key->family == NET_AF_INET6)
		BPF_CORE_READ_INTO(&key->addr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	else
		BPF_CORE_READ_INTO((__u32 *)key->addr, sk, __sk_common.skc_daddr);
}

static __always_inline __u32 fail_reason(struct sock *sk)
{
	switch (BPF_CORE_READ(sk, sk_err)) {
	case NET_ECONNREFUSED: return NET_FAIL_REFUSED;
	case NET_ETIMEDOUT: return NET_FAIL_TIMED_OUT;
	case NET_ECONNRESET: return NET_FAIL_RESET;
	default: return NET_FAIL_OTHER;
	}
}

static __always_inline void track(struct sock *sk, const struct net_sock *s)
{
	__u64 skp = (__u64)sk;

	if (bpf_map_update_elem(&socks, &skp, s, BPF_ANY))
		scry_count_lost(&lost_events, NET_LOST_SOCKS_FULL);
}

static __always_inline void on_set_state(struct sock *sk, int old, int new)
{
	struct net_listener_key lkey = {};
	struct net_conn_stats *st;
	struct net_sock *s, ns = {};
	__u64 skp = (__u64)sk, now;

	if (BPF_CORE_READ(sk, sk_protocol) != NET_IPPROTO_TCP)
		return;

	if (new == TCP_LISTEN || (old == TCP_LISTEN && new == TCP_CLOSE)) {
		/* listen() and close() of a listener run in the owner's context */
		lkey.netns = sock_netns(sk);
		lkey.port = BPF_CORE_READ(sk, __sk_common.skc_num);
		if (new == TCP_LISTEN) {
			__u32 tgid = bpf_get_current_pid_tgid() >> 32;
			struct net_listener l = {.tgid = tgid, .observed = scry_observed(sock_cgroup_id(sk), tgid)};

			if (bpf_map_update_elem(&listeners, &lkey, &l, BPF_ANY))
				scry_count_lost(&lost_events, NET_LOST_LISTENERS_FULL);
		} else {
			bpf_map_delete_elem(&listeners, &lkey);
		}
		return;
	}

	now = bpf_ktime_get_ns();
	if (new == TCP_SYN_SENT) {
		/* connect(), in the caller's context */
		ns.key.cgroup_id = sock_cgroup_id(sk);
		if (!scry_observed(ns.key.cgroup_id, bpf_get_current_pid_tgid() >> 32))
			return;
		client_key(sk, &ns.key);
		ns.start_ns = now;
		track(sk, &ns);
		return;
	}
	if (new == TCP_SYN_RECV && old != TCP_SYN_SENT) {
		/* A child of a listener, created in softirq at the handshake's final ACK: it carries the
		 * listener's cgroup; the filter goes by the listener's owner when it was seen listening. */
		struct net_listener *l;
		bool observed;

		ns.key.cgroup_id = sock_cgroup_id(sk);
		lkey.netns = sock_netns(sk);
		lkey.port = BPF_CORE_READ(sk, __sk_common.skc_num);
		l = bpf_map_lookup_elem(&listeners, &lkey);
		observed = l ? l->observed : scry_observed(ns.key.cgroup_id, 0);
		if (!observed)
			return;
		ns.key.family = BPF_CORE_READ(sk, __sk_common.skc_family);
		ns.key.direction = NET_DIR_SERVER;
		ns.key.port = lkey.port;
		ns.start_ns = now;
		track(sk, &ns);
		return;
	}

	s = bpf_map_lookup_elem(&socks, &skp);
	if (!s)
		return;
	if (new == TCP_ESTABLISHED && !s->established) {
		st = conn_stats(&s->key);
		if (!st)
			return;
		s->established = 1;
		__sync_fetch_and_add(&st->opened, 1);
		if (s->key.direction == NET_DIR_CLIENT) {
			scry_hist_add_latency(&st->connect, now - s->start_ns);
		} else {
			/* the SYN-ACK's round trip, measured by the kernel just before this transition */
			__u32 srtt = BPF_CORE_READ((struct tcp_sock *)sk, srtt_us) >> 3;

			if (srtt)
				scry_hist_add_latency(&st->handshake, (__u64)srtt * 1000);
		}
		st->last_ns = now;
		return;
	}
	if (new == TCP_CLOSE) {
		struct tcp_sock *tp = (struct tcp_sock *)sk;

		st = conn_stats(&s->key);
		if (!st)
			return;
		if (s->established) {
			s->established = 0;
			__sync_fetch_and_add(&st->closed, 1);
			__sync_fetch_and_add(&st->bytes_sent, BPF_CORE_READ(tp, bytes_acked));
			__sync_fetch_and_add(&st->bytes_received, BPF_CORE_READ(tp, bytes_received));
			__sync_fetch_and_add(&st->segs_sent, BPF_CORE_READ(tp, segs_out));
			__sync_fetch_and_add(&st->segs_received, BPF_CORE_READ(tp, segs_in));
		} else if (old == TCP_SYN_SENT || old == TCP_SYN_RECV) {
			__u32 reason = fail_reason(sk);

			if (reason < NET_FAIL_NR)
				__sync_fetch_and_add(&st->failed[reason], 1);
		}
		st->last_ns = now;
		/* the entry stays until tcp_destroy_sock: a reset may still be sent (SO_LINGER 0) */
	}
}

static __always_inline struct net_conn_stats *tracked_stats(struct sock *sk)
{
	__u64 skp = (__u64)sk;
	struct net_sock *s;

	if (!sk)
		return NULL;
	s = bpf_map_lookup_elem(&socks, &skp);
	if (!s)
		return NULL;
	return conn_stats(&s->key);
}

static __always_inline void on_retransmit(struct sock *sk, struct sk_buff *skb)
{
	struct net_conn_stats *st = tracked_stats(sk);
	struct tcp_skb_cb *cb = (struct tcp_skb_cb *)&skb->cb[0];
	__u16 segs;

	if (!st)
		return;
	/* as the kernel's RetransSegs: the segments of the (possibly GSO) skb */
	segs = BPF_CORE_READ(cb, tcp_gso_segs);
	__sync_fetch_and_add(&st->retrans_segs, segs ? segs : 1);
	st->last_ns = bpf_ktime_get_ns();
}

static __always_inline void on_reset(struct sock *sk, bool sent)
{
	struct net_conn_stats *st = tracked_stats(sk);

	if (!st)
		return;
	if (sent)
		__sync_fetch_and_add(&st->resets_sent, 1);
	else
		__sync_fetch_and_add(&st->resets_received, 1);
	st->last_ns = bpf_ktime_get_ns();
}

static __always_inline void on_probe(struct sock *sk)
{
	struct net_conn_stats *st;
	__u32 srtt;

	if (rtt_sample_every > 1 && bpf_get_prandom_u32() % rtt_sample_every)
		return;
	st = tracked_stats(sk);
	if (!st)
		return;
	srtt = BPF_CORE_READ((struct tcp_sock *)sk, srtt_us) >> 3;
	if (srtt)
		scry_hist_add_latency(&st->rtt, (__u64)srtt * 1000);
}

static __always_inline void on_destroy(struct sock *sk)
{
	__u64 skp = (__u64)sk;

	bpf_map_delete_elem(&socks, &skp);
}

static __always_inline void on_drop(struct sk_buff *skb, __u32 reason, struct sock *sk)
{
	struct net_drop_key key = {.reason = reason};
	__u64 *n;

	if (reason <= 1) /* not dropped yet, consumed */
		return;
	if (!sk)
		sk = BPF_CORE_READ(skb, sk);
	if (sk) {
		__u8 state = BPF_CORE_READ(sk, __sk_common.skc_state);

		/* time-wait and request sockets are not full sockets: no cgroup */
		if (state != TCP_TIME_WAIT && state != TCP_NEW_SYN_RECV) {
			key.protocol = BPF_CORE_READ(sk, sk_protocol);
			key.cgroup_id = sock_cgroup_id(sk);
			if (!scry_observed(key.cgroup_id, 0))
				key.cgroup_id = 0;
		}
	}
	n = scry_lookup_or_init(&drops, &key, &zero_count);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		scry_count_lost(&lost_events, NET_LOST_DROPS_FULL);
}

/* Entry points: tp_btf, then raw_tp (same arguments), then the classic tracepoint where it has the
 * socket pointer. Arguments are read from ctx by index so that one program fits both prototypes. */

SEC("tp_btf/inet_sock_set_state")
int set_state_btf(__u64 *ctx)
{
	on_set_state((struct sock *)ctx[0], (int)ctx[1], (int)ctx[2]);
	return 0;
}

SEC("raw_tp/inet_sock_set_state")
int set_state_raw(__u64 *ctx)
{
	on_set_state((struct sock *)ctx[0], (int)ctx[1], (int)ctx[2]);
	return 0;
}

SEC("tracepoint/sock/inet_sock_set_state")
int set_state_tp(struct trace_event_raw_inet_sock_set_state *ctx)
{
	on_set_state((struct sock *)ctx->skaddr, ctx->oldstate, ctx->newstate);
	return 0;
}

SEC("tp_btf/tcp_destroy_sock")
int destroy_btf(__u64 *ctx)
{
	on_destroy((struct sock *)ctx[0]);
	return 0;
}

SEC("raw_tp/tcp_destroy_sock")
int destroy_raw(__u64 *ctx)
{
	on_destroy((struct sock *)ctx[0]);
	return 0;
}

static __always_inline void retransmit(__u64 *ctx)
{
	if (retransmit_has_err && (int)ctx[2] != 0)
		return; /* not sent */
	on_retransmit((struct sock *)ctx[0], (struct sk_buff *)ctx[1]);
}

SEC("tp_btf/tcp_retransmit_skb")
int retransmit_btf(__u64 *ctx)
{
	retransmit(ctx);
	return 0;
}

SEC("raw_tp/tcp_retransmit_skb")
int retransmit_raw(__u64 *ctx)
{
	retransmit(ctx);
	return 0;
}

SEC("tp_btf/tcp_send_reset")
int send_reset_btf(__u64 *ctx)
{
	on_reset((struct sock *)ctx[0], true);
	return 0;
}

SEC("raw_tp/tcp_send_reset")
int send_reset_raw(__u64 *ctx)
{
	on_reset((struct sock *)ctx[0], true);
	return 0;
}

SEC("tp_btf/tcp_receive_reset")
int receive_reset_btf(__u64 *ctx)
{
	on_reset((struct sock *)ctx[0], false);
	return 0;
}

SEC("raw_tp/tcp_receive_reset")
int receive_reset_raw(__u64 *ctx)
{
	on_reset((struct sock *)ctx[0], false);
	return 0;
}

SEC("tp_btf/tcp_probe")
int probe_btf(__u64 *ctx)
{
	on_probe((struct sock *)ctx[0]);
	return 0;
}

SEC("raw_tp/tcp_probe")
int probe_raw(__u64 *ctx)
{
	on_probe((struct sock *)ctx[0]);
	return 0;
}

static __always_inline void drop(__u64 *ctx)
{
	on_drop((struct sk_buff *)ctx[0], (__u32)ctx[2], kfree_skb_has_rx_sk ? (struct sock *)ctx[3] : NULL);
}

SEC("tp_btf/kfree_skb")
int drop_btf(__u64 *ctx)
{
	drop(ctx);
	return 0;
}

SEC("raw_tp/kfree_skb")
int drop_raw(__u64 *ctx)
{
	drop(ctx);
	return 0;
}
