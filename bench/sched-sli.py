#!/usr/bin/env python3
"""Benchmark of scry-sched-sli: what its hooks cost per event, and what they cost a scheduler-heavy
workload, next to bpftrace's runqlat.bt doing less work on the same events.

  sudo python3 bench/sched-sli.py                  # about 4 minutes
  sudo python3 bench/sched-sli.py --quick          # one short round (about a minute)

1. Per-event cost with the kernel's BPF stats: scry-sched-sli --bpf.stats, and runqlat.bt (its
   programs found with bpftool), each alone, under `perf bench sched pipe` (two tasks passing a token)
   and `perf bench sched messaging` (many processes passing messages): events and ns/event per hook.
   Reference probes (bench/sched_floor.bpf.c, built at run time with clang, loaded through libbpf):
   an empty program on sched_switch, one bpf_ktime_get_ns(), one bpf_get_current_cgroup_id(), the
   task local storage of both tasks, a per-CPU hash lookup and histogram update: what the building
   blocks cost here, to explain the per-event figures.
2. Slowdown: the run time of `perf bench sched messaging` with nothing attached, with scry-sched-sli
   (as deployed, without --bpf.stats) and with runqlat.bt, alternated for --rounds rounds.
3. A summary against the targets: < 150 ns per sched_switch, < 3 % slowdown, cheaper per event than
   runqlat.bt.

Needs root, perf (Debian's linux-perf), bpftrace and bpftool, and a built scry-sched-sli (default
build-bench/bin, else build/bin; --bin to choose). Exits 0 whatever it measures (it is a report), 2 when
it cannot run at all.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from probes import probe_costs  # noqa: E402


def die(msg):
    print("bench/sched-sli.py: " + msg, file=sys.stderr)
    sys.exit(2)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Scry:
    def __init__(self, binary, *args):
        self.port = free_port()
        self.proc = subprocess.Popen([binary, "--web.listen-address=127.0.0.1:%d" % self.port, *args],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(300):
            try:
                self.scrape()
                return
            except OSError:
                if self.proc.poll() is not None:
                    die("scry-sched-sli exited with %d" % self.proc.returncode)
                time.sleep(0.1)
        die("scry-sched-sli did not start")

    def scrape(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.port, timeout=10) as r:
            return r.read().decode()

    def program_stats(self):
        """{hook: (runs, run ns)} from its self-metrics."""
        runs, secs = {}, {}
        for line in self.scrape().splitlines():
            m = re.match(r'scry_bpf_program_(runs_total|run_seconds_total)\{hook="([^"]+)"[^}]*\} (\S+)', line)
            if m:
                (runs if m.group(1) == "runs_total" else secs)[m.group(2)] = float(m.group(3))
        return {h: (runs[h], secs.get(h, 0) * 1e9) for h in runs}

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)


class Runqlat:
    """bpftrace's runqlat.bt (its include of linux/sched.h dropped: it only needs TASK_RUNNING, 0)."""

    def __init__(self, tmp):
        script = os.path.join(tmp, "runqlat.bt")
        with open("/usr/sbin/runqlat.bt") as src, open(script, "w") as dst:
            dst.write(src.read().replace("#include <linux/sched.h>", "").replace("TASK_RUNNING", "0"))
        self.proc = subprocess.Popen(["bpftrace", script], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True)
        line = ""
        while "Tracing" not in line:
            line = self.proc.stdout.readline()
            if not line and self.proc.poll() is not None:
                die("runqlat.bt did not start")

    def program_stats(self):
        """{tracepoint: (runs, run ns)} of bpftrace's programs, from bpftool."""
        out = subprocess.run(["bpftool", "prog", "show", "--json"], capture_output=True, text=True).stdout
        stats = {}
        for p in json.loads(out):
            if p.get("pids") and not any(x.get("pid") == self.proc.pid for x in p["pids"]):
                continue
            name = p.get("name", "")
            for hook in ("sched_switch", "sched_wakeup_new", "sched_wakeup"):
                if hook in name:
                    runs, ns = stats.get(hook, (0, 0))
                    stats[hook] = (runs + p.get("run_cnt", 0), ns + p.get("run_time_ns", 0))
                    break
        return stats

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        self.proc.communicate(timeout=60)


def messaging(groups, loops):
    """Seconds `perf bench sched messaging` reports."""
    out = subprocess.run(["perf", "bench", "sched", "messaging", "-g", str(groups), "-l", str(loops)],
                         capture_output=True, text=True, check=True).stdout
    return float(re.search(r"Total time: ([\d.]+)", out).group(1))


def pipe(loops):
    subprocess.run(["perf", "bench", "sched", "pipe", "-l", str(loops)], capture_output=True, check=True)


def per_event(tool, workload):
    before = tool.program_stats()
    workload()
    after = tool.program_stats()
    rows = {}
    for hook, (runs, ns) in after.items():
        r0, n0 = before.get(hook, (0, 0))
        if runs - r0 > 0:
            rows[hook] = (int(runs - r0), (ns - n0) / (runs - r0))
    return rows


def table(title, header, rows):
    print("\n" + title)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    for r in [header, ["-" * w for w in widths]] + rows:
        print(" | ".join(str(x).ljust(w) for x, w in zip(r, widths)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", help="scry-sched-sli binary")
    ap.add_argument("--quick", action="store_true", help="one short round")
    ap.add_argument("--rounds", type=int, default=5, help="alternated rounds of the slowdown test")
    args = ap.parse_args()
    if os.geteuid() != 0:
        die("needs root")
    for tool in ("perf", "bpftrace", "bpftool"):
        if not shutil.which(tool):
            die("needs %s" % tool)
    binary = args.bin or next((p for p in (os.path.join(REPO, "build-bench/bin/scry-sched-sli"),
                                           os.path.join(REPO, "build/bin/scry-sched-sli")) if os.path.exists(p)), None)
    if not binary:
        die("no scry-sched-sli binary (build it first)")
    rounds = 1 if args.quick else args.rounds
    pipe_loops, msg_loops = (100000, 200) if args.quick else (300000, 500)
    workloads = [("pipe", lambda: pipe(pipe_loops)), ("messaging", lambda: messaging(10, msg_loops))]

    # 1. Per-event cost, each tool alone, kernel BPF stats on.
    with open("/proc/sys/kernel/bpf_stats_enabled") as f:
        stats_were = f.read().strip()
    cost = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
                f.write("1")
            for name, start in (("scry-sched-sli", lambda: Scry(binary, "--bpf.stats")),
                                ("runqlat.bt", lambda: Runqlat(tmp))):
                tool = start()
                try:
                    for wname, work in workloads:
                        for _ in range(rounds):
                            for hook, (n, ns) in sorted(per_event(tool, work).items()):
                                cost.append((name, wname, hook, n, ns))
                finally:
                    tool.stop()
        finally:
            with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
                f.write(stats_were)

        rows = []
        for key in sorted({c[:3] for c in cost}):
            samples = [c for c in cost if c[:3] == key]
            rows.append([*key, sum(c[3] for c in samples) // len(samples),
                         "%.0f" % statistics.median(c[4] for c in samples),
                         "%.0f-%.0f" % (min(c[4] for c in samples), max(c[4] for c in samples))])
        table("Per-event cost (kernel BPF stats; median over %d runs)" % rounds,
              ["tool", "workload", "hook", "events/run", "ns/event", "range"], rows)

        try:
            with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
                f.write("1")
            floor = probe_costs("sched_floor.bpf.c", workloads[0][1], rounds)
        finally:
            with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
                f.write(stats_were)
        if floor:
            table("Reference probes on sched_switch under %s (bench/sched_floor.bpf.c, nothing else attached)"
                  % workloads[0][0], ["program", "ns/event (median)"],
                  [[name, "%.0f" % statistics.median(v)] for name, v in floor.items()])

        # 2. Slowdown of perf bench sched messaging, alternating the configurations.
        times = {"nothing attached": [], "scry-sched-sli": [], "runqlat.bt": []}
        for _ in range(rounds):
            times["nothing attached"].append(messaging(10, msg_loops))
            scry = Scry(binary)
            try:
                times["scry-sched-sli"].append(messaging(10, msg_loops))
            finally:
                scry.stop()
            bt = Runqlat(tmp)
            try:
                times["runqlat.bt"].append(messaging(10, msg_loops))
            finally:
                bt.stop()
    base = statistics.mean(times["nothing attached"])
    rows = []
    for name, ts in times.items():
        sd = statistics.stdev(ts) if len(ts) > 1 else 0
        rows.append([name, "%.3f" % statistics.mean(ts), "%.3f" % sd, "%+.1f %%" % ((statistics.mean(ts) / base - 1) * 100)])
    table("perf bench sched messaging -g 10 -l %d: seconds (mean of %d rounds)" % (msg_loops, rounds),
          ["attached", "mean s", "stdev s", "vs nothing"], rows)

    # 3. Summary.
    def median_of(tool, hook):
        vals = [c[4] for c in cost if c[0] == tool and c[2] == hook]
        return statistics.median(vals) if vals else float("nan")
    worst_switch = max(statistics.median([c[4] for c in cost if c[0] == "scry-sched-sli" and c[1] == w
                                          and c[2] == "sched_switch"]) for w, _ in workloads)
    slowdown = (statistics.mean(times["scry-sched-sli"]) / base - 1) * 100
    ours_switch, theirs_switch = median_of("scry-sched-sli", "sched_switch"), median_of("runqlat.bt", "sched_switch")
    table("Summary", ["target", "measured", "result"], [
        ["sched_switch < 150 ns/event (worst workload)", "%.0f ns" % worst_switch,
         "PASS" if worst_switch < 150 else "MISS"],
        ["slowdown < 3 %", "%+.1f %%" % slowdown, "PASS" if slowdown < 3 else "MISS"],
        ["sched_switch cheaper than runqlat.bt", "%.0f vs %.0f ns" % (ours_switch, theirs_switch),
         "PASS" if ours_switch < theirs_switch else "MISS"],
    ])


if __name__ == "__main__":
    main()
