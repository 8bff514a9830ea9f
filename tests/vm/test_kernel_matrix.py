#!/usr/bin/python3
"""vm.kernel_matrix: every scry exporter on a second kernel (Debian 12's 6.1 cloud kernel under QEMU/TCG).

For each entry of EXPORTERS (the one place an exporter joins the matrix):
  - on the host (6.18): `scry-<name> --check` must exit 0;
  - in ONE guest boot holding all exporters, their libraries and the workloads' tools:
    `--check` must exit 0; the exporter is started, serves /metrics, a workload drives its hooks
    between scrapes, and the expected series must move (by the exact amount where the answer is
    exact); SIGTERM must end it with exit 0. Then the same again for each of the entry's passes
    (extra flags such as a narrowed --bpf.attach-modes, their own expected attach modes and
    expectations), one after the other in the same guest: the fallback modes the default run never
    picks on 6.1 (kprobe, raw_tp, tracepoint, fentry on the request hooks) are loaded and driven too.
Across the whole matrix, the loader must never be rejected by the verifier (a CO-RE or verifier
mistake), the /metrics self-metrics must agree with --check, and at least one hook must pick a
different attach mode on 6.1 than on the host: that is the attach-mode fallback at work.

Prints a table: exporter | hook | feature | mode (program) on the host | mode (program) in the guest |
one such column per pass name.
On any failure it prints why and the guest's whole console log (dmesg included).

Exit status: 0 pass; 1 fail; 77 skipped (not root, or no network/package for the kernel; under
CI=true those are failures). Only the Python 3 standard library is used. See tests/vm/README.md.
"""

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

EXIT_TIMEOUT = 124  # run-guest.py: a boot or run timeout
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
SKIP = 77
CI = os.environ.get("CI") == "true"


# ----------------------------------------------------------------------------------------------
# The matrix. Adding an exporter = adding one Exporter(...) here.
#
# workload: busybox sh, run in the guest with the exporter serving; it may call
#   scrape LABEL          scrape /metrics now and keep it under LABEL ("start" and "end" are
#                         taken automatically before and after the workload)
#   var NAME=VALUE        a value the expectations can use as {NAME} in labels (e.g. a device)
#   die MESSAGE           fail the workload
# The tools it needs are copied from the host (tools=, found in PATH) with their libraries.
# expect: Delta(series, labels, op, value, since=, until=) on the scrapes named since/until;
#         Value(series, labels, op, value, at=) in one scrape.
# modes: {hook: {"host": mode, "guest": mode}} attach modes the --check tables must show.
# passes: Pass(name, extra args, {hook: guest mode}, expect=) extra runs in the same guest, after
#         the default one (same workload; expect defaults to the entry's).

class Delta:
    def __init__(self, name, labels=None, op="==", value=0, since="start", until="end"):
        assert op in ("==", ">=", ">")
        self.name, self.labels, self.op, self.value = name, dict(labels or {}), op, value
        self.since, self.until = since, until

    def describe(self, labels):
        sel = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
        return "%s{%s} %s..%s delta %s %s" % (self.name, sel, self.since, self.until, self.op, self.value)


class Value:
    """A series' value in one scrape (default: the last one, "end")."""

    def __init__(self, name, labels=None, op="==", value=0, at="end"):
        assert op in ("==", ">=", ">")
        self.name, self.labels, self.op, self.value, self.at = name, dict(labels or {}), op, value, at

    def describe(self, labels):
        sel = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
        return "%s{%s} at %s %s %s" % (self.name, sel, self.at, self.op, self.value)


class Pass:
    """An extra run of an exporter in the same guest, after its default run: the entry's args plus
    `args` (e.g. a narrowed --bpf.attach-modes, to reach the fallback modes the default run never
    picks on 6.1), the same workload, the expectations `expect` (default: the entry's) and the
    guest attach modes `modes` ({hook: mode}, "none" for a hook that must not attach)."""

    def __init__(self, name, args, modes, expect=None):
        assert re.match(r"^[a-z0-9_]+$", name), name
        self.name, self.args, self.modes, self.expect = name, list(args), dict(modes), expect


class Exporter:
    def __init__(self, name, port, workload, expect, args=(), tools=(), modules=(), modes=None,
                 workload_timeout=120, passes=()):
        self.name, self.port, self.workload, self.expect = name, port, workload, expect
        self.args, self.tools, self.modules = list(args), list(tools), list(modules)
        self.modes = modes or {}
        self.workload_timeout = workload_timeout
        self.passes = list(passes)
        assert len({p.name for p in self.passes}) == len(self.passes), "pass names must be unique"


class GuestRun:
    """One run of an exporter in the guest: its default run (pass None) or one of its passes."""

    def __init__(self, exporter, pass_=None):
        self.exporter, self.pass_ = exporter, pass_
        self.key = exporter.name if pass_ is None else "%s@%s" % (exporter.name, pass_.name)
        self.args = exporter.args + (pass_.args if pass_ else [])
        self.expect = exporter.expect if pass_ is None or pass_.expect is None else pass_.expect
        self.label = "scry-%s%s" % (exporter.name, "" if pass_ is None else " [pass %s: %s]"
                                     % (pass_.name, " ".join(pass_.args)))


def guest_runs(exporters):
    """Every run of every exporter, in the order the guest performs them."""
    return [GuestRun(e, p) for e in exporters for p in [None] + e.passes]


# scry-block: 30 O_DIRECT writes of 64 KiB and 50 O_DIRECT reads of 4 KiB on a loop device over a
# file in tmpfs (one request each, nothing else touches that device), then buffered I/O on a
# second loop device for the page cache: 256 written 4 KiB pages (dirtied), and after dropping
# the caches 256 read ones (added to the cache, and marked accessed once each).
BLOCK_WORKLOAD = r"""
dd if=/dev/zero of=/tmp/direct.img bs=1M count=0 seek=64 2>/dev/null || die "make direct.img"
dd if=/dev/zero of=/tmp/buffered.img bs=1M count=0 seek=16 2>/dev/null || die "make buffered.img"
dev=$(losetup --find --show /tmp/direct.img) || die "losetup direct.img"
buf=$(losetup --find --show /tmp/buffered.img) || die "losetup buffered.img"
var dev=${dev#/dev/}
var buf=${buf#/dev/}
sleep 1
scrape before_direct
dd if=/dev/zero of=$dev bs=65536 count=30 oflag=direct status=none || die "direct writes"
dd if=$dev of=/dev/null bs=4096 count=50 iflag=direct status=none || die "direct reads"
scrape direct
dd if=/dev/urandom of=$buf bs=4096 count=256 status=none || die "buffered writes"
scrape buffered_write
sync
echo 3 > /proc/sys/vm/drop_caches
scrape dropped
dd if=$buf of=/dev/null bs=4096 count=256 status=none || die "buffered reads"
scrape buffered_read
losetup -d $dev; losetup -d $buf
"""

# The O_DIRECT requests on {dev}: exact in every attach mode (one request, one completion each).
BLOCK_DIRECT = [
    Delta("scry_block_requests_total", {"device": "{dev}", "op": "write"}, "==", 30, "before_direct", "direct"),
    Delta("scry_block_requests_total", {"device": "{dev}", "op": "read"}, "==", 50, "before_direct", "direct"),
    Delta("scry_block_bytes_total", {"device": "{dev}", "op": "write"}, "==", 30 * 65536, "before_direct", "direct"),
    Delta("scry_block_bytes_total", {"device": "{dev}", "op": "read"}, "==", 50 * 4096, "before_direct", "direct"),
    Delta("scry_block_request_size_bytes_count", {"device": "{dev}", "op": "write"}, "==", 30, "before_direct", "direct"),
    Delta("scry_block_requests_total", {"device": "{buf}", "op": "read"}, ">", 0, "dropped", "buffered_read"),
]
# The latency feature (a completion hook that gives the request): every one of them has a service time.
BLOCK_LATENCY = [
    Delta("scry_block_service_duration_seconds_count", {"device": "{dev}", "op": "write"}, "==", 30, "before_direct", "direct"),
    Delta("scry_block_service_duration_seconds_count", {"device": "{dev}", "op": "read"}, "==", 50, "before_direct", "direct"),
]
BLOCK_PAGE_DIRTY = [Delta("scry_block_page_cache_dirtied_total", {}, ">=", 256, "direct", "buffered_write")]
BLOCK_PAGE_ADD = [Delta("scry_block_page_cache_additions_total", {}, ">=", 256, "dropped", "buffered_read")]
BLOCK_PAGE_ACCESS = [Delta("scry_block_page_cache_accesses_total", {}, ">=", 256, "dropped", "buffered_read")]


SCHED_WORKLOAD = r"""
i=0
while [ $i -lt 20 ]; do usleep 20000; i=$((i+1)); done
"""


# scry-mem-sli: 50 shells (each takes user faults: copy-on-write after fork, its stack and data); a
# zram swap device and a 16 MiB cgroup in which dd reads /dev/zero twice into one 48 MiB buffer (the
# second pass faults the swapped-out part back in); a 16 MiB cgroup without swap in which dd's 64 MiB
# buffer gets it OOM-killed, once. The guest has cgroup2 at /sys/fs/cgroup.
MEM_WORKLOAD = r"""
i=0; while [ $i -lt 50 ]; do sh -c : || die sh; i=$((i+1)); done
scrape faults
if ! grep -q '^/dev/zram0 ' /proc/swaps; then
    echo 128M > /sys/block/zram0/disksize || die "zram disksize"
    mkswap /dev/zram0 >/dev/null || die mkswap
    swapon /dev/zram0 || die swapon
fi
mkdir -p /sys/fs/cgroup/scry-swap /sys/fs/cgroup/scry-oom
echo 16M > /sys/fs/cgroup/scry-swap/memory.max || die "memory.max"
echo 16M > /sys/fs/cgroup/scry-oom/memory.max || die "memory.max"
echo 0 > /sys/fs/cgroup/scry-oom/memory.swap.max || die "memory.swap.max"
swapped=$(grep '^pswpin ' /proc/vmstat | cut -d' ' -f2)
sh -c 'echo $$ > /sys/fs/cgroup/scry-swap/cgroup.procs && exec dd if=/dev/zero of=/dev/null bs=48M count=2 2>/dev/null' \
    || die "dd in scry-swap"
[ "$(grep '^pswpin ' /proc/vmstat | cut -d' ' -f2)" -gt "$swapped" ] || die "no swap-in happened"
scrape swap
if sh -c 'echo $$ > /sys/fs/cgroup/scry-oom/cgroup.procs && exec dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null'; then
    die "dd survived its 16 MiB cgroup"
fi
i=0; while ! grep -q 'msg="oom kill"' /tmp/$EXPORTER.log && [ $i -lt 100 ]; do usleep 100000; i=$((i+1)); done
# 6.1 gives mark_victim the pid only: the victim ran the OOM killer, so its memory is read (pre-6.2 layout)
grep 'msg="oom kill"' /tmp/$EXPORTER.log | grep -q 'comm=dd .*cgroup=/scry-oom .*anon_rss_bytes=[1-9]' \
    || die "no oom kill log line for dd with its memory"
"""

MEM_COMMON = [
    Delta("scry_mem_node_page_faults_total", {}, ">=", 50, "start", "faults"),
    Delta("scry_mem_node_oom_kills_total", {"scope": "memcg"}, "==", 1, "swap"),
    Delta("scry_mem_node_oom_kills_total", {"scope": "global"}, "==", 0),
    Delta("scry_mem_oom_kills_total", {"cgroup": "/scry-oom", "scope": "memcg"}, "==", 1, "swap"),
    Delta("scry_mem_reclaim_stall_seconds_count", {"cgroup": "/scry-oom", "kind": "memcg"}, ">", 0, "swap"),
    # dd's 48 MiB buffer: one private anonymous mmap (pending calls live in task storage)
    Value("scry_feature_available", {"feature": "vm_growth"}, "==", 1),
    Delta("scry_mem_vm_mapped_bytes_total", {"cgroup": "/scry-swap", "kind": "anon"}, ">=", 48 << 20, "faults",
          "swap"),
]
# At most 16 MiB of dd's 48 MiB buffer is resident when its second pass begins: >= 32 MiB of pages
# come back from swap, one do_swap_page each (zram swaps in synchronously, without readahead).
MEM_SWAPIN = [
    Delta("scry_mem_swapin_duration_seconds_count", {"cgroup": "/scry-swap"}, ">=", 8192, "faults", "swap"),
    Delta("scry_mem_node_swapin_duration_seconds_count", {}, ">=", 8192, "faults", "swap"),
]


# scry-net: busybox httpd on the loopback, 10 requests by busybox wget, then a connect to a closed port.
NET_WORKLOAD = r"""
mkdir -p /tmp/www && echo hello > /tmp/www/f
httpd -f -p 127.0.0.1:8080 -h /tmp/www &
httpd_pid=$!
i=0; while ! wget -q -O /dev/null http://127.0.0.1:8080/f 2>/dev/null && [ $i -lt 50 ]; do usleep 100000; i=$((i+1)); done
scrape before
i=0; while [ $i -lt 10 ]; do wget -q -O /dev/null http://127.0.0.1:8080/f || die wget; i=$((i+1)); done
scrape conns
wget -q -O /dev/null http://127.0.0.1:8081/f 2>/dev/null && die "a connect to a closed port worked"
kill $httpd_pid
"""

NET_CLIENT = {"direction": "client", "peer": "127.0.0.1", "port": "8080"}
NET_CONNECTIONS = [
    Delta("scry_net_connections_opened_total", NET_CLIENT, "==", 10, "before", "conns"),
    Delta("scry_net_connections_opened_total", {"direction": "server", "port": "8080"}, "==", 10, "before", "conns"),
    Delta("scry_net_connect_duration_seconds_count", NET_CLIENT, "==", 10, "before", "conns"),
    Delta("scry_net_connections_closed_total", NET_CLIENT, "==", 10, "before", "end"),
    Delta("scry_net_connections_failed_total", {"direction": "client", "port": "8081", "reason": "refused"},
          "==", 1, "conns", "end"),
]


def unavailable(*features):
    return [Value("scry_feature_available", {"feature": f}, "==", 0) for f in features]


EXPORTERS = [
    Exporter(
        "block", 9652, BLOCK_WORKLOAD,
        args=["--collector.cgroup", "--bpf.stats"],
        tools=["losetup", "dd"],
        modules=["loop"],
        expect=BLOCK_DIRECT + BLOCK_LATENCY + BLOCK_PAGE_DIRTY + BLOCK_PAGE_ADD + BLOCK_PAGE_ACCESS + [
            # what the host cannot do: page cache accesses through fentry
            Value("scry_feature_available", {"feature": "page_cache_accesses"}, "==", 1),
            Value("scry_bpf_program_attached", {"hook": "page_access", "mode": "fentry"}, "==", 1),
        ],
        modes={
            "rq_complete": {"guest": "tp_btf"},
            "rq_issue": {"guest": "tp_btf"},
            "page_access": {"host": "none", "guest": "fentry"},
            "page_add": {"guest": "tp_btf"},
            "page_dirty": {"guest": "tp_btf"},
        },
        # The default run picks tp_btf (and fentry for page_access) on 6.1; these passes narrow
        # --bpf.attach-modes so that every other attach mode of each hook is loaded, attached
        # and driven by the same workload. (The loader tries the modes in its fixed order
        # tp_btf, raw_tp, tracepoint, fentry, kprobe, whatever order the flag lists them in.)
        passes=[
            # Only kprobes: the request hooks on blk_mq_start_request / blk_update_request, page
            # accesses on folio_mark_accessed; page_add / page_dirty have no kprobe candidate.
            Pass("kprobe", ["--bpf.attach-modes=kprobe"],
                 modes={"rq_complete": "kprobe", "rq_issue": "kprobe", "rq_insert": "none", "rq_merge": "none",
                        "page_access": "kprobe", "page_add": "none", "page_dirty": "none"},
                 expect=BLOCK_DIRECT + BLOCK_LATENCY + BLOCK_PAGE_ACCESS
                 + unavailable("page_cache_additions", "page_cache_dirtied")),
            # Classic tracepoints, kprobes where a hook has none: rq_complete takes its tracepoint
            # (it comes before kprobe), which gives no request, so latency is unavailable and its
            # rq_issue kprobe, which works, is not loaded; exact counts and bytes all the same.
            # page_add and page_dirty through their tracepoints, page_access through its kprobe.
            Pass("tracepoint", ["--bpf.attach-modes=kprobe,tracepoint"],
                 modes={"rq_complete": "tracepoint", "rq_issue": "none", "rq_insert": "none", "rq_merge": "none",
                        "page_access": "kprobe", "page_add": "tracepoint", "page_dirty": "tracepoint"},
                 expect=BLOCK_DIRECT + BLOCK_PAGE_DIRTY + BLOCK_PAGE_ADD + BLOCK_PAGE_ACCESS
                 + unavailable("latency", "cgroup")),
            # raw_tp for all four request hooks, fentry for page accesses.
            Pass("raw_tp", ["--bpf.attach-modes=raw_tp,fentry"],
                 modes={"rq_complete": "raw_tp", "rq_issue": "raw_tp", "rq_insert": "raw_tp", "rq_merge": "raw_tp",
                        "page_access": "fentry", "page_add": "none", "page_dirty": "none"},
                 expect=BLOCK_DIRECT + BLOCK_LATENCY + BLOCK_PAGE_ACCESS
                 + unavailable("page_cache_additions", "page_cache_dirtied")),
            # fentry for the request hooks (blk_mq_start_request / blk_update_request).
            Pass("fentry", ["--bpf.attach-modes=fentry"],
                 modes={"rq_complete": "fentry", "rq_issue": "fentry", "rq_insert": "none", "rq_merge": "none",
                        "page_access": "fentry", "page_add": "none", "page_dirty": "none"},
                 expect=BLOCK_DIRECT + BLOCK_LATENCY + BLOCK_PAGE_ACCESS
                 + unavailable("page_cache_additions", "page_cache_dirtied")),
        ],
    ),
    # scry-sched-sli: 20 sleeps of 20 ms by one process; the guest has no cgroup v2 tree, so only
    # node-wide series move. tp_btf and task storage are all it uses; the iterator lists blocked tasks.
    # Both kernels have sched_info, so the wakeup hooks are not loaded; a pass forces them.
    Exporter(
        "sched-sli", 9653, SCHED_WORKLOAD,
        args=["--bpf.stats"],
        expect=[
            Delta("scry_sched_node_offcpu_seconds_count", {"reason": "sleep"}, ">=", 20),
            Delta("scry_sched_node_runqueue_latency_seconds_count", {}, ">=", 20),
            Value("scry_feature_available", {"feature": "hung_tasks"}, "==", 1),
            Value("scry_sched_hung_task_scan_errors_total", {}, "==", 0),
        ],
        modes={
            "sched_switch": {"host": "tp_btf", "guest": "tp_btf"},
            "blocked_tasks": {"host": "iter", "guest": "iter"},
        },
        passes=[
            Pass("wakeups", ["--collector.sched-info=false"],
                 modes={"sched_switch": "tp_btf", "sched_wakeup": "tp_btf", "sched_wakeup_new": "tp_btf",
                        "blocked_tasks": "iter"}),
        ],
    ),
    # scry-mem-sli: what the host cannot do (swap-ins and major faults need fentry/fexit or kprobes),
    # and 6.1's mark_victim, which gives only the victim's pid. The default run counts faults from the
    # memory cgroups (pure cgroup v2 here); a pass counts them with the fault hooks (fexit for major
    # faults), another loads the kprobe and classic tracepoint programs instead.
    Exporter(
        "mem-sli", 9654, MEM_WORKLOAD,
        args=["--bpf.stats"],
        modules=["zram", "lzo-rle"],  # zram compresses with lzo-rle by default
        expect=MEM_COMMON + MEM_SWAPIN + [
            Value("scry_feature_available", {"feature": "swap_in"}, "==", 1),
            Value("scry_feature_available", {"feature": "memcg_faults"}, "==", 1),
            # pages read back from swap (in dd's read(), a kernel-mode fault) are major faults of the
            # cgroup: half of the >= 32 MiB, to be safe
            Delta("scry_mem_major_page_faults_total", {"cgroup": "/scry-swap"}, ">=", 4096, "faults", "swap"),
            Delta("scry_mem_page_faults_total", {"cgroup": "/scry-swap"}, ">=", 4096, "faults", "swap"),
            Value("scry_lost_events_total", {"reason": "oom_events_ringbuf_full"}, "==", 0),
        ],
        modes={
            "mark_victim": {"host": "tp_btf", "guest": "tp_btf"},
            "memcg_reclaim_begin": {"host": "tp_btf", "guest": "tp_btf"},
            "swapin_begin": {"host": "none", "guest": "fentry"},
            "swapin_end": {"host": "none", "guest": "fentry"},
        },
        passes=[
            Pass("hook", ["--faults.source=hook"],
                 modes={"page_fault_user": "tp_btf", "major_fault": "fentry"},
                 # (dd's swap-ins are faults the kernel takes in read(): no user-mode major fault to count)
                 expect=MEM_COMMON + MEM_SWAPIN + [
                     Value("scry_feature_available", {"feature": "major_faults"}, "==", 1),
                 ]),
            Pass("kprobe", ["--bpf.attach-modes=kprobe,tracepoint", "--faults.source=hook"],
                 modes={"page_fault_user": "tracepoint", "mark_victim": "tracepoint",
                        "memcg_reclaim_begin": "tracepoint", "swapin_begin": "kprobe", "swapin_end": "kprobe",
                        "major_fault": "none"},
                 expect=MEM_COMMON + MEM_SWAPIN + unavailable("major_faults")),
        ],
    ),
    # scry-net: 10 HTTP requests by busybox wget to busybox httpd on the guest's loopback (one TCP
    # connection each, counted on both sides), then one connect to a closed port (refused). Passes load
    # the raw_tp programs and the classic tracepoint (connections only).
    Exporter(
        "net", 9651, NET_WORKLOAD,
        args=["--bpf.stats"],
        expect=NET_CONNECTIONS + [
            Delta("scry_net_rtt_seconds_count", {"direction": "client", "peer": "127.0.0.1", "port": "8080"},
                  ">=", 10, "before", "conns"),
            Value("scry_feature_available", {"feature": "drops"}, "==", 1),
            Value("scry_feature_available", {"feature": "resets"}, "==", 1),
            Value("scry_feature_available", {"feature": "sockets"}, "==", 1),
            # httpd's listening socket, found by the socket iterator
            Value("scry_net_listen_queue_capacity", {"port": "8080"}, ">=", 1, at="conns"),
        ],
        modes={
            "set_state": {"host": "tp_btf", "guest": "tp_btf"},
            "probe": {"host": "tp_btf", "guest": "tp_btf"},
            "kfree_skb": {"host": "tp_btf", "guest": "tp_btf"},
            "retransmit_synack": {"host": "tp_btf", "guest": "tp_btf"},
            "socket_files": {"host": "iter", "guest": "iter"},
        },
        passes=[
            Pass("raw_tp", ["--bpf.attach-modes=raw_tp"],
                 modes={"set_state": "raw_tp", "probe": "raw_tp", "retransmit": "raw_tp",
                        "retransmit_synack": "raw_tp", "kfree_skb": "raw_tp"},
                 expect=NET_CONNECTIONS),
            Pass("tracepoint", ["--bpf.attach-modes=tracepoint"],
                 modes={"set_state": "tracepoint", "probe": "none", "retransmit": "none",
                        "retransmit_synack": "none",
                        "kfree_skb": "none", "socket_files": "iter"},
                 expect=NET_CONNECTIONS + unavailable("retransmits", "resets", "rtt", "drops")),
        ],
    ),
]


# ----------------------------------------------------------------------------------------------

class Failure(Exception):
    pass


class Skip(Exception):
    pass


def log(msg):
    print("vm.kernel_matrix: " + msg, flush=True)


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """Prometheus text format -> list of (name, {labels}, value)."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            raise Failure("unparsable metrics line: %r" % line)
        out.append((m.group(1), dict(_LABEL.findall(m.group(3) or "")), float(m.group(4))))
    return out


def metric_sum(samples, name, labels):
    """Sum of the series of name whose labels include labels; None if there is none."""
    found = [v for n, ls, v in samples if n == name and all(ls.get(k) == v2 for k, v2 in labels.items())]
    return sum(found) if found else None


def parse_check(text):
    """--check output -> (usable line, [{feature,state,hook,mode,program,rest}])."""
    lines = text.splitlines()
    rows, header_seen = [], False
    for line in lines:
        if line.startswith("FEATURE "):
            header_seen = True
            continue
        if header_seen and line.strip():
            parts = line.split(None, 4)
            if len(parts) < 5:
                raise Failure("unparsable --check line: %r" % line)
            rows.append(dict(feature=parts[0], state=parts[1], hook=parts[2], mode=parts[3],
                             program=parts[4].split()[0], rest=parts[4], line=line))
    if not header_seen:
        raise Failure("--check printed no table:\n" + text)
    return (lines[0] if lines else ""), rows


_CHECK_PROGRAM = re.compile(r"\S+(  \((optional; )?[^()]*\))?")


def check_table_problems(rows):
    """Rows of a --check table that are not whole: each is "program" or "program  (reasons)",
    one line per hook. A row cut short, or two rows run together on one line, would otherwise
    be misread (its hook silently missing from the table)."""
    return ["--check row is cut short or runs into the next row (%d chars): %r" % (len(r["line"]), r["line"])
            for r in rows if not _CHECK_PROGRAM.fullmatch(r["rest"].strip())]


# libbpf (through the exporter's debug log) names each candidate program the kernel refused.
_LOAD_FAILED = re.compile(r"prog '([A-Za-z0-9_]+)': BPF program load failed: ([A-Za-z ]+)")


def verifier_rejections(check_log):
    """Programs the verifier refused (EACCES/EINVAL at load): a CO-RE or verifier bug, never a
    missing hook (a missing hook fails earlier with ENOENT/ESRCH, or EPERM when fentry is off)."""
    bad = {}
    for m in _LOAD_FAILED.finditer(check_log):
        if m.group(2).strip() in ("Permission denied", "Invalid argument"):
            bad.setdefault(m.group(1), m.group(2).strip())
    return bad


def verifier_excerpt(check_log, program, limit=1500):
    for line in check_log.splitlines():
        if ("prog '%s': -- BEGIN PROG LOAD LOG" % program) in line:
            text = line.split('detail="', 1)[-1].replace("\\n", "\n").replace('\\"', '"')
            return text[:limit]
    return "(no verifier log in the exporter's debug output)"


# ----------------------------------------------------------------------------------------------
# The guest script

GUEST_LIB = r"""
# sourced by the guest script and the workloads (generated by test_kernel_matrix.py)
# (busybox wget's -T segfaults in Debian 12's busybox 1.35: bound it with timeout instead)
mark() { echo "@@SCRY $*"; }
die() { mark "DIE $EXPORTER $*"; exit 1; }
var() { mark "VAR $EXPORTER $1"; }
scrape() {
    mark "SCRAPE-BEGIN $EXPORTER $1"
    rm -f /tmp/scrape.txt
    timeout 20 wget -q -O /tmp/scrape.txt "http://127.0.0.1:$PORT/metrics"; _rc=$?
    cat /tmp/scrape.txt; echo
    mark "SCRAPE-END $EXPORTER $1 rc=$_rc"
}
"""

GUEST_EXPORTER = r"""
EXPORTER=@KEY@; PORT=@PORT@; BIN=/usr/local/bin/scry-@NAME@; ARGS=@ARGS@
mark "EXPORTER-BEGIN $EXPORTER $(cut -d' ' -f1 /proc/uptime)"
timeout @STEP@ $BIN --check --log.level debug $ARGS >/tmp/$EXPORTER.check 2>/tmp/$EXPORTER.check.log; rc=$?
mark "CHECK-BEGIN $EXPORTER"; cat /tmp/$EXPORTER.check; mark "CHECK-END $EXPORTER rc=$rc"
mark "CHECKLOG-BEGIN $EXPORTER"; cat /tmp/$EXPORTER.check.log; mark "CHECKLOG-END $EXPORTER"
if [ $rc = 0 ]; then
    $BIN --web.listen-address=127.0.0.1:$PORT $ARGS >/tmp/$EXPORTER.log 2>&1 &
    pid=$!
    ready=0; i=0
    while [ $i -lt $((@STEP@ * 10)) ]; do
        if timeout 10 wget -q -O /dev/null "http://127.0.0.1:$PORT/metrics" 2>/dev/null; then ready=1; break; fi
        kill -0 $pid 2>/dev/null || break
        sleep 0.1; i=$((i + 1))
    done
    mark "READY $EXPORTER $ready"
    if [ $ready = 1 ]; then
        scrape start
        timeout @WORKLOAD_TIMEOUT@ sh -c '. /scry/matrix/lib.sh; EXPORTER=$1; PORT=$2; . /scry/matrix/workload-$3.sh' \
            workload $EXPORTER $PORT @NAME@; rc=$?
        mark "WORKLOAD $EXPORTER rc=$rc"
        scrape end
    fi
    kill -TERM $pid 2>/dev/null
    ( sleep @STEP@; kill -KILL $pid 2>/dev/null ) & watchdog=$!
    wait $pid; rc=$?
    kill $watchdog 2>/dev/null
    mark "STOPPED $EXPORTER rc=$rc"
    mark "LOG-BEGIN $EXPORTER"; cat /tmp/$EXPORTER.log; mark "LOG-END $EXPORTER"
fi
mark "EXPORTER-END $EXPORTER $(cut -d' ' -f1 /proc/uptime)"
"""


def guest_script(exporters, step_timeout):
    """The exporters one after the other, each's passes right after its default run (same port:
    the previous process has exited)."""
    parts = ["#!/bin/sh", ". /scry/matrix/lib.sh", 'mark "KERNEL $(uname -r)"']
    for r in guest_runs(exporters):
        parts.append(GUEST_EXPORTER
                     .replace("@KEY@", r.key)
                     .replace("@NAME@", r.exporter.name)
                     .replace("@PORT@", str(r.exporter.port))
                     .replace("@ARGS@", shlex.quote(" ".join(shlex.quote(a) for a in r.args)))
                     .replace("@STEP@", str(int(step_timeout)))
                     .replace("@WORKLOAD_TIMEOUT@", str(int(r.exporter.workload_timeout))))
    parts.append('mark "ALL-DONE"')
    return "\n".join(parts) + "\n"


def parse_guest(output):
    """The guest's marked output -> {exporter: {...}} plus the kernel release."""
    res, kernel = {}, None
    cur = None  # (exporter, kind, label) of an open block
    buf = []
    done = False
    for line in output.splitlines():
        if not line.startswith("@@SCRY "):
            if cur:
                buf.append(line)
            continue
        words = line[len("@@SCRY "):].split(" ", 3)
        tag = words[0]
        if tag == "KERNEL":
            kernel = words[1] if len(words) > 1 else "?"
            continue
        if tag == "ALL-DONE":
            done = True
            continue
        name = words[1] if len(words) > 1 else "?"
        r = res.setdefault(name, dict(scrapes={}, vars={}, check=None, check_rc=None, check_log="", ready=None,
                                      workload_rc=None, stop_rc=None, log="", died=[], finished=False,
                                      t_begin=None, t_end=None))
        if tag in ("CHECK-BEGIN", "CHECKLOG-BEGIN", "LOG-BEGIN", "SCRAPE-BEGIN"):
            cur, buf = (name, tag, words[2] if len(words) > 2 else None), []
        elif tag == "CHECK-END":
            r["check"], r["check_rc"] = "\n".join(buf), int(words[2].split("=")[1])
            cur = None
        elif tag == "CHECKLOG-END":
            r["check_log"], cur = "\n".join(buf), None
        elif tag == "LOG-END":
            r["log"], cur = "\n".join(buf), None
        elif tag == "SCRAPE-END":
            label, rc = words[2], int(words[3].split("=")[1])
            r["scrapes"][label] = ("\n".join(buf), rc)
            cur = None
        elif tag == "VAR":
            k, _, v = " ".join(words[2:]).partition("=")
            r["vars"][k] = v
        elif tag == "READY":
            r["ready"] = words[2] == "1"
        elif tag == "WORKLOAD":
            r["workload_rc"] = int(words[2].split("=")[1])
        elif tag == "STOPPED":
            r["stop_rc"] = int(words[2].split("=")[1])
        elif tag == "DIE":
            r["died"].append(" ".join(words[2:]))
        elif tag == "EXPORTER-BEGIN" and len(words) > 2:
            r["t_begin"] = float(words[2])
        elif tag == "EXPORTER-END":
            r["finished"] = True
            if len(words) > 2:
                r["t_end"] = float(words[2])
    return kernel, res, done


# ----------------------------------------------------------------------------------------------

class Run:
    def __init__(self, args):
        self.args = args
        self.t0 = time.monotonic()
        self.timings = []
        self.errors = []
        self.console = None

    def remaining(self):
        return self.args.deadline - (time.monotonic() - self.t0)

    def timed(self, what, t):
        self.timings.append((what, time.monotonic() - t))

    def fail(self, msg):
        self.errors.append(msg)


def fetch_kernel(run):
    t = time.monotonic()
    cmd = [os.path.join(HERE, "fetch-kernel.sh"), run.args.cache_dir]
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                           timeout=max(30, run.remaining() - 120))
    except subprocess.TimeoutExpired:
        raise Failure("fetch-kernel.sh timed out")
    run.timed("fetch kernel (cached after the first run)", t)
    if p.returncode != 0:
        msg = "fetch-kernel.sh failed: " + (p.stderr.strip().splitlines() or ["?"])[-1]
        if CI:
            raise Failure(msg + " (CI=true: a missing network or package is a failure)")
        raise Skip(msg)
    for line in p.stderr.splitlines():
        if "package:" in line or "cached:" in line:
            log(line.strip())


def host_tool(name):
    path = shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin:/usr/bin:/bin")
    if not path:
        raise Failure("the workloads need %r on the host (to copy into the guest); it is not installed" % name)
    return path


def ensure_tracefs():
    with open("/proc/mounts") as f:
        if any(l.split()[1:3] == ["/sys/kernel/tracing", "tracefs"] for l in f):
            return
    subprocess.run(["mount", "-t", "tracefs", "nodev", "/sys/kernel/tracing"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def host_checks(run, binaries):
    ensure_tracefs()
    out = {}
    t = time.monotonic()
    for e in EXPORTERS:
        try:
            p = subprocess.run([binaries[e.name], "--check", "--log.level", "debug", *e.args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                               timeout=120)
        except subprocess.TimeoutExpired:
            run.fail("host: scry-%s --check did not finish in 120 s" % e.name)
            continue
        out[e.name] = p
        if p.returncode != 0:
            run.fail("host: scry-%s --check exited %d:\n%s%s" % (e.name, p.returncode, p.stdout, p.stderr[-3000:]))
    run.timed("--check on the host", t)
    return out


def run_guest(run, binaries):
    work = tempfile.mkdtemp(prefix="kernel-matrix.", dir=os.path.join(run.args.cache_dir, "tmp"))
    try:
        files = os.path.join(work, "matrix")
        os.makedirs(files)
        lib = GUEST_LIB
        tools = sorted({t for e in EXPORTERS for t in e.tools})
        tool_paths = {t: host_tool(t) for t in tools}
        # Debian's busybox sh runs its applets before PATH; call the copied tools by path (also in
        # the `sh -c` of the workloads, which does not see run-guest.py's prelude).
        for t, p in tool_paths.items():
            lib += '%s() { %s "$@"; }\n' % (t, shlex.quote(p))
        with open(os.path.join(files, "lib.sh"), "w") as f:
            f.write(lib)
        for e in EXPORTERS:
            with open(os.path.join(files, "workload-%s.sh" % e.name), "w") as f:
                f.write(e.workload)
        script = os.path.join(work, "guest.sh")
        with open(script, "w") as f:
            f.write(guest_script(EXPORTERS, run.args.step_timeout))

        cmd = [sys.executable, os.path.join(HERE, "run-guest.py"), "--cache-dir", run.args.cache_dir,
               "--script", script, "--file", files + ":/scry/matrix", "--dmesg", "1",
               "--boot-timeout", str(int(run.args.boot_timeout)),
               "--log", os.path.join(work, "console.log")] + run.args.run_guest_arg
        for e in EXPORTERS:
            cmd += ["--bin", "%s:/usr/local/bin/scry-%s" % (binaries[e.name], e.name)]
        for p in tool_paths.values():
            cmd += ["--bin", p]
        modules = sorted({m for e in EXPORTERS for m in e.modules} - {"loop"})
        if modules:
            cmd += ["--module", ",".join(modules)]
        t = time.monotonic()
        # Under multi-threaded TCG the 6.1 guest was seen, in a quarter to half of the boots, to oops with a
        # call to address 0 from a caller of a function a kprobe had just been placed on, or to lock up both
        # CPUs while attaching or detaching programs (the kernel's text patching; no BPF frame on the stack).
        # run-guest.py runs all guest CPUs on one host thread now, where none of this was seen; should a
        # boot still crash, panic or hang, it is tried again, once, and said so in the log; a crash or a
        # hang that repeats fails the test.
        for attempt in (1, 2):
            guest_timeout = min(run.args.guest_timeout, max(60, run.remaining() - 30))
            try:
                p = subprocess.run(cmd + ["--timeout", str(int(guest_timeout))], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, universal_newlines=True, timeout=guest_timeout + 60)
            except subprocess.TimeoutExpired:
                raise Failure("run-guest.py did not return within %d s" % (guest_timeout + 60))
            console_path = os.path.join(work, "console.log")
            console = open(console_path, errors="replace").read() if os.path.isfile(console_path) else ""
            oops = [l for l in console.splitlines()
                    if "Oops:" in l or "BUG: kernel" in l or "BUG: soft lockup" in l or "Kernel panic" in l]
            hung = p.returncode == EXIT_TIMEOUT
            if p.returncode == 0 or not (oops or hung) or attempt == 2:
                break
            log("guest kernel %s; booting it once more" % (
                "crashed (%s)" % oops[0].strip() if oops else "made no progress until the run timeout"))
        run.timed("guest: initramfs + boot + all exporters + power-off", t)
        if os.path.isfile(os.path.join(work, "console.log")):
            with open(os.path.join(work, "console.log"), errors="replace") as f:
                run.console = f.read()
        else:
            run.console = p.stderr
        for line in p.stderr.splitlines():
            if line.startswith("run-guest: initramfs"):
                run.guest_timing = line[len("run-guest: "):]
        if p.returncode != 0:
            err = [l for l in p.stderr.splitlines() if l.startswith("run-guest: error")]
            raise Failure("run-guest.py exited %d%s" % (p.returncode, (": " + err[0]) if err else ""))
        return parse_guest(p.stdout)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def expand(labels, variables, exporter):
    out = {}
    for k, v in labels.items():
        try:
            out[k] = v.format(**variables)
        except KeyError as e:
            raise Failure("%s: the workload did not report var %s" % (exporter, e))
    return out


def evaluate_guest(run, kernel, guest, host):
    """All guest-side assertions; returns {run key: check rows} for the table."""
    rows = {}
    for gr in guest_runs(EXPORTERS):
        e = gr.exporter
        g = guest.get(gr.key)
        if not g:
            run.fail("guest: %s never ran (the guest script stopped before it)" % gr.label)
            continue
        where = "guest %s: %s" % (kernel, gr.label)
        if g["check"] is None:
            run.fail("%s --check produced no result" % where)
            continue
        if g["check_rc"] != 0:
            run.fail("%s --check exited %d:\n%s\n%s" % (where, g["check_rc"], g["check"], g["check_log"][-3000:]))
        try:
            _, rows[gr.key] = parse_check(g["check"])
        except Failure as err:
            run.fail("%s: %s" % (where, err))
            continue
        for msg in check_table_problems(rows[gr.key]):
            run.fail("%s: %s" % (where, msg))
        for prog, why in sorted(verifier_rejections(g["check_log"]).items()):
            run.fail("%s: the verifier rejected program %s (%s); the loader fell back to a worse mode. "
                     "Start of its verifier log:\n%s" % (where, prog, why, verifier_excerpt(g["check_log"], prog)))
        if g["check_rc"] != 0:
            continue
        if not g["ready"]:
            run.fail("%s did not serve /metrics:\n%s" % (where, g["log"]))
            continue
        for d in g["died"]:
            run.fail("%s workload: %s" % (where, d))
        if g["workload_rc"] != 0:
            run.fail("%s workload exited %s (124: timeout)" % (where, g["workload_rc"]))
        if g["stop_rc"] != 0:
            run.fail("%s exited %s on SIGTERM (want 0); its log:\n%s" % (where, g["stop_rc"], g["log"]))
        scrapes = {}
        for label, (text, rc) in g["scrapes"].items():
            if rc != 0:
                run.fail("%s: scrape %r failed (wget rc %d)" % (where, label, rc))
                continue
            try:
                scrapes[label] = parse_metrics(text)
            except Failure as err:
                run.fail("%s: scrape %r: %s" % (where, label, err))

        # The self-metrics agree with --check.
        end = scrapes.get("end")
        if end is not None:
            for r in rows[gr.key]:
                if r["hook"] == "-" or r["state"] == "disabled":
                    continue
                if r["mode"] != "none":
                    v = metric_sum(end, "scry_bpf_program_attached", {"hook": r["hook"], "mode": r["mode"]})
                    if v != 1:
                        run.fail("%s: --check attached hook %s as %s, but /metrics has "
                                 "scry_bpf_program_attached{hook=%r,mode=%r} = %s"
                                 % (where, r["hook"], r["mode"], r["hook"], r["mode"], v))
            for feature in sorted({r["feature"] for r in rows[gr.key]}):
                state = [r["state"] for r in rows[gr.key] if r["feature"] == feature][0]
                if state == "disabled":
                    continue
                v = metric_sum(end, "scry_feature_available", {"feature": feature})
                want = 1 if state == "available" else 0
                if v != want:
                    run.fail("%s: --check says feature %s is %s, /metrics has scry_feature_available = %s"
                             % (where, feature, state, v))

        # The workload moved what it should.
        for d in gr.expect:
            try:
                labels = expand(d.labels, g["vars"], gr.label)
            except Failure as err:
                run.fail("%s: %s" % (where, err))
                continue
            what = d.describe(labels)
            if isinstance(d, Value):
                if d.at not in scrapes:
                    run.fail("%s: %s: no scrape %r" % (where, what, d.at))
                    continue
                delta = metric_sum(scrapes[d.at], d.name, labels)
                if delta is None:
                    run.fail("%s: %s: series missing from the %r scrape" % (where, what, d.at))
                    continue
            else:
                if d.since not in scrapes or d.until not in scrapes:
                    run.fail("%s: %s: no scrape %r or %r" % (where, what, d.since, d.until))
                    continue
                a = metric_sum(scrapes[d.since], d.name, labels)
                b = metric_sum(scrapes[d.until], d.name, labels)
                if b is None:
                    run.fail("%s: %s: series missing from the %r scrape" % (where, what, d.until))
                    continue
                delta = b - (a or 0)
            ok = {"==": delta == d.value, ">=": delta >= d.value, ">": delta > d.value}[d.op]
            if not ok:
                run.fail("%s: %s: got %.17g" % (where, what, delta))
            else:
                log("guest: %s: %s: %.17g ok" % (gr.label, what, delta))
    return rows


def evaluate_modes(run, host_rows, guest_rows):
    differs = []
    for e in EXPORTERS:
        h = {r["hook"]: r for r in host_rows.get(e.name, []) if r["hook"] != "-"}
        g = {r["hook"]: r for r in guest_rows.get(e.name, []) if r["hook"] != "-"}
        for hook, want in sorted(e.modes.items()):
            for side, table in (("host", h), ("guest", g)):
                if side in want and table:
                    got = table.get(hook, {}).get("mode")
                    if got != want[side]:
                        run.fail("scry-%s: hook %s attached as %s on the %s, expected %s"
                                 % (e.name, hook, got, side, want[side]))
        for hook in sorted(set(h) & set(g)):
            if h[hook]["state"] != "disabled" and h[hook]["mode"] != g[hook]["mode"]:
                differs.append("%s/%s" % (e.name, hook))
    for gr in guest_runs(EXPORTERS):
        if gr.pass_ is None or gr.key not in guest_rows:
            continue
        table = {r["hook"]: r for r in guest_rows[gr.key] if r["hook"] != "-"}
        for hook, want in sorted(gr.pass_.modes.items()):
            row = table.get(hook)
            got = row["mode"] if row else None
            if got != want:
                run.fail("guest: %s: hook %s attached as %s, expected %s%s"
                         % (gr.label, hook, got, want, ("; --check says: " + row["rest"]) if row else ""))
    if host_rows and guest_rows and not differs:
        run.fail("no hook picked a different attach mode on 6.1 than on the host: the fallback was not exercised")
    return differs


def pass_names():
    names = []
    for e in EXPORTERS:
        names += [p.name for p in e.passes if p.name not in names]
    return names


def print_table(host_kernel, guest_kernel, host_rows, guest_rows):
    """exporter | hook | feature | host | guest | guest, pass <name> (one column per pass name)."""
    passes = pass_names()
    hdr = (("exporter", "hook", "feature", "host %s" % host_kernel, "guest %s" % (guest_kernel or "?"))
           + tuple("guest, pass %s" % n for n in passes))
    cell = lambda r: "-" if not r else ("%s (%s)" % (r["mode"], r["program"]) if r["mode"] != "none" else "none")
    lines = []
    for e in EXPORTERS:
        h = {r["hook"]: r for r in host_rows.get(e.name, [])}
        g = {r["hook"]: r for r in guest_rows.get(e.name, [])}
        p = {n: {r["hook"]: r for r in guest_rows.get("%s@%s" % (e.name, n), [])} for n in passes}
        hooks = []
        for rows in [host_rows.get(e.name), guest_rows.get(e.name)] + [guest_rows.get("%s@%s" % (e.name, n))
                                                                         for n in passes]:
            hooks += [r["hook"] for r in rows or [] if r["hook"] != "-" and r["hook"] not in hooks]
        for hook in hooks:
            feature = [t[hook]["feature"] for t in [h, g] + [p[n] for n in passes] if hook in t][0]
            lines.append(("scry-" + e.name, hook, feature, cell(h.get(hook)), cell(g.get(hook)))
                         + tuple(cell(p[n].get(hook)) for n in passes))
    widths = [max(len(x) for x in col) for col in zip(hdr, *lines)]
    fmt = " | ".join("%%-%ds" % w for w in widths)
    print(fmt % hdr)
    print("-+-".join("-" * w for w in widths))
    for l in lines:
        print(fmt % l)
    for e in EXPORTERS:
        for ps in e.passes:
            print("pass %s of scry-%s: %s" % (ps.name, e.name, " ".join(ps.args)))
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin-dir", default=os.path.join(REPO, "build", "bin"))
    ap.add_argument("--cache-dir", default=os.path.join(REPO, "build", "vm-cache"))
    ap.add_argument("--deadline", type=float, default=900, help="whole test, seconds")
    ap.add_argument("--guest-timeout", type=float, default=300, help="one guest run, seconds")
    ap.add_argument("--boot-timeout", type=float, default=60)
    ap.add_argument("--step-timeout", type=float, default=60, help="each step in the guest, seconds")
    ap.add_argument("--run-guest-arg", action="append", default=[], metavar="ARG",
                    help="extra run-guest.py argument, e.g. --run-guest-arg=--kernel-messages (repeatable)")
    args = ap.parse_args()
    args.cache_dir = os.path.abspath(args.cache_dir)
    run = Run(args)
    run.guest_timing = None
    guest_kernel, guest, host_out, host_rows, guest_rows = None, {}, {}, {}, {}
    try:
        if os.geteuid() != 0:
            raise Skip("needs root (BPF, apt-get for the kernel package)")
        binaries = {}
        for e in EXPORTERS:
            binaries[e.name] = os.path.join(args.bin_dir, "scry-" + e.name)
            if not os.access(binaries[e.name], os.X_OK):
                raise Failure("%s is not built (every exporter of the matrix must be)" % binaries[e.name])
        os.makedirs(os.path.join(args.cache_dir, "tmp"), exist_ok=True)
        fetch_kernel(run)
        host_out = host_checks(run, binaries)
        for name, p in host_out.items():
            if p.returncode == 0:
                host_rows[name] = parse_check(p.stdout)[1]
                for msg in check_table_problems(host_rows[name]):
                    run.fail("host: scry-%s: %s" % (name, msg))
                for prog, why in sorted(verifier_rejections(p.stderr).items()):
                    run.fail("host: scry-%s: the verifier rejected program %s (%s):\n%s"
                             % (name, prog, why, verifier_excerpt(p.stderr, prog)))
        guest_kernel, guest, done = run_guest(run, binaries)
        for gr in guest_runs(EXPORTERS):
            g = guest.get(gr.key)
            if g and g["t_begin"] is not None and g["t_end"] is not None:
                run.timings.append(("  guest run of scry-%s" % gr.key, g["t_end"] - g["t_begin"]))
        if not done:
            run.fail("the guest script did not reach its end")
        guest_rows = evaluate_guest(run, guest_kernel, guest, host_out)
        differs = evaluate_modes(run, host_rows, guest_rows)
        print()
        print_table(os.uname().release, guest_kernel, host_rows, guest_rows)
        print()
        if differs:
            log("hooks with a different attach mode on 6.1 than on the host: " + ", ".join(differs))
    except Skip as s:
        if not CI:
            log("SKIPPED: %s" % s)
            return SKIP
        run.fail("%s (CI=true: a test that would skip is a failure)" % s)
    except Failure as f:
        run.fail(str(f))
        if host_rows or guest_rows:
            print_table(os.uname().release, guest_kernel, host_rows, guest_rows)

    if run.guest_timing:
        log("run-guest: " + run.guest_timing)
    for what, secs in run.timings:
        log("time: %-52s %6.1f s" % (what, secs))
    log("time: %-52s %6.1f s" % ("whole test", time.monotonic() - run.t0))
    if run.errors:
        for msg in run.errors:
            print("FAIL: " + msg, flush=True)
        if run.console:
            print("----- guest console log (dmesg at the end) -----")
            print(run.console)
            print("----- end of guest console log -----")
        log("FAILED (%d problem%s)" % (len(run.errors), "" if len(run.errors) == 1 else "s"))
        return 1
    log("PASSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
