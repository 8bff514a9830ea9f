// Placeholder payload for the VM harness: one program per attach mode. User space loads them one at a
// time (a program the kernel rejects must not take the others down) and reports which work.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

/* Hits per mode, indexed like enum mode in probe.c. */
__u64 hits[5] = {};
/* Only count the probe's own process on the function hooks. */
const volatile __u32 target_tgid = 0;

static __always_inline void hit(int i)
{
	__sync_fetch_and_add(&hits[i], 1);
}

static __always_inline bool mine(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == target_tgid;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(on_tp_btf)
{
	hit(0);
	return 0;
}

SEC("raw_tp/sched_switch")
int BPF_PROG(on_raw_tp)
{
	hit(1);
	return 0;
}

SEC("tracepoint/sched/sched_switch")
int on_tracepoint(void *ctx)
{
	hit(2);
	return 0;
}

/* Attach target set by user space (default do_nanosleep). */
SEC("fentry")
int BPF_PROG(on_fentry)
{
	if (mine())
		hit(3);
	return 0;
}

SEC("kprobe")
int BPF_KPROBE(on_kprobe)
{
	if (mine())
		hit(4);
	return 0;
}
