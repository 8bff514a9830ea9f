// Reference probes for bench/net.py: an empty program on each tracepoint scry-net attaches to, all
// attached at once, to measure what the hooks cost the workloads before any of scry-net's work (the
// kernel's call into each program, and what that does to the caches). Not part of scry; never shipped.
//
// Built with -DBUSY_ROUNDS=N, the inet_sock_set_state program instead spins N rounds of register-only
// arithmetic on the six state changes of a connection that scry-net works on (SYN_SENT, SYN_RECV,
// ESTABLISHED and CLOSE, both ends): program time that touches no memory, to compare scry-net with.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

#define EMPTY(name, tp) \
	SEC("tp_btf/" tp) int name(void *ctx) { return 0; }

#ifdef BUSY_ROUNDS
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} busy_result SEC(".maps"); /* where the arithmetic's result goes, so that it is not optimized out */

SEC("tp_btf/inet_sock_set_state")
int busy_set_state(unsigned long long *ctx)
{
	int new = (int)ctx[2];
	__u32 zero = 0, i;
	__u64 x, *result;

	if (new != TCP_SYN_SENT && new != TCP_SYN_RECV && new != TCP_ESTABLISHED && new != TCP_CLOSE)
		return 0;
	result = bpf_map_lookup_elem(&busy_result, &zero);
	if (!result)
		return 0;
	x = bpf_get_prandom_u32() | 1;
#pragma clang loop unroll(disable)
	for (i = 0; i < BUSY_ROUNDS; i++) { /* xorshift: a chain of dependent register operations */
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
	}
	*result = x;
	return 0;
}
#else
EMPTY(empty_set_state, "inet_sock_set_state")
#endif
EMPTY(empty_retransmit, "tcp_retransmit_skb")
EMPTY(empty_retransmit_synack, "tcp_retransmit_synack")
EMPTY(empty_send_reset, "tcp_send_reset")
EMPTY(empty_receive_reset, "tcp_receive_reset")
EMPTY(empty_probe, "tcp_probe")
EMPTY(empty_kfree_skb, "kfree_skb")
