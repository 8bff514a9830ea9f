#!/usr/bin/env python3
"""Performance benchmark of scry-block: a report, not a test (it exits 0 whatever it measures).

Needs root, fio (installed with apt-get if missing) and a built scry-block. Measures, on a loop
device backed by a file on a private tmpfs (and on null_blk if that module exists):

  1. the per-event cost of each BPF hook, from the kernel's BPF stats (run_time / run_count) as
     scry-block exports them with --bpf.stats, with and without --collector.cgroup, while fio runs;
  2. /metrics latency (sequential scrapes: p50/p99/max), body size and series count, idle and
     during fio;
  3. VmRSS and VmHWM of the exporter, idle and under load;
  4. the overhead seen by the workload: fio IOPS with no exporter, with scry-block and with
     scry-block --collector.cgroup, alternated;
  5. reference costs of the building blocks (an empty program, bpf_ktime_get_ns, probe reads, a hash
     map update/delete, a histogram update) from bench/floor.bpf.c on the same hooks, to explain
     the figures (needs clang; skipped without it).

Every measurement is repeated (--repeats) and reported with its spread: the machine has 2 cores
that other people's builds and tests may be using. See bench/README.md.
"""
import argparse
import contextlib
import gzip
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from probes import Libbpf, probe_costs  # noqa: E402

TARGET_NS_PER_EVENT = 150.0
TARGET_SCRAPE_MS = 10.0
TARGET_RSS_MB = 20.0
MIN_EVENTS = 1000  # a hook that ran fewer times in a job is not judged on that job
# A hook is judged on a job only if the job drives it: at least this many events per fio I/O (background
# events, e.g. rq_insert without a scheduler or page_add during O_DIRECT jobs, are rare and cache-cold).
MIN_EVENTS_PER_IO = 0.1

# name -> (fio arguments, scheduler of the device or None, what it is for)
JOBS = {
    "randread-qd1": (["--rw=randread", "--bs=4k", "--direct=1", "--ioengine=libaio", "--iodepth=1"], None,
                     "4k random read, O_DIRECT, libaio, iodepth 1"),
    "randread-qd32": (["--rw=randread", "--bs=4k", "--direct=1", "--ioengine=libaio", "--iodepth=32"], None,
                      "4k random read, O_DIRECT, libaio, iodepth 32"),
    "randrw-qd32-uring": (["--rw=randrw", "--rwmixread=70", "--bs=4k", "--direct=1", "--ioengine=io_uring",
                           "--iodepth=32"], None, "4k random 70/30 read/write, O_DIRECT, io_uring, iodepth 32"),
    "randread-qd32-sqpoll": (["--rw=randread", "--bs=4k", "--direct=1", "--ioengine=io_uring", "--iodepth=32",
                              "--sqthread_poll=1"], None,
                             "as randread-qd32 but submitted by an io_uring SQPOLL kernel thread (no syscall per I/O)"),
    "randrw-qd32-deadline": (["--rw=randrw", "--rwmixread=70", "--bs=4k", "--direct=1", "--ioengine=libaio",
                              "--iodepth=32"], "mq-deadline",
                             "4k random 70/30, libaio, iodepth 32, device scheduler mq-deadline (rq_insert fires)"),
    "buffered-write": (["--rw=write", "--bs=4k", "--direct=0", "--ioengine=psync", "--end_fsync=1"], None,
                       "sequential 4k buffered writes (page cache add/dirty, then writeback)"),
    "buffered-randread": (["--rw=randread", "--bs=4k", "--direct=0", "--ioengine=psync", "--invalidate=1"], None,
                          "4k buffered random reads from a cold page cache (page cache additions, readahead)"),
}
LOAD_JOB = "randrw-qd32-uring"     # the job running while /metrics and RSS are measured under load
AB_JOB = "randread-qd32"           # the job of the with/without exporter comparison
FLOOR_JOBS = ["randread-qd32", "randread-qd32-sqpoll"]
# bench/floor.bpf.c's programs: (hook, what it does)
FLOOR_PROGS = {
    "fl_empty": ("rq_issue", "empty, attached first on the hook"),
    "fl_empty_last": ("rq_issue", "empty, attached last on the hook"),
    "fl_pcpu_inc": ("rq_issue", "one per-CPU array increment (what page_add/page_dirty do)"),
    "fl_ktime": ("rq_issue", "bpf_ktime_get_ns() into a per-CPU array"),
    "fl_cgroup_id": ("rq_issue", "bpf_get_current_cgroup_id() into a per-CPU array"),
    "fl_hash_update": ("rq_issue", "hash lookup (miss) + update keyed by rq, 16384 entries, prealloc"),
    "fl_hupd_1k": ("rq_issue", "the same, 1024 entries"),
    "fl_hupd_noprea": ("rq_issue", "the same, 16384 entries, BPF_F_NO_PREALLOC"),
    "fl_arr_update": ("rq_issue", "slot write in a 16384-slot array indexed by a hash of rq (scry's in-flight table)"),
    "fl_empty_c": ("rq_complete", "empty, attached first on the hook"),
    "fl_empty_c_last": ("rq_complete", "empty, attached last on the hook"),
    "fl_core_read6": ("rq_complete", "6 BPF_CORE_READ fields of rq/q/disk (bpf_probe_read_kernel)"),
    "fl_direct_read6": ("rq_complete", "the same 6 fields by direct BTF pointer loads"),
    "fl_hash_delete": ("rq_complete", "hash lookup + delete keyed by rq, 16384 entries, prealloc"),
    "fl_hdel_1k": ("rq_complete", "the same, 1024 entries"),
    "fl_hdel_noprea": ("rq_complete", "the same, 16384 entries, BPF_F_NO_PREALLOC"),
    "fl_arr_take": ("rq_complete", "read and free of that slot"),
    "fl_hist2": ("rq_complete", "two scry log2 latency histogram updates (div + 2 atomics each)"),
}


def log(msg):
    print("[bench] " + msg, file=sys.stderr, flush=True)


def run(cmd, check=True, **kw):
    return subprocess.run(cmd, check=check, capture_output=True, text=True, **kw)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values, p):
    """Nearest-rank percentile."""
    v = sorted(values)
    if not v:
        return float("nan")
    k = max(0, min(len(v) - 1, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


def spread(values, fmt="%.0f"):
    """'median [min..max]' of the values (one value: just it)."""
    if not values:
        return "-"
    if len(values) == 1:
        return fmt % values[0]
    return (fmt + " [" + fmt + ".." + fmt + "]") % (statistics.median(values), min(values), max(values))


def table(headers, rows, title=None):
    if title:
        print("\n" + title)
    cols = [list(map(str, c)) for c in zip(headers, *rows)] if rows else [[h] for h in headers]
    widths = [max(len(x) for x in c) for c in cols]
    line = lambda r: "| " + " | ".join(str(x).ljust(w) for x, w in zip(r, widths)) + " |"
    print(line(headers))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))


def proc_status(pid):
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                    out[k] = int(v.split()[0]) / 1024.0  # MiB
    except OSError:
        pass
    return out


def load1():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


# ---------------------------------------------------------------------------------------------
# The exporter's programs, from /proc/<pid>/fdinfo.

def fdinfo_progs(pid):
    """{fd: (prog_id, run_time_ns, run_cnt)} for the BPF programs process pid holds."""
    out = {}
    d = "/proc/%s/fd" % pid
    for fd in os.listdir(d):
        try:
            if os.readlink(os.path.join(d, fd)) != "anon_inode:bpf-prog":
                continue
            info = {}
            with open("/proc/%s/fdinfo/%s" % (pid, fd)) as f:
                for line in f:
                    k, _, v = line.partition(":")
                    info[k.strip()] = v.strip()
            out[int(fd)] = (int(info["prog_id"]), int(info.get("run_time_ns", 0)), int(info.get("run_cnt", 0)))
        except (OSError, KeyError, ValueError):
            continue
    return out


class FdinfoSampler(threading.Thread):
    """Samples run_time/run_cnt of a process's BPF programs (from /proc/<pid>/fdinfo) and its RSS every
    interval, to see the time course (first-touch effects) and the peak RSS while a job runs."""

    def __init__(self, pid, names, interval=1.0):
        super().__init__(daemon=True)
        self.pid, self.names, self.interval = pid, names, interval
        self.samples = []  # (t, {name: (ns, cnt)})
        self.rss_max = 0.0
        self.stop_event = threading.Event()

    def sample(self):
        by_name = {}
        for _, (pid_, ns, cnt) in fdinfo_progs(self.pid).items():
            name = self.names.get(pid_)
            if name:
                by_name[name] = (ns, cnt)
        self.samples.append((time.monotonic(), by_name))
        self.rss_max = max(self.rss_max, proc_status(self.pid).get("VmRSS", 0.0))

    def run(self):
        self.sample()
        while not self.stop_event.wait(self.interval):
            self.sample()

    def stop(self):
        self.stop_event.set()
        self.join()
        self.sample()

    def first_interval_ns_per_event(self, name):
        """ns/event over the first interval that saw events of the program."""
        for (t0, a), (t1, b) in zip(self.samples, self.samples[1:]):
            if name in a and name in b:
                dc = b[name][1] - a[name][1]
                if dc > 0:
                    return (b[name][0] - a[name][0]) / dc
        return None


# ---------------------------------------------------------------------------------------------
# The exporter

def parse_samples(text):
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_labels, _, value = line.rpartition(" ")
        out[name_labels] = float(value)
    return out


def labels_of(series):
    inner = series[series.index("{") + 1:series.rindex("}")]
    out = {}
    for part in inner.split('",'):
        k, _, v = part.partition('="')
        out[k.strip(",")] = v.rstrip('"')
    return out


class Exporter:
    def __init__(self, binary, args, libbpf):
        self.binary, self.args, self.libbpf = binary, args, libbpf
        self.port = free_port()
        self.proc = None
        self.log = tempfile.TemporaryFile()
        self.prog_names = {}

    def __enter__(self):
        cmd = [self.binary, "--web.listen-address=127.0.0.1:%d" % self.port] + self.args
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise RuntimeError("scry-block exited with %d: %s" % (self.proc.returncode, self.log.read().decode()))
            try:
                self.scrape()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("scry-block did not serve /metrics within 60 s")
                time.sleep(0.05)
        if self.libbpf:
            for _, (prog_id, _, _) in fdinfo_progs(self.proc.pid).items():
                name = self.libbpf.prog_name(prog_id)
                if name:
                    self.prog_names[prog_id] = name
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    @property
    def pid(self):
        return self.proc.pid

    def scrape(self, accept_gzip=False):
        """(seconds, status, body bytes as received)"""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        headers = {"Accept-Encoding": "gzip"} if accept_gzip else {}
        try:
            t0 = time.perf_counter()
            conn.request("GET", "/metrics", headers=headers)
            r = conn.getresponse()
            body = r.read()
            dt = time.perf_counter() - t0
        finally:
            conn.close()
        if r.status != 200:
            raise OSError("HTTP %d" % r.status)
        return dt, body, r.getheader("Content-Encoding")

    def text(self):
        return self.scrape()[1].decode()

    def bpf_stats(self):
        """{(hook, program): (runs, ns)} from scry_bpf_program_{runs,run_seconds}_total."""
        samples = parse_samples(self.text())
        runs, secs = {}, {}
        for s, v in samples.items():
            if s.startswith("scry_bpf_program_runs_total{"):
                l = labels_of(s)
                runs[(l["hook"], l["program"])] = v
            elif s.startswith("scry_bpf_program_run_seconds_total{"):
                l = labels_of(s)
                secs[(l["hook"], l["program"])] = v
        return {k: (runs[k], secs.get(k, 0.0) * 1e9) for k in runs}

    def fdinfo_by_name(self):
        out = {}
        for _, (prog_id, ns, cnt) in fdinfo_progs(self.pid).items():
            name = self.prog_names.get(prog_id)
            if name:
                out[name] = (ns, cnt)
        return out


def scrape_bench(exp, n):
    """n sequential scrapes (a new connection each, as a worst case): latencies in ms, and the sizes."""
    lat = []
    body = b""
    for _ in range(n):
        dt, body, _ = exp.scrape()
        lat.append(dt * 1000.0)
    _, gz, enc = exp.scrape(accept_gzip=True)
    series = sum(1 for line in body.decode().splitlines() if line and not line.startswith("#"))
    return {"lat": lat, "bytes": len(body), "gzip_bytes": len(gz) if enc == "gzip" else None, "series": series}


# ---------------------------------------------------------------------------------------------
# Devices and fio

@contextlib.contextmanager
def loop_device(size):
    tmp = tempfile.mkdtemp(prefix="scry-bench-")
    run(["mount", "-t", "tmpfs", "-o", "size=%d" % (size + (64 << 20)), "tmpfs", tmp])
    dev = None
    try:
        backing = os.path.join(tmp, "backing")
        with open(backing, "wb") as f:
            f.truncate(size)
        # Fill it, so that reads find data and the backing file's pages exist before the timed runs.
        run(["dd", "if=/dev/zero", "of=" + backing, "bs=1M", "count=%d" % (size >> 20), "conv=notrunc"])
        dev = run(["losetup", "--find", "--show", backing]).stdout.strip()
        yield dev
    finally:
        if dev:
            subprocess.run(["losetup", "-d", dev], check=False)
        subprocess.run(["umount", "-l", tmp], check=False)
        os.rmdir(tmp)


@contextlib.contextmanager
def null_blk_device():
    """/dev/nullb0 if the null_blk module can be loaded by us (and is not already in use); else None."""
    if os.path.exists("/sys/module/null_blk") or run(["modinfo", "null_blk"], check=False).returncode != 0:
        yield None
        return
    r = run(["modprobe", "null_blk", "nr_devices=1", "queue_mode=2", "irqmode=0", "gb=4"], check=False)
    if r.returncode != 0 or not os.path.exists("/dev/nullb0"):
        yield None
        return
    try:
        yield "/dev/nullb0"
    finally:
        subprocess.run(["rmmod", "null_blk"], check=False)


@contextlib.contextmanager
def scheduler(dev, sched):
    path = "/sys/block/%s/queue/scheduler" % os.path.basename(dev)
    if not sched or not os.path.exists(path):
        yield
        return
    with open(path) as f:
        old = f.read().split("[")[1].split("]")[0]
    with open(path, "w") as f:
        f.write(sched)
    try:
        yield
    finally:
        with open(path, "w") as f:
            f.write(old)


def flush_bdev_cache(dev):
    """Drop the page cache of this block device only (BLKFLSBUF), so buffered jobs start cold."""
    subprocess.run(["blockdev", "--flushbufs", dev], check=False, capture_output=True)


def fio(dev, job, seconds, size):
    args, _, _ = JOBS[job]
    cmd = ["fio", "--name=" + job, "--filename=" + dev, "--size=%d" % size, "--time_based",
           "--runtime=%d" % seconds, "--output-format=json", "--group_reporting"] + args
    r = run(cmd, check=False, timeout=seconds + 120)
    if r.returncode != 0:
        raise RuntimeError("fio %s failed: %s" % (job, r.stderr.strip()[-500:]))
    j = json.loads(r.stdout[r.stdout.index("{"):])["jobs"][0]
    return {"iops": j["read"]["iops"] + j["write"]["iops"], "ios": j["read"]["total_ios"] + j["write"]["total_ios"]}


def ensure_fio():
    if shutil.which("fio"):
        return True
    log("fio is missing: apt-get install -y fio")
    if subprocess.run(["apt-get", "install", "-y", "fio"], capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update"], capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "fio"], capture_output=True)
    return bool(shutil.which("fio"))


# ---------------------------------------------------------------------------------------------
# The measurements

def per_event_runs(a, dev, devname, configs, results):
    """For each repeat and configuration: start scry-block, measure idle /metrics and RSS, run every
    job with BPF stats deltas, then /metrics and RSS under load."""
    libbpf = a.libbpf
    for rep in range(a.repeats):
        for cfg_name, cfg_args in configs:
            log("repeat %d/%d, %s on %s" % (rep + 1, a.repeats, cfg_name, devname))
            with Exporter(a.bin, ["--bpf.stats"] + cfg_args, libbpf) as exp:
                r = results.setdefault((cfg_name, devname), {"jobs": {}, "idle": [], "load": []})
                time.sleep(1.0)
                st = proc_status(exp.pid)
                sb = scrape_bench(exp, a.scrapes)
                st2 = proc_status(exp.pid)
                r["idle"].append({"rss_start": st.get("VmRSS"), "rss": st2.get("VmRSS"), "hwm": st2.get("VmHWM"),
                                  "anon": st2.get("RssAnon"), "file": st2.get("RssFile"), "scrape": sb})
                for job in a.jobs:
                    sched = JOBS[job][1]
                    if job.startswith("buffered"):
                        flush_bdev_cache(dev)
                    with scheduler(dev, sched):
                        before = exp.bpf_stats()
                        fd_before = exp.fdinfo_by_name()
                        sampler = FdinfoSampler(exp.pid, exp.prog_names) if libbpf else None
                        l1 = load1()
                        t0 = time.monotonic()
                        if sampler:
                            sampler.start()
                        f = fio(dev, job, a.duration, a.size)
                        if sampler:
                            sampler.stop()
                        t1 = time.monotonic()
                        after = exp.bpf_stats()
                        fd_after = exp.fdinfo_by_name()
                    hooks = {}
                    for k in after:
                        runs = after[k][0] - before.get(k, (0, 0))[0]
                        ns = after[k][1] - before.get(k, (0, 0))[1]
                        name = k[1][:15]
                        fd_ns = fd_after.get(name, (0, 0))[0] - fd_before.get(name, (0, 0))[0]
                        fd_cnt = fd_after.get(name, (0, 0))[1] - fd_before.get(name, (0, 0))[1]
                        first = sampler.first_interval_ns_per_event(name) if sampler else None
                        hooks[k] = {"runs": runs, "ns": ns, "secs": t1 - t0, "first": first,
                                    "fd_ns": fd_ns, "fd_cnt": fd_cnt}
                    r["jobs"].setdefault(job, []).append({"hooks": hooks, "fio": f, "load1": l1,
                                                          "rss_max": sampler.rss_max if sampler else None})
                    log("  %-22s %8.0f IOPS  %s" % (job, f["iops"], "  ".join(
                        "%s=%.0fns" % (k[0], v["ns"] / v["runs"]) for k, v in sorted(hooks.items()) if v["runs"])))
                # Under load: /metrics and RSS while LOAD_JOB runs.
                box = {}
                th = threading.Thread(target=lambda: box.update(f=fio(dev, LOAD_JOB, a.load_duration, a.size)))
                th.start()
                time.sleep(2.0)
                rss = []
                sb = scrape_bench(exp, a.scrapes)
                while th.is_alive():
                    rss.append(proc_status(exp.pid).get("VmRSS", 0))
                    th.join(0.25)
                st = proc_status(exp.pid)
                rss.append(st.get("VmRSS", 0))
                r["load"].append({"rss": max(rss), "hwm": st.get("VmHWM"), "scrape": sb,
                                  "anon": st.get("RssAnon"), "file": st.get("RssFile"),
                                  "iops": box.get("f", {}).get("iops")})


def floor_runs(a, dev, results):
    """bench/floor.bpf.c's programs (no exporter attached), all at once, on each of FLOOR_JOBS."""
    if not a.libbpf:
        log("no libbpf: skipping the reference probes")
        return
    for rep in range(a.repeats):
        for job in FLOOR_JOBS:
            costs = probe_costs("floor.bpf.c", lambda: fio(dev, job, a.floor_duration, a.size), 1)
            for name, ns in costs.items():
                results.setdefault(job, {}).setdefault(name, []).extend(ns)
        log("reference probes, repeat %d/%d done" % (rep + 1, a.repeats))


def overhead_runs(a, dev, results):
    """fio IOPS of AB_JOB with no exporter, scry-block, scry-block --collector.cgroup (no --bpf.stats:
    as deployed), alternated round by round."""
    states = [("no exporter", None), ("scry-block", []), ("scry-block --collector.cgroup", ["--collector.cgroup"])]
    for rnd in range(a.ab_rounds):
        for name, args in states:
            if args is None:
                f = fio(dev, AB_JOB, a.ab_duration, a.size)
            else:
                with Exporter(a.bin, args, None):
                    f = fio(dev, AB_JOB, a.ab_duration, a.size)
            results.setdefault(name, []).append(f["iops"])
            log("overhead round %d/%d: %-30s %.0f IOPS" % (rnd + 1, a.ab_rounds, name, f["iops"]))


# ---------------------------------------------------------------------------------------------
# Report

def report(a, per_event, floor, overhead, meta):
    print("\n# scry-block benchmark")
    print("binary: %s; kernel %s; %d CPUs; %s" % (a.bin, os.uname().release, os.cpu_count(), meta))
    print("each job %d s, %d repeat(s); figures are median [min..max] over the repeats." % (a.duration, a.repeats))
    print("events/s = hook runs / wall time of the job; ns/event = run_time / run_count (kernel BPF stats, as"
          " scry-block exports them);\n'1st s' = ns/event over the first second of the job (per-second samples from"
          " /proc/<pid>/fdinfo); fdinfo check = largest relative difference between the exported totals and fdinfo.")
    print("\njobs:")
    for job in a.jobs:
        print("  %-22s %s" % (job, JOBS[job][2]))

    summary = []
    for (cfg, devname), r in per_event.items():
        rows = []
        worst = {}
        fd_diff = 0.0
        for job in a.jobs:
            reps = r["jobs"].get(job, [])
            if not reps:
                continue
            keys = sorted({k for rep in reps for k in rep["hooks"]}, key=lambda k: ["rq_insert", "rq_issue",
                          "rq_complete", "page_add", "page_dirty"].index(k[0]) if k[0] in ["rq_insert", "rq_issue",
                          "rq_complete", "page_add", "page_dirty"] else 9)
            iops = [rep["fio"]["iops"] for rep in reps]
            for k in keys:
                hs = [rep["hooks"][k] for rep in reps if k in rep["hooks"]]
                runs = [h["runs"] for h in hs]
                if max(runs) == 0:
                    continue
                per = [h["ns"] / h["runs"] for h in hs if h["runs"]]
                firsts = [h["first"] for h in hs if h["first"] is not None]
                med_i = sorted(range(len(hs)), key=lambda i: hs[i]["runs"])[len(hs) // 2]
                for h in hs:
                    if h["runs"] >= MIN_EVENTS and h["fd_cnt"]:
                        fd_diff = max(fd_diff, abs(h["ns"] - h["fd_ns"]) / max(h["fd_ns"], 1))
                ios = statistics.median([rep["fio"]["ios"] for rep in reps])
                judged = statistics.median(runs) >= max(MIN_EVENTS, MIN_EVENTS_PER_IO * ios)
                rows.append([job, k[0], k[1], "%.0f" % hs[med_i]["runs"], "%.0f" % hs[med_i]["ns"],
                             spread(per, "%.1f") + (" *" if judged else ""), spread(firsts, "%.0f"),
                             spread([h["runs"] / h["secs"] for h in hs], "%.0f"), spread(iops, "%.0f")])
                if judged:
                    worst.setdefault(k[0], []).append((statistics.median(per), job, min(per), max(per)))
        table(["job", "hook", "program", "events", "total ns", "ns/event", "1st s", "events/s", "fio IOPS"], rows,
              "## Per-event cost: scry-block --bpf.stats %s on %s (fdinfo check: %.2f%%; * = judged against the"
              " target: the job drives the hook)" % (
                  "" if cfg == "default" else "--collector.cgroup", devname, fd_diff * 100))
        for hook, per_job in worst.items():
            m, job, lo, hi = max(per_job)
            b = min(per_job)
            summary.append(["%s ns/event (%s, %s)" % (hook, cfg, devname), "< %.0f" % TARGET_NS_PER_EVENT,
                            "worst %.1f [%.1f..%.1f] in %s; best %.1f in %s" % (m, lo, hi, job, b[0], b[1]),
                            "PASS" if m < TARGET_NS_PER_EVENT else "MISS"])
        rows = []
        for job in a.jobs:
            reps = r["jobs"].get(job, [])
            if not reps:
                continue
            per_io, cpu = [], []
            for rep in reps:
                blk = [h for k, h in rep["hooks"].items() if k[0].startswith("rq_")]
                ns = sum(h["ns"] for h in blk)
                secs = max(h["secs"] for h in rep["hooks"].values())
                allns = sum(h["ns"] for h in rep["hooks"].values())
                if rep["fio"]["ios"]:
                    per_io.append(ns / rep["fio"]["ios"])
                cpu.append(allns / secs / 1e9 * 100)
            rows.append([job, spread(per_io, "%.0f"), spread(cpu, "%.2f"), spread([rep["load1"] for rep in reps], "%.2f")])
        table(["job", "block hooks ns per fio I/O", "all hooks: % of one CPU", "load average at start"], rows,
              "## Cost per I/O and CPU share: %s on %s" % (cfg, devname))

        # /metrics and RSS
        rows = []
        for phase in ("idle", "load"):
            for i, x in enumerate(r[phase]):
                s = x["scrape"]
                rows.append([phase, i + 1, "%.2f" % pct(s["lat"], 50), "%.2f" % pct(s["lat"], 99),
                             "%.2f" % max(s["lat"]), "%.2f" % s["lat"][0],
                             sum(1 for x in s["lat"] if x > TARGET_SCRAPE_MS), s["bytes"], s["gzip_bytes"] or "-", s["series"],
                             "%.1f" % x["rss"], "%.1f" % x["hwm"], "%.1f / %.1f" % (x.get("anon", 0), x.get("file", 0))])
        table(["phase", "repeat", "p50 ms", "p99 ms", "max ms", "1st ms", "> 10 ms", "bytes", "gzip bytes", "series", "VmRSS MiB",
               "VmHWM MiB", "RssAnon / RssFile MiB"], rows, "## /metrics (%d sequential scrapes, new connection each) and RSS: %s on %s%s" % (
                  a.scrapes, cfg, devname, "" if not r["load"] else "; load = fio " + LOAD_JOB))
        for phase in ("idle", "load"):
            if not r[phase]:
                continue
            p99 = [pct(x["scrape"]["lat"], 99) for x in r[phase]]
            mx = max(max(x["scrape"]["lat"]) for x in r[phase])
            summary.append(["/metrics p99 %s (%s)" % (phase, cfg), "< %.0f ms" % TARGET_SCRAPE_MS,
                            "%s ms (max %.2f)" % (spread(p99, "%.2f"), mx),
                            "PASS" if max(p99) < TARGET_SCRAPE_MS else "MISS"])
            summary.append(["/metrics size %s (%s)" % (phase, cfg), "reported",
                            "%d B (gzip %s B), %d series" % (r[phase][-1]["scrape"]["bytes"],
                                                            r[phase][-1]["scrape"]["gzip_bytes"],
                                                            r[phase][-1]["scrape"]["series"]), "-"])
            rss = [x["rss"] for x in r[phase]]
            hwm = max(x["hwm"] for x in r[phase])
            summary.append(["RSS %s (%s)" % (phase, cfg), "< %.0f MB" % TARGET_RSS_MB,
                            "VmRSS %s MiB, VmHWM max %.1f MiB" % (spread(rss, "%.1f"), hwm),
                            "PASS" if max(rss) < TARGET_RSS_MB and hwm < TARGET_RSS_MB else "MISS"])

    if floor:
        rows = []
        for job, progs in floor.items():
            for name in sorted(progs, key=lambda n: (FLOOR_PROGS.get(n, ("", ""))[0], list(FLOOR_PROGS).index(n)
                                                     if n in FLOOR_PROGS else 99)):
                hook, what = FLOOR_PROGS.get(name, ("?", ""))
                rows.append([job, hook, name, what, spread(progs[name], "%.1f")])
        table(["job", "hook", "program", "what it does", "ns/event"], rows,
              "## Reference costs of building blocks (bench/floor.bpf.c, tp_btf, all loaded together, no exporter)")

    if overhead:
        base = statistics.mean(overhead["no exporter"])
        base_med = statistics.median(overhead["no exporter"])
        rows = []
        for name, iops in overhead.items():
            m = statistics.mean(iops)
            sd = statistics.stdev(iops) if len(iops) > 1 else 0.0
            med = statistics.median(iops)
            rows.append([name, " ".join("%.0f" % x for x in iops), "%.0f" % m, "%.0f" % sd,
                         "%+.2f%%" % ((m - base) / base * 100), "%.0f" % med, "%+.2f%%" % ((med - base_med) / base_med * 100)])
            if name != "no exporter":
                summary.append(["fio IOPS vs no exporter (%s)" % name, "reported",
                                "mean %+.2f%%, median %+.2f%% (stdev of runs %.1f%% of mean)" % (
                                    (m - base) / base * 100, (med - base_med) / base_med * 100, sd / m * 100), "-"])
        table(["state", "IOPS per round", "mean", "stdev", "mean vs no exporter", "median", "median vs no exporter"], rows,
              "## Workload overhead: fio %s, %d s per run, alternated" % (AB_JOB, a.ab_duration))

    table(["target", "goal", "measured", "result"], summary, "## Summary")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default_bin = next((p for p in (os.path.join(REPO, "build-bench", "bin", "scry-block"),
                                    os.path.join(REPO, "build", "bin", "scry-block")) if os.path.exists(p)),
                       os.path.join(REPO, "build", "bin", "scry-block"))
    ap.add_argument("--bin", default=default_bin, help="scry-block binary (default: %(default)s)")
    ap.add_argument("--duration", type=int, default=20, help="seconds per fio job (default 20)")
    ap.add_argument("--repeats", type=int, default=3, help="repeats of every measurement (default 3)")
    ap.add_argument("--scrapes", type=int, default=200, help="sequential scrapes per /metrics measurement")
    ap.add_argument("--size", type=int, default=1 << 30, help="loop device size in bytes (default 1 GiB, on tmpfs)")
    ap.add_argument("--jobs", default=",".join(JOBS), help="comma-separated fio jobs (default: all): " + ",".join(JOBS))
    ap.add_argument("--ab-rounds", type=int, default=4, help="rounds of the with/without exporter comparison")
    ap.add_argument("--ab-duration", type=int, default=15, help="seconds per run of that comparison")
    ap.add_argument("--no-floor", action="store_true", help="skip the reference probes (bench/floor.bpf.c)")
    ap.add_argument("--no-overhead", action="store_true", help="skip the with/without exporter comparison")
    ap.add_argument("--json", help="also write the raw measurements to this file")
    ap.add_argument("--quick", action="store_true", help="a smoke run: 5 s jobs, 1 repeat, 50 scrapes")
    a = ap.parse_args()
    if a.quick:
        a.duration, a.repeats, a.scrapes, a.ab_rounds, a.ab_duration = 5, 1, 50, 1, 5
    a.jobs = [j for j in a.jobs.split(",") if j]
    unknown = [j for j in a.jobs if j not in JOBS]
    if unknown:
        ap.error("unknown jobs: " + ", ".join(unknown))
    a.load_duration = max(a.duration, 10)
    a.floor_duration = a.duration

    if os.geteuid() != 0:
        print("bench/block.py needs root (BPF, loop devices)", file=sys.stderr)
        return 2
    if not os.access(a.bin, os.X_OK):
        print("no scry-block binary at %s (build it, or pass --bin)" % a.bin, file=sys.stderr)
        return 2
    if not ensure_fio():
        print("fio is not installed and apt-get could not install it", file=sys.stderr)
        return 2
    try:
        a.libbpf = Libbpf()
    except OSError as e:
        log("libbpf.so.1 not loadable (%s): no per-second samples, fdinfo check or reference probes" % e)
        a.libbpf = None

    configs = [("default", []), ("cgroup", ["--collector.cgroup"])]
    per_event, floor, overhead = {}, {}, {}
    meta = "load average at start %.2f" % load1()
    with tempfile.TemporaryDirectory(prefix="scry-bench-") as tmp:
        a.tmp = tmp
        try:
            with loop_device(a.size) as dev:
                devname = "%s (file on tmpfs)" % os.path.basename(dev)
                log("loop device %s on a %d MiB file on tmpfs" % (dev, a.size >> 20))
                per_event_runs(a, dev, devname, configs, per_event)
                if not a.no_floor:
                    floor_runs(a, dev, floor)
                if not a.no_overhead:
                    overhead_runs(a, dev, overhead)
            with null_blk_device() as nb:
                if nb:
                    log("null_blk: %s" % nb)
                    per_event_runs(a, nb, "nullb0", configs, per_event)
                else:
                    meta += "; null_blk not available (no module): loop device only"
        except Exception as e:  # a report: print what we have
            log("benchmark stopped early: %r" % e)
            meta += "; STOPPED EARLY: %r" % e
    report(a, per_event, floor, overhead, meta)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"meta": meta, "duration": a.duration, "repeats": a.repeats, "floor": floor, "overhead": overhead,
                       "per_event": [{"config": cfg, "device": dev, "idle": r["idle"], "load": r["load"],
                                      "jobs": {job: [dict(rep, hooks=[dict(h, hook=k[0], program=k[1])
                                                                      for k, h in rep["hooks"].items()])
                                                     for rep in reps] for job, reps in r["jobs"].items()}}
                                     for (cfg, dev), r in per_event.items()]}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
