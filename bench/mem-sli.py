#!/usr/bin/env python3
"""scry-mem-sli benchmark: per-event cost of the page-fault and mmap hooks (kernel BPF stats, with
--faults.source=hook), what the building blocks of the fault hook cost (bench/fault_floor.bpf.c, needs
clang and libbpf.so.1), and the slowdown of a fault-heavy workload (map 16 MiB, touch every page, unmap,
in a loop) with the exporter attached as deployed (faults from the memory cgroups), with the fault hook
(--faults.source=hook), with only an empty program on the fault tracepoint, and with nothing. Prints
tables; asserts nothing. Needs root, cc, a built scry-mem-sli.

  sudo python3 bench/mem-sli.py [--bin build-bench/bin/scry-mem-sli] [--loops 400] [--repeats 5]
                                [--cost-repeats 3]
"""
import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

WORKLOAD_C = r"""
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	long loops = atol(argv[1]), size = 16 << 20, page = sysconf(_SC_PAGESIZE);
	for (long i = 0; i < loops; i++) {
		char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return 1;
		madvise(p, size, MADV_NOHUGEPAGE);
		for (long off = 0; off < size; off += page)
			p[off] = 1;
		munmap(p, size);
	}
	return 0;
}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Exporter:
    def __init__(self, binary, *args):
        self.port = free_port()
        self.proc = subprocess.Popen([binary, "--web.listen-address=127.0.0.1:%d" % self.port, *args],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(300):
            try:
                self.scrape()
                return
            except OSError:
                time.sleep(0.1)
        raise SystemExit("scry-mem-sli did not start")

    def scrape(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.port, timeout=10) as r:
            return r.read().decode()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)


def prog_stats(text):
    """{hook: (runs, seconds)} from scry_bpf_program_run*."""
    out = {}
    for name, idx in (("scry_bpf_program_runs_total", 0), ("scry_bpf_program_run_seconds_total", 1)):
        for m in re.finditer(r'^%s\{([^}]*)\} (\S+)$' % name, text, re.M):
            hook = re.search(r'hook="([^"]*)"', m.group(1)).group(1)
            out.setdefault(hook, [0, 0.0])[idx] = float(m.group(2))
    return out


def timed(work, loops):
    t = time.perf_counter()
    subprocess.run([work, str(loops)], check=True)
    return time.perf_counter() - t


def table(title, headers, rows):
    print("\n" + title)
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    for r in [headers] + rows:
        print("  ".join(str(x).rjust(w) for x, w in zip(r, widths)))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    default_bin = next((p for p in (os.path.join(here, "..", d, "bin", "scry-mem-sli") for d in ("build-bench", "build"))
                        if os.path.exists(p)), "")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=default_bin)
    ap.add_argument("--loops", type=int, default=400, help="map/touch/unmap rounds per workload run")
    ap.add_argument("--repeats", type=int, default=5, help="alternated runs for the slowdown (0: skip it)")
    ap.add_argument("--cost-repeats", type=int, default=3, help="workload runs for the per-event cost")
    args = ap.parse_args()
    if os.geteuid() != 0 or not os.path.exists(args.bin):
        print("needs root and a built scry-mem-sli (--bin)", file=sys.stderr)
        return 2
    tmp = tempfile.mkdtemp(prefix="scry-mem-bench-")
    work = os.path.join(tmp, "faulter")
    with open(work + ".c", "w") as f:
        f.write(WORKLOAD_C)
    subprocess.run(["cc", "-O2", "-o", work, work + ".c"], check=True)
    pages = 16 << 20 >> 12

    # 1. Per-event cost from the kernel's BPF stats, per workload run (the fault hook is opt-in).
    ex = Exporter(args.bin, "--bpf.stats", "--faults.source=hook")
    per_hook = {}  # hook -> [(events, ns)] one per run
    for _ in range(args.cost_repeats):
        before = prog_stats(ex.scrape())
        timed(work, args.loops)
        after = prog_stats(ex.scrape())
        for hook in after:
            runs = after[hook][0] - before.get(hook, [0, 0])[0]
            secs = after[hook][1] - before.get(hook, [0, 0])[1]
            if runs > 0:
                per_hook.setdefault(hook, []).append((runs, secs * 1e9))
    ex.stop()
    rows = []
    for hook in sorted(per_hook):
        ns = [t / n for n, t in per_hook[hook]]
        rows.append((hook, int(statistics.median(n for n, _ in per_hook[hook])), "%.1f" % statistics.median(ns),
                     "%.1f" % min(ns), "%.1f" % max(ns)))
    table("Per-event cost, %d rounds of map 16 MiB / touch %d pages / unmap (BPF stats), %d runs"
          % (args.loops, pages, args.cost_repeats),
          ("hook", "events/run", "median ns/event", "min", "max"), rows)

    # 2. Reference probes: the building blocks of the fault hook, each attached alone (no exporter).
    sys.path.insert(0, here)
    from probes import attached, probe_costs  # noqa: E402
    floor = probe_costs("fault_floor.bpf.c", lambda: timed(work, args.loops), args.cost_repeats, alone=True)
    if floor:
        base = statistics.median(floor.get("floor_empty", [0]))
        table("Reference probes on page_fault_user (bench/fault_floor.bpf.c), each attached alone, %d runs"
              % args.cost_repeats, ("program", "median ns/event", "above floor_empty"),
              [(name, "%.1f" % statistics.median(v), "%+.1f" % (statistics.median(v) - base))
               for name, v in floor.items()])
    if args.repeats == 0:
        subprocess.run(["rm", "-rf", tmp])
        return 0

    # 3. Slowdown of the workload, exporter attached (no --bpf.stats) vs not, alternated: as deployed,
    # with the fault hook, and with only an empty program on the fault tracepoint (what any per-fault
    # hook costs this workload).
    timed(work, args.loops // 4)  # warm up
    arms = {"scry-mem-sli": [], "scry-mem-sli --faults.source=hook": ["--faults.source=hook"]}
    runs = {"no exporter": [], **{name: [] for name in arms}, "empty program": []}
    for _ in range(args.repeats):
        runs["no exporter"].append(timed(work, args.loops))
        for name, flags in arms.items():
            ex = Exporter(args.bin, *flags)
            runs[name].append(timed(work, args.loops))
            ex.stop()
        with attached("fault_floor.bpf.c", only="floor_empty") as ok:
            if ok:
                runs["empty program"].append(timed(work, args.loops))
    base = runs["no exporter"]
    b = statistics.median(base)

    def slowdowns(t):
        """Of the medians, and the median of each repeat's own pair (drift of the machine cancels)."""
        paired = statistics.median(x / y - 1 for x, y in zip(t, base))
        return "%+.1f%%" % ((statistics.median(t) / b - 1) * 100), "%+.1f%%" % (paired * 100)
    table("Workload time, %d alternated runs" % args.repeats,
          ("run", "median s", "min s", "max s", "slowdown", "paired slowdown"),
          [(name, "%.3f" % statistics.median(t), "%.3f" % min(t), "%.3f" % max(t),
            *(slowdowns(t) if t is not base else ("", ""))) for name, t in runs.items() if t])
    subprocess.run(["rm", "-rf", tmp])
    return 0


if __name__ == "__main__":
    sys.exit(main())
