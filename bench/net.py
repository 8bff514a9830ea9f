#!/usr/bin/env python3
"""scry-net benchmark: per-hook BPF cost (--bpf.stats), loopback iperf3 throughput and connection churn
(wrk against nginx, a new connection per request) with scry-net attached vs not, series count and RSS
during churn. Prints tables; asserts nothing. Throughput is measured with the exporter as deployed; the
per-hook costs come from a second run of the same workloads with --bpf.stats. Churn keeps every CPU
busy, so besides connections per second it reports the CPU time each connection took (from /proc/stat,
without steal time): the steadier figure on a shared machine.

  sudo python3 bench/net.py [--bin build-net/bin/scry-net] [--duration 10] [--repeats 2]
  sudo python3 bench/net.py --bin old/scry-net --bin new/scry-net   # A/B: each repeat runs every binary
  sudo python3 bench/net.py --soak 600 --rate 2000   # churn at a fixed rate: series, map entries, RSS over time
  sudo python3 bench/net.py --floor   # also with empty programs on the same tracepoints
  sudo python3 bench/net.py --loop 20000   # also bench/net_churn_loop.c: the cost per connection, precisely
  sudo python3 bench/net.py --interleave 300   # the churn's loss, its arms alternated every 0.2 s
  sudo python3 bench/net.py --interleave 600 --busy 110   # and a program that only spins, for comparison
  sudo python3 bench/net.py --bin a/bin/scry-net --bin b/bin/scry-net --program-time 240   # BPF time only
  sudo python3 bench/net.py --profile 40   # where the CPU goes: perf samples of the programs, by source line

Extra exporter flags (e.g. --collector.rtt.sample-every=1) go after "--".
"""
import argparse
import bisect
import collections
import contextlib
import ctypes
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
import scrylib  # noqa: E402
import probes  # noqa: E402


def iperf(duration):
    srv = subprocess.Popen(["iperf3", "-s", "-1", "-p", "5299"], stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    out = subprocess.run(["iperf3", "-c", "127.0.0.1", "-p", "5299", "-t", str(duration), "-J"],
                         capture_output=True, text=True).stdout
    srv.wait()
    import json
    return json.loads(out)["end"]["sum_received"]["bits_per_second"] / 1e9


NGINX_CONF = """
worker_processes %(workers)d;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log;
daemon off;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_timeout 0;
  client_body_temp_path %(dir)s;
  proxy_temp_path %(dir)s;
  fastcgi_temp_path %(dir)s;
  uwsgi_temp_path %(dir)s;
  scgi_temp_path %(dir)s;
  server { listen 127.0.0.1:%(port)d; location / { return 200 "ok\\n"; } }
}
"""


@contextlib.contextmanager
def nginx(port=5480):
    """nginx on the loopback, one worker per CPU, closing every connection after its response."""
    with tempfile.TemporaryDirectory() as d:
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF % {"workers": os.cpu_count(), "dir": d, "port": port})
        proc = subprocess.Popen(["nginx", "-c", conf], stderr=subprocess.DEVNULL)
        try:
            for _ in range(50):
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                    break
                time.sleep(0.1)
            yield "http://127.0.0.1:%d/" % port
        finally:
            proc.terminate()
            proc.wait()


_loop_ports = iter(range(5500, 6500))


def churn_loop(binary, count):
    """Seconds bench/net_churn_loop.c takes for count connections on the last CPU (the exporter, started
    by the caller, may run on the others)."""
    cpu = str(os.cpu_count() - 1)
    out = subprocess.run(["taskset", "-c", cpu, binary, str(count), str(next(_loop_ports))],
                         capture_output=True, text=True, check=True).stdout
    return float(out)


def busy_cpu_seconds():
    """CPU time spent by all CPUs so far, steal and idle left out (/proc/stat, user to softirq)."""
    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, irq, softirq = map(int, f.readline().split()[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def churn(url, duration):
    """wrk with a thread per CPU and 32 connections in all against nginx: each request is a new connection
    (nginx closes it). Returns (connections per second, CPU microseconds per connection)."""
    cpu0 = busy_cpu_seconds()
    out = subprocess.run(["wrk", "-t%d" % os.cpu_count(), "-c32", "-d%ds" % duration, url],
                         capture_output=True, text=True).stdout
    cpu = busy_cpu_seconds() - cpu0
    n = int(re.search(r"(\d+) requests in", out).group(1))
    return n / duration, cpu / n * 1e6


SOAK_SERVER = """
import selectors, socket, sys
sel = selectors.DefaultSelector()
for port in map(int, sys.argv[1:]):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", port))
    ls.listen(4096)
    sel.register(ls, selectors.EVENT_READ)
print("ready", flush=True)
while True:
    for key, _ in sel.select():
        c, _ = key.fileobj.accept()
        c.close()
"""


def soak(exporter, seconds, rate, peers=50, ports=(5401, 5402, 5403, 5404), every=60):
    """Short connections at a fixed rate to `peers` loopback addresses x `ports` (a server process accepts
    and closes); prints series, map entries and RSS of the exporter every `every` seconds."""
    srv = subprocess.Popen([sys.executable, "-c", SOAK_SERVER, *map(str, ports)], stdout=subprocess.PIPE, text=True)
    assert srv.stdout.readline().strip() == "ready"
    print("| elapsed s | connections | conn/s | /metrics lines | scry_net_* series | conns map | socks table | "
          "socks_spill | RSS MiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    start = time.monotonic()
    n, next_report = 0, every
    try:
        while True:
            elapsed = time.monotonic() - start
            if elapsed >= next_report or elapsed >= seconds:
                m = exporter.scrape()
                entries = {dict(ls)["map"]: v for ls, v in m.series("scry_bpf_map_entries").items()}
                net = sum(1 for line in m.text.splitlines() if line.startswith("scry_net_"))
                print("| %.0f | %d | %.0f | %d | %d | %d | %d | %d | %d |" % (
                    elapsed, n, n / elapsed, len(m.text.splitlines()), net, entries.get("conns", -1),
                    entries.get("socks", -1), entries.get("socks_spill", -1), rss(exporter.proc.pid)), flush=True)
                next_report += every
                if elapsed >= seconds:
                    return
            # pace: connections due by now
            due = int(elapsed * rate)
            if n >= due:
                time.sleep(0.001)
                continue
            s = socket.create_connection(("127.0.0.%d" % (2 + n % peers), ports[n % len(ports)]))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")  # no TIME_WAIT pile-up
            s.close()
            n += 1
    finally:
        srv.kill()
        srv.wait()


def passive_opens():
    """Connections accepted in this network namespace so far (/proc/net/snmp, Tcp PassiveOpens)."""
    with open("/proc/net/snmp") as f:
        names, values = [line.split() for line in f if line.startswith("Tcp:")]
    return int(values[names.index("PassiveOpens")])


def give_series_numbers(L, obj):
    """What scry-net does before it attaches: the queue of free series numbers filled (1..its size).
    Objects built before the per-peer values were numbered have no such queue."""
    L.bpf_object__find_map_by_name.restype = ctypes.c_void_p
    L.bpf_object__find_map_by_name.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    L.bpf_map__fd.argtypes = [ctypes.c_void_p]
    L.bpf_map__max_entries.argtypes = [ctypes.c_void_p]
    L.bpf_map_update_elem.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64]
    queue = L.bpf_object__find_map_by_name(obj, b"free_conns")
    if not queue:
        return
    fd = L.bpf_map__fd(queue)
    for n in range(1, L.bpf_map__max_entries(queue) + 1):
        number = ctypes.c_uint32(n)
        if L.bpf_map_update_elem(fd, None, ctypes.byref(number), 0):
            sys.exit("cannot fill free_conns: errno %d" % ctypes.get_errno())


@contextlib.contextmanager
def churning(seconds):
    """The churn of churn() in the background while the block runs (which starts once it is under way, and
    must take less than seconds + 10 s)."""
    with nginx() as url:
        wrk = subprocess.Popen(["wrk", "-t%d" % os.cpu_count(), "-c32", "-d%ds" % (seconds + 10), url],
                               stdout=subprocess.DEVNULL)
        try:
            time.sleep(1)
            yield
        finally:
            wrk.kill()
            wrk.wait()


def alternate(arms, seconds, phase, sample, result):
    """The wrk churn for `seconds` while each arm's programs are attached in turn for `phase` seconds, the
    arms in a new random order each round: drift of the machine slower than a round hits every arm alike.
    arms: {name: (libbpf, [programs], [cycled programs], duty cycle)}, no programs for an arm without; the
    cycled programs are attached in that share of the rounds, as the exporter attaches them that share of
    the time. sample(libbpf, programs) is taken as each phase starts and ends; returns {name: [result(start,
    end), one per round]}."""
    rounds = {name: [] for name in arms}
    with churning(seconds):
        end = time.monotonic() + seconds
        n = 0
        while time.monotonic() < end:
            for name in random.sample(list(arms), len(arms)):
                L, progs, cycled, duty = arms[name]
                if int((n + 1) * duty) > int(n * duty):
                    progs = progs + cycled
                links = [L.bpf_program__attach(p) for p in progs]
                try:
                    if not all(links):
                        sys.exit("cannot attach the programs of %s" % name)
                    time.sleep(0.02)  # connections opened before the attach are not tracked: let some go
                    start = sample(L, progs)
                    time.sleep(phase)
                    stop = sample(L, progs)
                finally:
                    for link in links:
                        if link:
                            L.bpf_link__destroy(link)
                rounds[name].append(result(start, stop))
            n += 1
    return rounds


def interleave(arms, seconds, phase):
    """{name: [(connections per second, CPU microseconds per connection), one per round]} of the churn
    with each arm's programs attached in turn (alternate)."""
    return alternate(arms, seconds, phase,
                     lambda L, progs: (passive_opens(), busy_cpu_seconds(), time.monotonic()),
                     lambda a, b: ((b[0] - a[0]) / (b[2] - a[2]), (b[1] - a[1]) / max(b[0] - a[0], 1) * 1e6))


PROGRAM_TIME_SECONDS = 120


def program_time(arms, seconds=PROGRAM_TIME_SECONDS, phase=0.4):
    """{arm: [BPF ns per connection, one per round]} of each arm's programs under one churn, the arms
    alternated (alternate) with the kernel's BPF stats on (they add two clock reads to every run: the
    arms compare, the loss does not). This VM's speed drifts by a fifth within a minute: arms timed one
    after the other for seconds each do not compare, arms alternated this way do (round by round). The
    cycled programs are attached in every round here: this is the time of all the programs."""
    timed = {name: (L, progs, cycled, 1) for name, (L, progs, cycled, _) in arms.items() if progs}
    stats = next(iter(timed.values()))[0].bpf_enable_stats(0)  # BPF_STATS_RUN_TIME, until the fd is closed
    try:
        return alternate(timed, seconds, phase,
                         lambda L, progs: (passive_opens(), sum(probes.run_stats(L, p)[0] for p in progs)),
                         lambda a, b: (b[1] - a[1]) / max(b[0] - a[0], 1))
    finally:
        if stats >= 0:
            os.close(stats)


def print_program_time(times, seconds):
    rounds = min(len(v) for v in times.values())
    first = next(iter(times))
    print("BPF time per connection (both ends, BPF stats on), arms alternated every 0.4 s for %d s under one "
          "churn, %d rounds; ratio: median of each round's ratio to %s" % (seconds, rounds, first))
    print()
    print("| arm | BPF ns/conn (median) | ratio |")
    print("|---|---|---|")
    for name, runs in times.items():
        ratios = [r / b for r, b in zip(runs[:rounds], times[first][:rounds])]
        print("| %s | %.0f | %.3f |" % (name, statistics.median(runs), statistics.median(ratios)))


def print_interleaved(phases, times, seconds, phase, duty):
    rounds = min(len(v) for v in phases.values())
    base = phases["without"][:rounds]
    print("churn for %d s, each arm attached in turn for %.2f s, %d rounds, scry-net's tcp_probe program in %g of "
          "them; change: mean of each round's ratio to the phase without (standard error); BPF time: per "
          "connection, both ends, with BPF stats, every program attached, median of %d s of the arms alternated "
          "after" % (seconds, phase, rounds, duty, PROGRAM_TIME_SECONDS))
    print()
    print("| arm | conn/s | change | CPU us/conn | change | BPF ns/conn |")
    print("|---|---|---|---|---|---|")
    for name, runs in phases.items():
        runs = runs[:rounds]
        cells = []
        for i in (0, 1):
            ratios = [r[i] / b[i] - 1 for r, b in zip(runs, base)]
            se = statistics.stdev(ratios) / len(ratios) ** 0.5 if name != "without" else 0
            cells += ["%.1f" % statistics.mean(r[i] for r in runs),
                      "%+.2f%% (%.2f)" % (statistics.mean(ratios) * 100, se * 100) if name != "without" else ""]
        cells.append("%.0f" % statistics.median(times[name]) if name in times else "")
        print("| %s | %s |" % (name, " | ".join(cells)))


def profile(L, progs, seconds, top=20):
    """perf samples (cpu-clock, every CPU, 4 kHz) of the churn for `seconds` with progs attached, no BPF
    stats: the share of all samples in each program, in the kernel's calls into them, and in each source
    line of the programs (a sample counts for the line whose code it interrupted: on this VM's timer, mostly
    the instruction after one that waited)."""
    lines = {L.bpf_program__name(p).decode(): probes.source_lines(L, p) for p in progs}
    links = [L.bpf_program__attach(p) for p in progs]
    try:
        if not all(links):
            sys.exit("cannot attach the programs")
        with tempfile.TemporaryDirectory() as tmp:
            data = os.path.join(tmp, "perf.data")
            with churning(seconds):
                subprocess.run(["perf", "record", "-a", "-F", "4000", "-o", data, "--", "sleep", str(seconds)],
                               capture_output=True, check=True)
            samples = subprocess.run(["perf", "script", "-i", data, "-F", "ip,sym"], capture_output=True,
                                     text=True, check=True).stdout.splitlines()
    finally:
        for link in links:
            if link:
                L.bpf_link__destroy(link)
    where = collections.Counter()
    for sample in samples:
        ip, _, sym = sample.strip().partition(" ")
        m = re.fullmatch(r"bpf_prog_[0-9a-f]+_(\w+)", sym.strip())
        if m and m.group(1) in lines:
            code = lines[m.group(1)]
            i = bisect.bisect_right(code, (int(ip, 16), "\uffff")) - 1
            where[(m.group(1), code[i][1] if i >= 0 else "(entry)")] += 1
        elif sym.startswith("bpf_trace_run"):
            where[("(the kernel's calls into programs)", sym.strip())] += 1
    total = len(samples)
    print("perf samples of %d s of churn, %d in all; share of all samples" % (seconds, total))
    print()
    print("| program | samples | share |")
    print("|---|---|---|")
    programs = collections.Counter()
    for (prog, _), n in where.items():
        programs[prog] += n
    for prog, n in programs.most_common():
        print("| %s | %d | %.3f%% |" % (prog, n, 100 * n / total))
    print()
    print("| program | source line | samples | share |")
    print("|---|---|---|---|")
    for (prog, line), n in where.most_common(top):
        if not prog.startswith("("):
            print("| %s | `%s` | %d | %.3f%% |" % (prog, line.replace("|", "\\|")[:100], n, 100 * n / total))


def stats(m):
    runs = {dict(ls)["program"]: v for ls, v in m.series("scry_bpf_program_runs_total").items()}
    ns = {dict(ls)["program"]: v * 1e9 for ls, v in m.series("scry_bpf_program_run_seconds_total").items()}
    return runs, ns


def rss(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) // 1024


def kernel_has(function):
    with open("/proc/kallsyms") as f:
        return any(line.split()[2] == function for line in f)


def load_net_object(binary):
    """(libbpf, object, [programs]) of the BPF object of binary's build tree that the binary would load
    (<build>/bin/scry-net, <build>/exporters/net/bpf/net_cast.bpf.o on kernels with the bpf_rdonly_cast
    kfunc, else net.bpf.o), loaded with the defaults it was built with and its series numbers given; the
    programs are the exporter's choice on a kernel with BTF (tp_btf)."""
    objects = os.path.join(os.path.dirname(os.path.dirname(binary)), "exporters", "net", "bpf")
    path = os.path.join(objects, "net_cast.bpf.o")
    if not (os.path.exists(path) and kernel_has("bpf_rdonly_cast")):
        path = os.path.join(objects, "net.bpf.o")
    obj = probes.load_object(path)
    if not obj:
        sys.exit("cannot load %s" % path)
    L, bpf_obj, progs = obj
    give_series_numbers(L, bpf_obj)
    return L, bpf_obj, [p for _, p in progs if L.bpf_program__section_name(p).startswith(b"tp_btf/")]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", action="append", default=[], help="scry-net binary; repeat for an A/B comparison")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--soak", type=int, default=0, help="seconds of churn at --rate instead of the A/B runs")
    ap.add_argument("--rate", type=int, default=2000, help="connections per second in --soak")
    ap.add_argument("--floor", action="store_true",
                    help="also run the workloads with an empty program on each of scry-net's tracepoints "
                    "(bench/net_floor.bpf.c; needs clang): what the hooks cost before any of scry-net's work")
    ap.add_argument("--loop", type=int, default=0, metavar="N",
                    help="also time N connections of bench/net_churn_loop.c (needs cc) in each arm: both ends of "
                    "each connection on one CPU and nothing else, so the microseconds scry-net adds per "
                    "connection show with little noise (the fastest run of each arm is compared)")
    ap.add_argument("--interleave", type=int, default=0, metavar="SECONDS",
                    help="instead of the A/B runs: the churn for SECONDS while the empty programs and scry-net's "
                    "(the BPF object of each --bin's build, loaded through libbpf with the defaults it was built "
                    "with, no exporter) are attached in turn, --phase seconds each, with phases of nothing attached "
                    "among them")
    ap.add_argument("--phase", type=float, default=0.2, help="seconds each arm is attached in --interleave")
    ap.add_argument("--rtt-duty-cycle", type=float, default=0.1,
                    help="share of --interleave's rounds in which a scry-net arm has its tcp_probe program "
                         "attached, as the exporter's --collector.rtt.duty-cycle (its default: 0.1)")
    ap.add_argument("--program-time", type=int, default=0, metavar="SECONDS",
                    help="instead of the A/B runs: only the BPF time per connection of the arms of --interleave "
                    "(empty programs, each --bin's BPF object, --busy), alternated every 0.4 s under the churn for "
                    "SECONDS")
    ap.add_argument("--profile", type=int, default=0, metavar="SECONDS",
                    help="instead of the A/B runs: perf samples of the churn for SECONDS with each --bin's BPF object "
                    "attached (as in --interleave), attributed to the programs and their source lines")
    ap.add_argument("--busy", type=int, action="append", default=[], metavar="ROUNDS",
                    help="in --interleave, one more arm: the empty programs, but the inet_sock_set_state one spins "
                    "ROUNDS rounds of arithmetic on the six state changes scry-net works on (program time that "
                    "touches no memory); repeat for more arms")
    ap.add_argument("flags", nargs="*", help="extra exporter flags (after --)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root")
    bins = [os.path.abspath(b) for b in a.bin] or [os.path.join(scrylib.BIN_DIR, "scry-net")]
    if a.profile:
        for b in bins:
            L, bpf_obj, progs = load_net_object(b)
            print("%s:" % os.path.normpath(b))
            profile(L, progs, a.profile)
            print()
        return
    if a.interleave or a.program_time:
        floor = probes.load("net_floor.bpf.c")
        if not floor:
            sys.exit("cannot load the empty programs")
        arms = {"without": (floor[0], [], [], 1), "empty programs": (floor[0], [p for _, p in floor[2]], [], 1)}
        for rounds in a.busy:
            busy = probes.load("net_floor.bpf.c", ["BUSY_ROUNDS=%d" % rounds])
            if not busy:
                sys.exit("cannot load the busy programs")
            arms["busy %d rounds" % rounds] = (busy[0], [p for _, p in busy[2]], [], 1)
        for b in bins:
            L, bpf_obj, progs = load_net_object(b)
            probe = [p for p in progs if L.bpf_program__section_name(p) == b"tp_btf/tcp_probe"]
            arms[b if len(bins) > 1 else "scry-net"] = (
                L, [p for p in progs if p not in probe], probe, a.rtt_duty_cycle)
        if a.program_time:
            print_program_time(program_time(arms, a.program_time), a.program_time)
            return
        phases = interleave(arms, a.interleave, a.phase)
        print_interleaved(phases, program_time(arms), a.interleave, a.phase, a.rtt_duty_cycle)
        return
    if a.soak:
        scrylib.BIN_DIR = os.path.dirname(bins[0])
        with scrylib.Exporter("net", *a.flags) as e:
            soak(e, a.soak, a.rate)
        return
    arms = ["without"] + (["empty programs"] if a.floor else []) + bins
    # cpu: churn's us per connection; loop: net_churn_loop seconds
    runs = {arm: {"iperf": [], "churn": [], "cpu": [], "loop": []} for arm in arms}
    per_hook, bpf_per_conn, series = {}, {}, []

    def run(arm, url):
        runs[arm]["iperf"].append(iperf(a.duration))
        rate, cpu = churn(url, a.duration)
        runs[arm]["churn"].append(rate)
        runs[arm]["cpu"].append(cpu)
        if a.loop:
            runs[arm]["loop"].append(churn_loop(loop_bin, a.loop))

    with tempfile.TemporaryDirectory() as tmp, nginx() as url:
        loop_bin = os.path.join(tmp, "net_churn_loop")
        if a.loop:
            subprocess.run(["cc", "-O2", "-o", loop_bin, os.path.join(os.path.dirname(__file__), "net_churn_loop.c")],
                           check=True)
        for _ in range(a.repeats):
            run("without", url)
            if a.floor:
                with probes.attached("net_floor.bpf.c") as ok:
                    if not ok:
                        sys.exit("cannot attach the empty programs (--floor)")
                    run("empty programs", url)
            for b in bins:  # alternated, so that every binary meets the same machine load
                scrylib.BIN_DIR = os.path.dirname(b)
                # throughput as deployed: BPF run-time statistics cost two clock reads per program run
                with scrylib.Exporter("net", *a.flags):
                    run(b, url)
                with scrylib.Exporter("net", "--bpf.stats", *a.flags) as e:
                    m0 = e.scrape()
                    iperf(a.duration)
                    m1 = e.scrape()
                    conns = churn(url, a.duration)[0] * a.duration
                    m2 = e.scrape()
                    for w, (before, after) in (("iperf", (m0, m1)), ("churn", (m1, m2))):
                        r0, n0 = stats(before)
                        r1, n1 = stats(after)
                        for p in r1:
                            d = r1[p] - r0.get(p, 0)
                            if d:
                                per_hook.setdefault((b, w, p), []).append(((n1[p] - n0.get(p, 0)), d))
                        if w == "churn":
                            bpf_per_conn.setdefault(b, []).append(sum(n1[p] - n0.get(p, 0) for p in n1) / conns)
                    series.append((len(m2.text.splitlines()), rss(e.proc.pid)))
    label = {b: (b if len(bins) > 1 else "scry-net") for b in bins}
    label["empty programs"] = "empty programs (bench/net_floor.bpf.c)"
    label["without"] = "without"
    print("| binary | workload | program | events | ns/event |")
    print("|---|---|---|---|---|")
    for (b, w, p), vals in sorted(per_hook.items()):
        ns, ev = sum(v[0] for v in vals), sum(v[1] for v in vals)
        print("| %s | %s | %s | %d | %.0f |" % (label[b], w, p, ev, ns / ev))
    print()
    print("| binary | BPF time per churned connection (both ends), ns |")
    print("|---|---|")
    for b in bins:
        print("| %s | %s |" % (label[b], " ".join("%.0f" % v for v in bpf_per_conn[b])))
    print()
    print("change: of the medians; paired: median of each repeat's ratio to the run without just before it")
    print()
    print("| workload | arm | median | change | paired | runs |")
    print("|---|---|---|---|---|---|")
    for w, what in (("iperf", "iperf3 loopback, Gbit/s"), ("churn", "churn, conn/s"),
                    ("cpu", "churn, CPU us per connection")):
        x0 = statistics.median(runs["without"][w])
        for arm in arms:
            xs = runs[arm][w]
            paired = statistics.median(x / y - 1 for x, y in zip(xs, runs["without"][w])) * 100
            print("| %s | %s | %.2f | %+.1f%% | %s | %s |" % (
                what, label[arm], statistics.median(xs), (statistics.median(xs) - x0) / x0 * 100,
                "%+.1f%%" % paired if arm != "without" else "", " ".join("%.4g" % v for v in xs)))
    if a.loop:
        print()
        print("bench/net_churn_loop.c, %d connections: fastest and median run; us added per connection (both "
              "ends), from the fastest runs and as the median of each repeat's difference" % a.loop)
        print()
        print("| arm | fastest s | median s | us/connection added (fastest) | (paired) | runs |")
        print("|---|---|---|---|---|---|")
        x0 = min(runs["without"]["loop"])
        for arm in arms:
            xs = runs[arm]["loop"]
            paired = statistics.median(x - y for x, y in zip(xs, runs["without"]["loop"])) / a.loop * 1e6
            print("| %s | %.3f | %.3f | %+.2f | %+.2f | %s |" % (
                label[arm], min(xs), statistics.median(xs), (min(xs) - x0) / a.loop * 1e6, paired,
                " ".join("%.3f" % v for v in xs)))
    print()
    print("after each churn run: /metrics lines, RSS MiB: %s" % series)


if __name__ == "__main__":
    main()
