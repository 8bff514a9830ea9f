"""scry-block on the running kernel against real block I/O with known answers.

Ground truth: the exact number and size of O_DIRECT reads and writes this test makes on its own
loop device (one request each: synchronous, under the loop device's size limits), the errno the
application sees for each failing write, and /proc/vmstat for page cache dirtying.
"""
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import scrylib  # noqa: E402
from scrylib import Exporter, bucket_le, cgroup2_root  # noqa: E402

KPROBES = os.path.exists("/sys/bus/event_source/devices/kprobe")


def vmstat(field):
    with open("/proc/vmstat") as f:
        for line in f:
            name, value = line.split()
            if name == field:
                return int(value)
    raise KeyError(field)


def delta(before, after, name, **labels):
    return after.get(name, 0, **labels) - before.get(name, 0, **labels)


def reads_in_cgroup(cgroup_dir, device, count):
    """A child process joins the cgroup, then does count direct 4 KiB reads of the device."""
    code = ("import os,sys; sys.path.insert(0,%r); import scrylib;"
            "open(%r,'w').write(str(os.getpid()));"
            "sys.exit(len(scrylib.direct_io(%r,'read',%d,4096)))"
            % (os.path.dirname(__file__), os.path.join(cgroup_dir, "cgroup.procs"), device, count))
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


class BlockIO(unittest.TestCase):
    """One exporter for the I/O tests; each test uses its own loop device."""

    @classmethod
    def setUpClass(cls):
        scrylib.require_root(unittest.TestCase())
        cls.tmp = tempfile.mkdtemp(prefix="scry-block-test-")
        cls.exporter = Exporter("block", "--collector.cgroup", "--bpf.stats").__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.exporter.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_exact_counts_bytes_and_sizes_of_direct_io(self):
        with scrylib.loop_device(os.path.join(self.tmp, "io.img"), 64 << 20) as dev:
            before = self.exporter.scrape()
            self.assertEqual(scrylib.direct_io(dev, "read", 50, 4096), [])
            self.assertEqual(scrylib.direct_io(dev, "write", 30, 65536), [])
            self.assertEqual(scrylib.direct_io(dev, "read", 7, 1 << 20 >> 3), [])  # 128 KiB
            after = self.exporter.scrape()

        d = lambda name, **l: delta(before, after, name, device=dev, **l)  # noqa: E731
        self.assertEqual(d("scry_block_requests_total", op="read"), 57)
        self.assertEqual(d("scry_block_requests_total", op="write"), 30)
        self.assertEqual(d("scry_block_bytes_total", op="read"), 50 * 4096 + 7 * 131072)
        self.assertEqual(d("scry_block_bytes_total", op="write"), 30 * 65536)
        # Size buckets: a value lands in the first bucket with v <= le.
        size = "scry_block_request_size_bytes_bucket"
        self.assertEqual(d(size, op="read", le=bucket_le(2048)), 0)
        self.assertEqual(d(size, op="read", le=bucket_le(4096)), 50)
        self.assertEqual(d(size, op="read", le=bucket_le(65536)), 50)
        self.assertEqual(d(size, op="read", le=bucket_le(131072)), 57)
        self.assertEqual(d(size, op="read", le="+Inf"), 57)
        self.assertEqual(d(size, op="write", le=bucket_le(32768)), 0)
        self.assertEqual(d(size, op="write", le=bucket_le(65536)), 30)
        self.assertEqual(d("scry_block_request_size_bytes_count", op="write"), 30)
        self.assertEqual(d("scry_block_request_size_bytes_sum", op="write"), 30 * 65536)
        # Every request was issued and completed: each has a service time. The loop device has no
        # scheduler, so requests bypass insert; they still count for service time.
        self.assertEqual(d("scry_block_service_duration_seconds_count", op="read"), 57)
        self.assertEqual(d("scry_block_service_duration_seconds_count", op="write"), 30)
        self.assertGreater(d("scry_block_service_duration_seconds_sum", op="write"), 0)
        self.assertLessEqual(d("scry_block_queue_duration_seconds_count", op="write"), 30)
        self.assertEqual(d("scry_block_errors_total", op="write", error="ENOSPC"), 0)

    def test_write_errors_counted_by_errno_name(self):
        # A loop device on a sparse file on a 1 MiB tmpfs: writes past what the tmpfs holds fail
        # in the block layer with ENOSPC, and the application sees ENOSPC for exactly those.
        with scrylib.tmpfs(os.path.join(self.tmp, "tiny"), "1M") as tiny:
            with scrylib.loop_device(os.path.join(tiny, "full.img"), 16 << 20) as dev:
                before = self.exporter.scrape()
                errors = scrylib.direct_io(dev, "write", 40, 65536, offset=4 << 20)
                after = self.exporter.scrape()
        self.assertGreater(len(errors), 0, "the tmpfs did not fill up")
        self.assertEqual(set(errors), {28})  # ENOSPC
        self.assertEqual(delta(before, after, "scry_block_errors_total", device=dev, op="write", error="ENOSPC"),
                         len(errors))
        self.assertEqual(delta(before, after, "scry_block_requests_total", device=dev, op="write"), 40)

    def test_cgroup_latency_is_labelled_with_the_submitters_cgroup(self):
        root = cgroup2_root()
        self.assertIsNotNone(root, "no cgroup v2 hierarchy")
        name = "scry-block-test-%d" % os.getpid()
        path = os.path.join(root, name)
        os.mkdir(path)
        try:
            with scrylib.loop_device(os.path.join(self.tmp, "cg.img"), 16 << 20) as dev:
                before = self.exporter.scrape()
                reads_in_cgroup(path, dev, 20)
                # A cgroup gets its path at the exporter's next look at the cgroup tree.
                for _ in range(100):
                    after = self.exporter.scrape()
                    if after.get("scry_block_cgroup_io_duration_seconds_count", cgroup="/" + name,
                                 device=dev) is not None:
                        break
                    time.sleep(0.2)
            self.assertEqual(delta(before, after, "scry_block_cgroup_io_duration_seconds_count",
                                   cgroup="/" + name, device=dev), 20)
        finally:
            os.rmdir(path)

    def test_page_cache_dirtied_agrees_with_vmstat(self):
        nr_before = vmstat("nr_dirtied")
        before = self.exporter.scrape()
        with open(os.path.join(self.tmp, "dirty.bin"), "wb") as f:
            for _ in range(256):
                f.write(b"x" * 4096)
        os.sync()
        after = self.exporter.scrape()
        # vmstat folds per-CPU deltas in every vm.stat_interval (1 s by default): wait for that.
        with open("/proc/sys/vm/stat_interval") as f:
            time.sleep(2 * int(f.read()) + 1)
        nr_after = vmstat("nr_dirtied")
        dirtied = delta(before, after, "scry_block_page_cache_dirtied_total")
        # We count folios; vmstat counts pages over a window that encloses ours.
        self.assertGreater(dirtied, 0)
        self.assertLessEqual(dirtied, nr_after - nr_before)

    def test_page_cache_additions_on_a_cold_read(self):
        path = os.path.join(self.tmp, "cold.bin")
        with open(path, "wb") as f:
            f.write(os.urandom(1 << 20))
            f.flush()
            os.fsync(f.fileno())
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        before = self.exporter.scrape()
        with open(path, "rb") as f:
            while f.read(1 << 16):
                pass
        after = self.exporter.scrape()
        self.assertGreater(delta(before, after, "scry_block_page_cache_additions_total"), 0)

    def test_unavailable_feature_says_so_and_exports_no_zeros(self):
        m = self.exporter.scrape()
        for feature, metric in [("page_cache_accesses", "scry_block_page_cache_accesses_total"),
                                ("page_cache_additions", "scry_block_page_cache_additions_total"),
                                ("page_cache_dirtied", "scry_block_page_cache_dirtied_total")]:
            available = m.get("scry_feature_available", feature=feature)
            self.assertIn(available, (0, 1))
            self.assertEqual(m.has(metric), available == 1, feature)
        if not KPROBES:
            # This kernel cannot kprobe and refuses fentry: folio_mark_accessed has no hook.
            self.assertEqual(m.get("scry_feature_available", feature="page_cache_accesses"), 0)
            self.assertEqual(m.get("scry_bpf_program_attached", hook="page_access", mode="none"), 0)

    def test_self_metrics(self):
        m = self.exporter.scrape()
        self.assertEqual(m.get("scry_build_info", exporter="block"), 1)
        for hook in ("rq_complete", "rq_issue", "rq_insert"):
            series = [(dict(ls), v) for ls, v in m.series("scry_bpf_program_attached").items()
                      if dict(ls)["hook"] == hook]
            self.assertEqual(len(series), 1)
            labels, value = series[0]
            self.assertEqual(value, 1, hook)
            self.assertEqual(labels["mode"], "tp_btf", hook)  # BTF is there, so the best mode wins
        self.assertEqual(m.get("scry_bpf_map_capacity", map="disk_stats"), 1024)
        self.assertGreaterEqual(m.get("scry_bpf_map_entries", map="disk_stats"), 1)
        self.assertEqual(m.get("scry_lost_events_total", reason="inflight_map_full"), 0)
        self.assertGreater(m.get("scry_bpf_program_runs_total", hook="rq_complete"), 0)
        self.assertGreater(m.get("scry_bpf_program_run_seconds_total", hook="rq_complete"), 0)
        missed = {dict(ls)["hook"] for ls in m.series("scry_bpf_program_missed_total")}
        self.assertTrue({"rq_complete", "rq_issue", "rq_insert"} <= missed, missed)
        self.assertIsNotNone(m.get("scry_scrape_collector_duration_seconds", collector="disk"))

    def test_scrapes_are_read_only(self):
        a = self.exporter.scrape()
        b = self.exporter.scrape()
        for (name, labels), value in a.samples.items():
            if name.startswith("scry_block_") and (name.endswith("_total") or name.endswith("_count")):
                self.assertGreaterEqual(b.samples.get((name, labels), -1), value, name)

    def test_promtool_check_metrics_is_silent(self):
        text = self.exporter.scrape_text()
        r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout + r.stderr, "")

    def test_capabilities_dropped_after_attach(self):
        with open("/proc/%d/status" % self.exporter.proc.pid) as f:
            status = dict(line.split(":", 1) for line in f)
        effective = int(status["CapEff"].strip(), 16)
        cap_perfmon, cap_bpf = 38, 39
        self.assertEqual(effective & ~((1 << cap_perfmon) | (1 << cap_bpf)), 0, hex(effective))
        self.assertEqual(int(status["CapPrm"].strip(), 16), effective)


class FallbackModes(unittest.TestCase):
    """The loader's fallbacks, forced on this kernel by narrowing --bpf.attach-modes: the same exact
    answers from raw_tp programs, and counts without latency from classic tracepoints."""

    def setUp(self):
        scrylib.require_root(self)
        self.tmp = tempfile.mkdtemp(prefix="scry-block-modes-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def run_io(self, exporter):
        with scrylib.loop_device(os.path.join(self.tmp, "modes.img"), 16 << 20) as dev:
            before = exporter.scrape()
            self.assertEqual(scrylib.direct_io(dev, "write", 12, 8192), [])
            self.assertEqual(scrylib.direct_io(dev, "read", 9, 4096), [])
            after = exporter.scrape()
        return dev, before, after

    def modes(self, metrics):
        return {dict(ls)["hook"]: dict(ls)["mode"] for ls, v in metrics.series("scry_bpf_program_attached").items()}

    def test_raw_tp(self):
        with Exporter("block", "--bpf.attach-modes=raw_tp") as exporter:
            dev, before, after = self.run_io(exporter)
        modes = self.modes(after)
        for hook in ("rq_complete", "rq_issue", "rq_insert", "rq_merge"):
            self.assertEqual(modes[hook], "raw_tp", hook)
        self.assertEqual(delta(before, after, "scry_block_requests_total", device=dev, op="write"), 12)
        self.assertEqual(delta(before, after, "scry_block_bytes_total", device=dev, op="read"), 9 * 4096)
        self.assertEqual(delta(before, after, "scry_block_service_duration_seconds_count", device=dev, op="read"), 9)
        self.assertEqual(after.get("scry_feature_available", feature="latency"), 1)

    def test_classic_tracepoints(self):
        with Exporter("block", "--bpf.attach-modes=tracepoint") as exporter:
            dev, before, after = self.run_io(exporter)
        modes = self.modes(after)
        self.assertEqual(modes["rq_complete"], "tracepoint")
        self.assertEqual(modes["page_add"], "tracepoint")
        self.assertEqual(modes["rq_issue"], "none")
        self.assertEqual(delta(before, after, "scry_block_requests_total", device=dev, op="write"), 12)
        self.assertEqual(delta(before, after, "scry_block_bytes_total", device=dev, op="write"), 12 * 8192)
        self.assertEqual(delta(before, after, "scry_block_request_size_bytes_bucket", device=dev, op="write",
                               le=bucket_le(8192)), 12)
        # No request pointer at completion: latency is unavailable, and absent rather than zero.
        self.assertEqual(after.get("scry_feature_available", feature="latency"), 0)
        self.assertFalse(after.has("scry_block_service_duration_seconds_count"))
        self.assertFalse(after.has("scry_block_queue_duration_seconds_count"))


class ProcessFilter(unittest.TestCase):
    """--filter.cmdline: the per-cgroup series show only the matching process; the disk's show all."""

    def setUp(self):
        scrylib.require_root(self)

    def test_only_the_matching_process_has_cgroup_series(self):
        marker = "scry-filter-in-%d" % os.getpid()
        # Waits out the filter's refresh (1 s) before its reads; its argv carries a marker.
        code = ("import sys,time; sys.path.insert(0,%r); import scrylib; time.sleep(1.5);"
                "sys.exit(len(scrylib.direct_io(sys.argv[1],'read',10,4096)))" % os.path.dirname(__file__))
        with tempfile.TemporaryDirectory() as tmp, scrylib.loop_device(os.path.join(tmp, "f.img"), 8 << 20) as dev, \
                scrylib.cgroup("scry-block-in-%d" % os.getpid()) as inside, \
                scrylib.cgroup("scry-block-out-%d" % os.getpid()) as outside, \
                Exporter("block", "--collector.cgroup", "--filter.cmdline=" + marker) as exporter:
            procs = [scrylib.popen_in_cgroup(inside, [sys.executable, "-c", code, dev, marker]),
                     scrylib.popen_in_cgroup(outside, [sys.executable, "-c", code, dev, "other"])]
            self.assertEqual([p.wait(timeout=60) for p in procs], [0, 0])
            label = "/" + os.path.basename(inside)
            for _ in range(50):
                m = exporter.scrape()
                if m.get("scry_block_cgroup_io_duration_seconds_count", cgroup=label, device=dev) is not None:
                    break
                time.sleep(0.2)
            cgroups = {dict(ls)["cgroup"] for ls in m.series("scry_block_cgroup_io_duration_seconds_count")
                       if dict(ls)["device"] == dev}
            self.assertEqual(cgroups, {label})
            self.assertEqual(m.get("scry_block_cgroup_io_duration_seconds_count", cgroup=label, device=dev), 10)
            self.assertGreaterEqual(m.get("scry_block_requests_total", device=dev, op="read"), 20)

    def test_a_filter_needs_the_cgroup_collector(self):
        r = subprocess.run([os.path.join(scrylib.BIN_DIR, "scry-block"), "--filter.pid=1"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--collector.cgroup", r.stderr)


class CgroupCap(unittest.TestCase):
    """With --workload.max=1, one cgroup keeps its name and the rest sum into cgroup="other"."""

    def setUp(self):
        scrylib.require_root(self)
        self.tmp = tempfile.mkdtemp(prefix="scry-block-cap-")
        root = cgroup2_root()
        self.cgroups = [os.path.join(root, "scry-cap-%d-%s" % (os.getpid(), n)) for n in "ab"]
        for path in self.cgroups:
            os.mkdir(path)

    def tearDown(self):
        for path in self.cgroups:
            os.rmdir(path)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_overflow_series(self):
        with Exporter("block", "--collector.cgroup", "--workload.max=1") as exporter:
            with scrylib.loop_device(os.path.join(self.tmp, "cap.img"), 16 << 20) as dev:
                for path in self.cgroups:
                    reads_in_cgroup(path, dev, 10)
                for _ in range(100):
                    m = exporter.scrape()
                    series = {dict(ls)["cgroup"]: v for ls, v in
                              m.series("scry_block_cgroup_io_duration_seconds_count").items()
                              if dict(ls)["device"] == dev}
                    if sum(series.values()) == 20:
                        break
                    time.sleep(0.2)
        names = {dict(ls)["cgroup"] for ls in m.series("scry_block_cgroup_io_duration_seconds_count")}
        self.assertEqual(len(names), 2, names)  # one by name, the rest as "other"
        self.assertIn("other", names)
        self.assertEqual(sum(series.values()), 20, series)


class Check(unittest.TestCase):
    def setUp(self):
        scrylib.require_root(self)
        self.binary = os.path.join(scrylib.BIN_DIR, "scry-block")

    def test_check_reports_modes_and_exits_zero(self):
        r = subprocess.run([self.binary, "--check"], capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        lines = {tuple(line.split()[:4]) for line in r.stdout.splitlines()}
        self.assertIn(("io", "available", "rq_complete", "tp_btf"), lines, r.stdout)
        self.assertIn(("latency", "available", "rq_issue", "tp_btf"), lines, r.stdout)
        self.assertIn(("cgroup", "disabled", "-", "-"), lines, r.stdout)
        if not KPROBES:
            self.assertIn(("page_cache_accesses", "unavailable", "page_access", "none"), lines, r.stdout)
        self.assertIn("usable", r.stdout.splitlines()[0])

    def test_btf_path(self):
        # The kernel's own BTF given as a file works as on a kernel without /sys/kernel/btf/vmlinux.
        r = subprocess.run([self.binary, "--check", "--btf-path=/sys/kernel/btf/vmlinux"], capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn(("io", "available", "rq_complete", "tp_btf"),
                      {tuple(line.split()[:4]) for line in r.stdout.splitlines()})
        r = subprocess.run([self.binary, "--check", "--btf-path=/nonexistent/vmlinux"], capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("/nonexistent/vmlinux", r.stderr)


class Lifecycle(unittest.TestCase):
    def setUp(self):
        scrylib.require_root(self)

    def block_programs(self):
        """Ids of the loaded BPF programs named like scry-block's request hooks."""
        import json
        out = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True, timeout=60).stdout
        return {p["id"] for p in json.loads(out) if p.get("name", "").startswith(("rq_complete", "rq_issue"))}

    def program_exists(self, prog_id):
        return subprocess.run(["bpftool", "prog", "show", "id", str(prog_id)], capture_output=True,
                              timeout=60).returncode == 0

    def test_sd_notify_ready_and_stopping_and_clean_detach(self):
        sock_path = os.path.join(tempfile.mkdtemp(prefix="scry-notify-"), "notify.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(sock_path)
        sock.settimeout(60)
        before = self.block_programs()
        exporter = Exporter("block", env={"NOTIFY_SOCKET": sock_path})
        with exporter:
            self.assertEqual(sock.recv(256), b"READY=1")
            programs = self.block_programs() - before
            self.assertEqual(len(programs), 2)  # rq_complete and rq_issue
            code = exporter.stop(signal.SIGTERM)
        self.assertEqual(sock.recv(256), b"STOPPING=1")
        self.assertEqual(code, 0, exporter.log())
        # The kernel frees a program after its last reference goes, a little later (RCU).
        for _ in range(100):
            left = [p for p in programs if self.program_exists(p)]
            if not left:
                break
            time.sleep(0.1)
        self.assertEqual(left, [], "BPF programs left after exit")
        if os.path.isdir("/sys/fs/bpf"):
            self.assertEqual([p for p in os.listdir("/sys/fs/bpf") if "scry" in p], [])
        sock.close()

    def test_sigint_stops_cleanly(self):
        exporter = Exporter("block")
        with exporter:
            code = exporter.stop(signal.SIGINT)
        self.assertEqual(code, 0, exporter.log())


class WebConfig(unittest.TestCase):
    """TLS and basic auth from a node_exporter web-config, through the real binary and curl."""

    # htpasswd -nbBC 4 bob 's3cret:with colon'
    HASH = "$2y$04$rvyFc6fANx8MA04CzXwNH.hxGCF1YVd24kO1t/L8fmCZhl4eVUMxK"
    PASSWORD = "s3cret:with colon"

    def setUp(self):
        scrylib.require_root(self)
        self.dir = tempfile.mkdtemp(prefix="scry-web-")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
                        "-days", "1", "-keyout", os.path.join(self.dir, "key.pem"),
                        "-out", os.path.join(self.dir, "cert.pem")], check=True, capture_output=True, timeout=60)
        self.config = os.path.join(self.dir, "web.yml")
        with open(self.config, "w") as f:
            f.write("tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n"
                    "basic_auth_users:\n  bob: '%s'\n" % self.HASH)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def curl(self, url, *args):
        r = subprocess.run(["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", *args, url],
                           capture_output=True, text=True, timeout=60)
        return r.stdout

    def test_tls_and_basic_auth(self):
        exporter = Exporter("block", "--web.config.file=" + self.config)
        # The exporter is up once it answers 401 over https.
        exporter.scrape = lambda: None
        exporter.proc = subprocess.Popen([exporter.binary, *exporter.args], stderr=exporter.stderr,
                                         stdout=subprocess.DEVNULL)
        try:
            url = "https://127.0.0.1:%d/metrics" % exporter.port
            for _ in range(300):
                if self.curl(url) == "401" or exporter.proc.poll() is not None:
                    break
                time.sleep(0.1)
            self.assertEqual(self.curl(url), "401", exporter.log())
            self.assertEqual(self.curl(url, "-u", "bob:wrong"), "401")
            self.assertEqual(self.curl(url, "-u", "bob:" + self.PASSWORD), "200")
            self.assertEqual(self.curl("https://127.0.0.1:%d/" % exporter.port, "-u", "bob:" + self.PASSWORD), "200")
            self.assertEqual(self.curl("https://127.0.0.1:%d/" % exporter.port), "401")
            self.assertNotEqual(self.curl("http://127.0.0.1:%d/metrics" % exporter.port), "200")  # TLS only
        finally:
            self.assertEqual(exporter.stop(), 0, exporter.log())


class BadInput(unittest.TestCase):
    """Each mistake: one clear line on stderr, a non-zero exit, no crash, nothing left running."""

    def setUp(self):
        scrylib.require_root(self)
        self.binary = os.path.join(scrylib.BIN_DIR, "scry-block")

    def run_bad(self, *args, user=None, expect=2):
        kw = {}
        if user:
            pw = pwd.getpwnam(user)
            kw = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
        r = subprocess.run([self.binary, *args], capture_output=True, text=True, timeout=120, **kw)
        self.assertEqual(r.returncode, expect, r.stderr)
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertEqual(r.stdout, "")
        return lines[0]

    def test_unknown_flag(self):
        line = self.run_bad("--no-such-flag")
        self.assertIn("no-such-flag", line)

    def test_bad_listen_address(self):
        for address in ("127.0.0.1", "127.0.0.1:notaport", "127.0.0.1:70000", "::::"):
            line = self.run_bad("--web.listen-address=" + address)
            self.assertIn("listen", line.lower() + address)

    def test_unreadable_web_config(self):
        line = self.run_bad("--web.config.file=/nonexistent/web.yml")
        self.assertIn("/nonexistent/web.yml", line)

    def test_bad_web_config(self):
        path = os.path.join(tempfile.mkdtemp(prefix="scry-web-"), "web.yml")
        with open(path, "w") as f:
            f.write("tls_server_config:\n  cert_file: /nonexistent.pem\nbogus: 1\n")
        self.run_bad("--web.config.file=" + path)

    def test_bad_log_level(self):
        line = self.run_bad("--log.level=loud")
        self.assertIn("loud", line)

    def test_port_in_use(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            port = s.getsockname()[1]
            line = self.run_bad("--web.listen-address=127.0.0.1:%d" % port, expect=1)
        self.assertIn(str(port), line)

    def test_no_permission_to_load_bpf(self):
        line = self.run_bad("--web.listen-address=127.0.0.1:%d" % scrylib.free_port(), user="nobody", expect=1)
        self.assertIn("permission", line.lower())


if __name__ == "__main__":
    unittest.main(verbosity=2)
