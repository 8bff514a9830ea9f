// Reference probes for bench/net.py: an empty program on each tracepoint scry-net attaches to, all
// attached at once, to measure what the hooks cost the workloads before any of scry-net's work (the
// kernel's call into each program, and what that does to the caches). Not part of scry; never shipped.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

#define EMPTY(name, tp) \
	SEC("tp_btf/" tp) int name(void *ctx) { return 0; }

EMPTY(empty_set_state, "inet_sock_set_state")
EMPTY(empty_retransmit, "tcp_retransmit_skb")
EMPTY(empty_retransmit_synack, "tcp_retransmit_synack")
EMPTY(empty_send_reset, "tcp_send_reset")
EMPTY(empty_receive_reset, "tcp_receive_reset")
EMPTY(empty_probe, "tcp_probe")
EMPTY(empty_kfree_skb, "kfree_skb")
