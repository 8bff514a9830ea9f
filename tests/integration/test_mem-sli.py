"""scry-mem-sli on the running kernel against workloads with known answers.

Ground truth: a C program (mem_sli_workload.c, built here) that makes exactly the page faults, mmap,
munmap and brk calls it is asked for and nothing else in the measured window; the process's own
minflt/majflt in /proc/<pid>/stat; the exit signal of a process the kernel OOM-killed in a cgroup with
a memory limit (v1 memory controller on hybrid hosts, memory.max on pure cgroup v2).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import scrylib  # noqa: E402
from scrylib import Exporter, cgroup2_root  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
V1_MEMORY = "/sys/fs/cgroup/memory"
MIB = 1 << 20
PAGE = os.sysconf("SC_PAGE_SIZE")


def v1_memory_mounted():
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, post = line.split(" - ", 1)
            fields = post.split()
            if fields[0] == "cgroup" and "memory" in fields[2].split(",") and pre.split()[4] == V1_MEMORY:
                return True
    return False


def write(path, value):
    with open(path, "w") as f:
        f.write(str(value))


class Cgroup:
    """A cgroup of the same name in the v2 tree (identity) and, on hybrid hosts, in the v1 memory
    controller (the limit); on pure v2 the limit is memory.max. With memcg=False it has no memory cgroup
    of its own: on hybrid hosts none in the v1 hierarchy, on pure v2 a leaf under a parent that does not
    enable the controller for it."""

    def __init__(self, name, limit=None, memcg=True):
        self.name = name
        root = cgroup2_root()
        self.v1 = os.path.join(V1_MEMORY, name) if v1_memory_mounted() and memcg else None
        pure_v2 = not v1_memory_mounted()
        if pure_v2:
            with open(os.path.join(root, "cgroup.subtree_control"), "w") as f:
                f.write("+memory")
        self.dirs = [os.path.join(root, name)]
        os.mkdir(self.dirs[0])
        if pure_v2 and not memcg:
            self.dirs.append(os.path.join(self.dirs[0], "leaf"))
            os.mkdir(self.dirs[1])
        self.v2 = self.dirs[-1]
        self.label = self.v2[len(root):]
        if self.v1:
            os.mkdir(self.v1)
        if limit:
            if self.v1:
                write(os.path.join(self.v1, "memory.limit_in_bytes"), limit)
            else:
                write(os.path.join(self.v2, "memory.max"), limit)
                write(os.path.join(self.v2, "memory.swap.max"), 0)

    def memory_stat(self):
        """pgfault and pgmajfault of the cgroup's own memory.stat."""
        with open(os.path.join(self.v1 or self.v2, "memory.stat")) as f:
            stat = dict(line.split() for line in f)
        return int(stat["pgfault"]), int(stat["pgmajfault"])

    def join(self):
        """preexec_fn: the child moves itself into both hierarchies before exec."""
        for d in (self.v2, self.v1):
            if d:
                write(os.path.join(d, "cgroup.procs"), os.getpid())

    def remove(self):
        for d in [self.v1] + self.dirs[::-1]:
            for _ in range(50):
                if not d or not os.path.isdir(d):
                    break
                try:
                    os.rmdir(d)
                except OSError:
                    time.sleep(0.1)


def proc_faults(pid):
    """(minflt + majflt, majflt) of a process, from /proc/<pid>/stat."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[7]) + int(fields[9]), int(fields[9])  # fields 10 and 12 of stat(5)


class Workload:
    """The C workload in a cgroup, driven line by line over pipes."""

    def __init__(self, binary, cgroup, *args):
        self.proc = subprocess.Popen([binary, *args], preexec_fn=cgroup.join, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.expect("ready")

    def expect(self, word):
        line = self.proc.stdout.readline().strip()
        if line != word:
            raise AssertionError("workload said %r, expected %r" % (line, word))

    def step(self):
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()

    def finish(self):
        try:
            self.step()
        except BrokenPipeError:
            pass
        self.proc.wait(timeout=30)
        self.proc.stdin.close()
        self.proc.stdout.close()


def labelled(exporter, name, cgroup, **labels):
    """Scrapes until the cgroup's series of name exists (a new cgroup gets its labels at the exporter's
    next look at the tree); returns that scrape."""
    for _ in range(100):
        m = exporter.scrape()
        if m.get(name, cgroup=cgroup, **labels) is not None:
            return m
        time.sleep(0.1)
    raise AssertionError("no %s{cgroup=%r} after 10 s" % (name, cgroup))


def log_fields(line):
    return dict((k, v.strip('"')) for k, v in re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)', line))


class MemSli(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        scrylib.require_root(unittest.TestCase())
        cls.tmp = tempfile.mkdtemp(prefix="scry-mem-test-")
        cls.work = os.path.join(cls.tmp, "memwork")
        subprocess.run(["cc", "-O1", "-o", cls.work, os.path.join(HERE, "mem_sli_workload.c")], check=True)
        cls.exporter = Exporter("mem-sli", "--bpf.stats").__enter__()
        cls.cgroups = []

    @classmethod
    def tearDownClass(cls):
        cls.exporter.stop()
        cls.exporter.stderr.close()
        for cg in cls.cgroups:
            cg.remove()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def cgroup(self, what, limit=None, memcg=True):
        cg = Cgroup("scry-mem-%s-%d" % (what, os.getpid()), limit, memcg)
        self.cgroups.append(cg)
        return cg

    def test_oom_kill_counted_once_with_reclaim_stalls_and_logged(self):
        limit = 48 * MIB
        hot, calm = self.cgroup("oom", limit), self.cgroup("calm", 1 << 30)
        quiet = Workload(self.work, calm, "touch", "256")  # faults, but far below its limit
        quiet.step()
        quiet.expect("done")
        hog = subprocess.Popen([self.work, "hog", "512"], preexec_fn=hot.join, stdout=subprocess.PIPE, text=True)
        out, _ = hog.communicate(timeout=120)
        self.assertEqual(hog.returncode, -9, "the hog was not OOM-killed: %r" % out)
        quiet.finish()

        m = labelled(self.exporter, "scry_mem_oom_kills_total", hot.label, scope="memcg")
        for _ in range(50):  # the kill is counted in the kernel before the victim's SIGKILL lands
            if m.get("scry_mem_oom_kills_total", cgroup=hot.label, scope="memcg") >= 1:
                break
            time.sleep(0.1)
            m = self.exporter.scrape()
        self.assertEqual(m.get("scry_mem_oom_kills_total", cgroup=hot.label, scope="memcg"), 1)
        self.assertEqual(m.get("scry_mem_oom_kills_total", cgroup=hot.label, scope="global"), 0)
        self.assertGreater(m.get("scry_mem_reclaim_stall_seconds_count", cgroup=hot.label, kind="memcg"), 0)
        self.assertGreater(m.get("scry_mem_reclaim_stall_seconds_sum", cgroup=hot.label, kind="memcg"), 0)
        self.assertGreaterEqual(m.get("scry_mem_node_oom_kills_total", scope="memcg"), 1)

        # The calm cgroup: series (it faulted) but no stall and no kill.
        m = labelled(self.exporter, "scry_mem_page_faults_total", calm.label)
        self.assertGreaterEqual(m.get("scry_mem_page_faults_total", cgroup=calm.label), 256)
        self.assertEqual(m.get("scry_mem_oom_kills_total", cgroup=calm.label, scope="memcg"), 0)
        self.assertEqual(m.get("scry_mem_oom_kills_total", cgroup=calm.label, scope="global"), 0)
        for name in ("scry_mem_reclaim_stall_seconds_count", "scry_mem_compaction_stall_seconds_count"):
            self.assertEqual([ls for ls in m.series(name) if ("cgroup", calm.label) in ls], [], name)

        # Exactly one log line for the victim, with its workload and memory at the time.
        lines = []
        for _ in range(50):  # logged once the victim's cgroup has its labels
            lines = [log_fields(l) for l in self.exporter.log().splitlines() if 'msg="oom kill"' in l]
            lines = [f for f in lines if f.get("pid") == str(hog.pid)]
            if lines:
                break
            time.sleep(0.1)
        self.assertEqual(len(lines), 1, self.exporter.log())
        f = lines[0]
        self.assertEqual(f["comm"], "memwork")
        self.assertEqual(f["cgroup"], hot.label)
        self.assertEqual(f["scope"], "memcg")
        self.assertIn("oom_score_adj", f)
        # The victim held most of the limit in anonymous memory when it was killed.
        self.assertGreater(int(f["anon_rss_bytes"]), limit // 2)
        self.assertLessEqual(int(f["anon_rss_bytes"]), limit)
        self.assertGreater(int(f["pgtables_bytes"]), 0)

    def faults_in_window(self, exporter, cg, *args):
        """Runs the workload's step in cg between two scrapes: (exporter's delta of all and of major
        faults, the process's own delta of minflt + majflt and of majflt, the last scrape)."""
        w = Workload(self.work, cg, *args)
        try:
            before = labelled(exporter, "scry_mem_page_faults_total", cg.label)
            own_before = proc_faults(w.proc.pid)
            w.step()
            w.expect("done")
            own_after = proc_faults(w.proc.pid)
            after = exporter.scrape()
        finally:
            w.finish()

        def d(name):  # None where the exporter has no such series
            a, b = after.get(name, cgroup=cg.label), before.get(name, cgroup=cg.label)
            return None if a is None or b is None else a - b
        return (d("scry_mem_page_faults_total"), d("scry_mem_major_page_faults_total"),
                own_after[0] - own_before[0], own_after[1] - own_before[1], after)

    def test_faults_from_the_memory_cgroup_agree_with_proc_stat(self):
        # The default source: the memory cgroup's own pgfault/pgmajfault, read at scrape time.
        n = 3000
        got, got_major, own, own_major, m = self.faults_in_window(self.exporter, self.cgroup("faults"), "touch", str(n))
        self.assertGreaterEqual(own, n)
        self.assertGreaterEqual(got, n)
        # The cgroup counts every call of the fault handler, the process only faults that did not have to
        # be retried: as many or a few more.
        self.assertGreaterEqual(got, own)
        self.assertLessEqual(got, own + own // 10 + 16)
        self.assertEqual(got_major, own_major)
        self.assertGreaterEqual(m.get("scry_mem_node_page_faults_total"), got)
        self.assertEqual(m.get("scry_feature_available", feature="memcg_faults"), 1)
        self.assertEqual(m.get("scry_bpf_program_attached", hook="page_fault_user", default=0), 0)

    def test_major_faults_from_the_memory_cgroup_agree_with_proc_stat(self):
        # Each page of a file mapping read with its pages dropped from the page cache and no readahead
        # is a major fault; major faults are available here without fexit.
        # In the build tree: a disk file system (in tmpfs a file's pages are never read from a disk).
        data = os.path.join(os.path.dirname(os.path.abspath(scrylib.BIN_DIR)), "scry-mem-major-%d" % os.getpid())
        with open(data, "wb") as f:
            f.write(b"\0" * (8 * MIB))
            os.fsync(f.fileno())
        try:
            got, got_major, own, own_major, m = self.faults_in_window(self.exporter, self.cgroup("major"), "read", data)
        finally:
            os.unlink(data)
        self.assertGreaterEqual(own_major, 8 * MIB // PAGE // 2)  # the setup made I/O faults at all
        self.assertEqual(got_major, own_major)
        self.assertGreaterEqual(got, own)
        self.assertGreaterEqual(m.get("scry_mem_node_major_page_faults_total"), got_major)

    def test_workload_without_its_own_memory_cgroup_has_no_fault_series(self):
        # Its faults are charged to an ancestor's memory cgroup: exporting those would be wrong.
        cg = self.cgroup("nomemcg", memcg=False)
        w = Workload(self.work, cg, "vm", self.work)
        try:
            w.step()
            w.expect("done")
            m = labelled(self.exporter, "scry_mem_vm_mapped_bytes_total", cg.label, kind="anon")
        finally:
            w.finish()
        self.assertIsNone(m.get("scry_mem_page_faults_total", cgroup=cg.label))
        self.assertIsNone(m.get("scry_mem_major_page_faults_total", cgroup=cg.label))
        self.assertGreaterEqual(m.get("scry_mem_workloads_without_memcg"), 1)

    def test_workload_started_before_the_exporter_has_its_memory_cgroups_faults(self):
        # No hook has seen it (its mmap was before the start): its cgroup holds a process, which is enough.
        cg = self.cgroup("early")
        w = Workload(self.work, cg, "touch", "1000")
        try:
            with Exporter("mem-sli") as ex:
                before = labelled(ex, "scry_mem_page_faults_total", cg.label)
                w.step()
                w.expect("done")
                after = ex.scrape()
                stat = cg.memory_stat()  # the workload waits for a line: no fault since the scrape
        finally:
            w.finish()
        self.assertEqual(after.get("scry_mem_page_faults_total", cgroup=cg.label), stat[0])
        self.assertEqual(after.get("scry_mem_major_page_faults_total", cgroup=cg.label), stat[1])
        self.assertGreaterEqual(after.get("scry_mem_page_faults_total", cgroup=cg.label) -
                                before.get("scry_mem_page_faults_total", cgroup=cg.label), 1000)
        self.assertEqual(after.get("scry_mem_vm_mapped_bytes_total", cgroup=cg.label, kind="anon"), 0)
        self.assertEqual(after.get("scry_mem_oom_kills_total", cgroup=cg.label, scope="memcg"), 0)

    def test_user_faults_from_the_hook_at_least_pages_touched_and_agree_with_proc_stat(self):
        n = 3000
        with Exporter("mem-sli", "--faults.source=hook", "--bpf.stats") as ex:
            got, _, own, _, m = self.faults_in_window(ex, self.cgroup("hookfaults"), "touch", str(n))
            self.assertEqual(m.get("scry_feature_available", feature="faults"), 1)
            self.assertIsNone(m.get("scry_feature_available", feature="memcg_faults"))  # disabled
            self.assertEqual(m.get("scry_bpf_program_attached", hook="page_fault_user", mode="tp_btf"), 1)
            self.assertGreater(m.get("scry_bpf_program_runs_total", hook="page_fault_user"), 0)
            self.assertIsNotNone(m.get("scry_bpf_program_missed_total", hook="page_fault_user"))
        self.assertGreaterEqual(own, n)
        self.assertGreaterEqual(got, n)
        # Every fault the process accounted in the window was taken in user mode.
        self.assertGreaterEqual(got, own)
        self.assertGreaterEqual(m.get("scry_mem_node_page_faults_total"), got)

    def test_vm_growth_moves_by_exactly_the_sizes_mapped(self):
        cg = self.cgroup("vm")
        w = Workload(self.work, cg, "vm", self.work)
        try:
            before = labelled(self.exporter, "scry_mem_vm_mapped_bytes_total", cg.label, kind="anon")
            w.step()
            w.expect("done")
            after = self.exporter.scrape()
        finally:
            w.finish()

        def d(name, **labels):
            return after.get(name, cgroup=cg.label, **labels) - before.get(name, cgroup=cg.label, **labels)
        self.assertEqual(d("scry_mem_vm_mapped_bytes_total", kind="anon"), 3 * MIB + 5 * PAGE)
        self.assertEqual(d("scry_mem_vm_mapped_bytes_total", kind="shared"), 2 * MIB + 3 * PAGE)
        self.assertEqual(d("scry_mem_vm_mapped_bytes_total", kind="file"), 16 * PAGE)
        self.assertEqual(d("scry_mem_vm_unmapped_bytes_total"), 1 * MIB + 2 * MIB + 3 * PAGE)
        self.assertEqual(d("scry_mem_heap_grown_bytes_total"), MIB + 7 * PAGE)
        self.assertEqual(d("scry_mem_heap_shrunk_bytes_total"), 3 * PAGE)

    def test_swap_in_reported_as_the_kernel_allows(self):
        # No zram module and no swap on the test machines: the swap-in hook (do_swap_page; no
        # tracepoint exists) needs kprobes or fentry. Where neither attaches the feature must say
        # unavailable and export nothing, never zeros.
        m = self.exporter.scrape()
        check = subprocess.run([self.exporter.binary, "--check"], capture_output=True, text=True, timeout=60)
        rows = [l for l in check.stdout.splitlines() if l.startswith("swap_in ")]
        self.assertEqual(len(rows), 2, check.stdout)
        kprobes = os.path.exists("/sys/bus/event_source/devices/kprobe")
        fentry_refused = all("EPERM" in r for r in rows)
        available = m.get("scry_feature_available", feature="swap_in")
        if not kprobes and fentry_refused:
            self.assertEqual(available, 0)
            self.assertTrue(all(" unavailable " in r for r in rows), rows)
            self.assertFalse(m.has("scry_mem_swapin_duration_seconds_count"))
            self.assertFalse(m.has("scry_mem_node_swapin_duration_seconds_count"))
            self.assertEqual(m.get("scry_bpf_program_attached", hook="swapin_begin"), 0)
        else:
            self.assertEqual(available, 1)
            self.assertTrue(m.has("scry_mem_node_swapin_duration_seconds_count"))

    def test_filter_leaves_other_tasks_unobserved(self):
        other_bin = os.path.join(self.tmp, "memother")
        shutil.copy(self.work, other_bin)
        seen, unseen = self.cgroup("seen"), self.cgroup("unseen")
        with Exporter("mem-sli", "--filter.comm=memwork") as ex:
            a = Workload(self.work, seen, "touch", "500")
            b = Workload(other_bin, unseen, "touch", "500")
            try:
                for _ in range(100):  # the filter maps are refreshed once a second
                    if ex.scrape().get("scry_filter_entries", kind="process", default=0) >= 1:
                        break
                    time.sleep(0.1)
                for w in (a, b):
                    w.step()
                    w.expect("done")
                m = labelled(ex, "scry_mem_page_faults_total", seen.label)
            finally:
                a.finish()
                b.finish()
            self.assertGreaterEqual(m.get("scry_mem_page_faults_total", cgroup=seen.label), 500)
            unseen_series = [(n, ls) for (n, ls) in m.samples if ("cgroup", unseen.label) in ls]
            self.assertEqual(unseen_series, [])
            # The node's own fault counts cover every task: not exported under a filter.
            self.assertFalse(m.has("scry_mem_node_page_faults_total"))
            # The main exporter (no filter) saw both.
            both = labelled(self.exporter, "scry_mem_page_faults_total", unseen.label)
            self.assertGreaterEqual(both.get("scry_mem_page_faults_total", cgroup=unseen.label), 500)

    def test_check_and_self_metrics(self):
        r = subprocess.run([self.exporter.binary, "--check"], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        m = self.exporter.scrape()
        for feature in ("oom_kills", "memcg_reclaim", "direct_reclaim", "compaction", "memcg_faults", "vm_growth"):
            self.assertEqual(m.get("scry_feature_available", feature=feature), 1, feature)
        self.assertRegex(r.stdout, r"(?m)^faults +disabled +page_fault_user")
        self.assertRegex(r.stdout, r"(?m)^memcg_faults +available")
        self.assertGreater(m.get("scry_bpf_program_runs_total", hook="mmap_enter"), 0)
        bad = subprocess.run([self.exporter.binary, "--faults.source=kprobe", "--check"], capture_output=True,
                             text=True, timeout=60)
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn("--faults.source must be memcg or hook", bad.stderr)
        self.assertEqual(m.get("scry_lost_events_total", reason="oom_events_ringbuf_full"), 0)

    def test_fallback_attach_modes_count_alike(self):
        # Classic tracepoints only: the same exact VM growth and at least the faults touched.
        cg = self.cgroup("tpmode")
        with Exporter("mem-sli", "--bpf.attach-modes=tracepoint", "--faults.source=hook") as ex:
            m = ex.scrape()
            self.assertEqual(m.get("scry_bpf_program_attached", hook="page_fault_user", mode="tracepoint"), 1)
            self.assertEqual(m.get("scry_bpf_program_attached", hook="mark_victim", mode="tracepoint"), 1)
            w = Workload(self.work, cg, "vm", self.work)
            try:
                before = labelled(ex, "scry_mem_vm_mapped_bytes_total", cg.label, kind="shared")
                w.step()
                w.expect("done")
                after = ex.scrape()
            finally:
                w.finish()
        d = lambda name, **l: after.get(name, cgroup=cg.label, **l) - before.get(name, cgroup=cg.label, **l)  # noqa: E731
        self.assertEqual(d("scry_mem_vm_mapped_bytes_total", kind="shared"), 2 * MIB + 3 * PAGE)
        self.assertEqual(d("scry_mem_heap_grown_bytes_total"), MIB + 7 * PAGE)


if __name__ == "__main__":
    unittest.main(verbosity=2)
