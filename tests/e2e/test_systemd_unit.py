#!/usr/bin/env python3
"""Runs a real scry exporter inside an offline emulation of the sandbox of its systemd unit (--unit; the
exporter is the unit's ExecStart binary, taken from --bin-dir). Profiles below say what is specific to
each exporter: its options, the files it reads, and the real work it must count in the sandbox.

systemd is not PID 1 on the build machines, so the unit cannot be started for real. This test reads the
unit's [Service] settings and reproduces the ones that decide whether the exporter can work:

  user and capabilities  DynamicUser= (a free uid/gid in systemd's dynamic range), AmbientCapabilities=,
                         CapabilityBoundingSet=, NoNewPrivileges= (util-linux setpriv)
  mount namespace        ProtectSystem=strict (every mount read-only but /dev, /proc, /sys),
                         ProtectHome=yes, PrivateTmp=, PrivateDevices= (a minimal /dev),
                         ProtectKernelTunables= (/sys and /proc/sys... read-only, /proc/kallsyms and
                         /proc/kcore inaccessible), ProtectControlGroups=, ProtectKernelLogs=,
                         ProtectProc=invisible (a proc mount with hidepid=invisible)
  seccomp (libseccomp)   SystemCallFilter= (groups expanded by systemd-analyze syscall-filter, ~ lines
                         removing), SystemCallErrorNumber=, SystemCallArchitectures=native,
                         RestrictAddressFamilies=, MemoryDenyWriteExecute=
  process                UMask=, LimitMEMLOCK=, Type=notify (NOTIFY_SOCKET)

Not emulated: RestrictNamespaces=, RestrictRealtime=, RestrictSUIDSGID=, LockPersonality=,
ProtectClock=, ProtectHostname=, KeyringMode=, RemoveIPC=, DevicePolicy=, MemoryMax=, TasksMax=.

Asserts, inside the emulated sandbox:
  - `<exporter> --check` exits 0 and attaches every hook in the same mode as when run as root without
    a sandbox;
  - the exporter started as the unit starts it sends READY=1, serves /metrics with the same features
    available as as root, counts real work, sends STOPPING=1 on SIGTERM and exits 0. The work:
      scry-block      direct I/O to a file;
      scry-sched-sli  a root process picked by --filter.comm (the exporter reads /proc of another
                      user's process), in a cgroup of its own: its sleeps;
      scry-mem-sli    root processes picked by --filter.comm in cgroups of their own: N pages touched
                      give >= N page faults, known mmap/munmap/brk calls move the VM growth counters
                      by exactly their sizes, a process over its memory limit is one OOM kill,
                      counted and logged with its RSS;
      scry-net        N TCP connections between two network namespaces move opened and closed by
                      exactly N on the client (per peer) and the server side; the listen overflows of
                      the server's namespace are the kernel's own ListenOverflows there;
  - tracefs event ids (needed by the classic-tracepoint attach mode) are readable when the unit grants
    CAP_DAC_READ_SEARCH, and unreadable when it does not;
  - /proc/<pid> files of a root process that the exporter reads (process filters, a namespace's
    net/netstat) are readable when the unit has ProtectProc=default, hidden when it hides processes;
and, as negative controls showing that the emulation really restricts: without CAP_BPF, or with bpf(2)
removed from the syscall allow list, --check fails; without CAP_DAC_READ_SEARCH tracefs is unreadable;
with ProtectProc=invisible those /proc/<pid> files are hidden (why those units keep ProtectProc=default).

Exit: 0 pass, 1 fail, 77 skip (not root, no binary, missing tools); under CI=true a skip is a failure.
"""
import argparse
import ctypes
import json
import os
import pwd
import grp
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2elib  # noqa: E402
from e2elib import Deadline, Skip, failures, free_port, log  # noqa: E402

SKIP = 77
CMD_TIMEOUT = 60
PREFIX = "scry-e2e-unit-"
SANDBOX_READY = "sandbox: set up, exec setpriv"


def check(cond, msg):
    return e2elib.check(cond, msg, log_ok=True)


# --- the unit ------------------------------------------------------------------------------------

def parse_unit(path):
    """[Service] settings: name -> list of values in order (empty assignments reset the list)."""
    settings, section = {}, None
    lines = open(path).read().replace("\\\n", " ").splitlines()
    for line in lines:
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        if section != "Service" or "=" not in line:
            continue
        key, value = (s.strip() for s in line.split("=", 1))
        if value == "":
            settings[key] = []
        else:
            settings.setdefault(key, []).append(value)
    return settings


def yes(settings, key):
    v = settings.get(key, ["no"])[-1].lower()
    return v in ("yes", "true", "on", "1", "strict", "full", "invisible")


def expand_syscalls(names, cache={}):
    """Expands @groups into syscall names with systemd-analyze syscall-filter."""
    out = set()
    for n in names:
        if not n.startswith("@"):
            out.add(n)
            continue
        if n not in cache:
            r = subprocess.run(["systemd-analyze", "syscall-filter", n], capture_output=True, text=True,
                               timeout=CMD_TIMEOUT)
            if r.returncode:
                raise RuntimeError(f"systemd-analyze syscall-filter {n}: {r.stderr}")
            members = []
            for line in r.stdout.splitlines()[1:]:
                line = line.strip()
                if line and not line.startswith("#"):
                    members.append(line.split()[0])
            cache[n] = expand_syscalls(members)
        out |= cache[n]
    return out


def capabilities(values):
    caps = set()
    for v in values:
        for c in v.split():
            caps.add(c.lower().removeprefix("cap_"))
    return caps


def make_plan(settings, binary, args, run_dir, uid, gid):
    # systemd: the first SystemCallFilter= line decides allow list or deny list (~); later lines add to
    # it, or with the opposite sense take away from it.
    allow = None
    for v in settings.get("SystemCallFilter", []):
        invert = v.startswith("~")
        names = expand_syscalls(v.lstrip("~").split())
        if allow is None:
            if invert:
                raise Skip("SystemCallFilter= as a deny list is not emulated")
            allow = set(names)
        elif invert:
            allow -= names
        else:
            allow |= names
    errno_name = settings.get("SystemCallErrorNumber", ["EPERM"])[-1]
    families = []
    for v in settings.get("RestrictAddressFamilies", []):
        families += v.split()
    memlock = settings.get("LimitMEMLOCK", [None])[-1]
    return {
        "binary": binary, "args": args, "run_dir": run_dir, "uid": uid, "gid": gid,
        "ambient": sorted(capabilities(settings.get("AmbientCapabilities", []))),
        "bounding": sorted(capabilities(settings.get("CapabilityBoundingSet", []))),
        "no_new_privs": yes(settings, "NoNewPrivileges"),
        "syscalls": sorted(allow) if allow is not None else None,
        "syscall_errno": errno_name,
        "families": families,
        "mdwe": yes(settings, "MemoryDenyWriteExecute"),
        "protect_system": settings.get("ProtectSystem", ["no"])[-1],
        "protect_home": yes(settings, "ProtectHome"),
        "private_tmp": yes(settings, "PrivateTmp"),
        "private_devices": yes(settings, "PrivateDevices"),
        "protect_kernel_tunables": yes(settings, "ProtectKernelTunables"),
        "protect_control_groups": yes(settings, "ProtectControlGroups"),
        "protect_kernel_logs": yes(settings, "ProtectKernelLogs"),
        "protect_proc": settings.get("ProtectProc", ["default"])[-1],
        "umask": int(settings.get("UMask", ["0022"])[-1], 8),
        "memlock": memlock,
    }


# --- the sandboxed child (runs as root in a new mount namespace, then execs setpriv) ---------------

def sh(*cmd, ok_fail=False):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=CMD_TIMEOUT)
    if r.returncode and not ok_fail:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip()}")
    return r.returncode == 0


def mountpoints():
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4]
            out.append(re.sub(r"\\(\d{3})", lambda m: chr(int(m.group(1), 8)), mp))
    return out


def under(path, roots):
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def sizes(value):
    m = re.fullmatch(r"(\d+)([KMGT]?)", value or "")
    if not m:
        return resource.RLIM_INFINITY
    return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30, "T": 40}[m.group(2)]


def sandbox_child(plan_path):
    plan = json.load(open(plan_path))
    run_dir = plan["run_dir"]
    sh("mount", "--make-rprivate", "/")

    # A file and a directory nobody can use, like /run/systemd/inaccessible/{reg,dir}.
    inacc_file = os.path.join(run_dir, "inaccessible-file")
    inacc_dir = os.path.join(run_dir, "inaccessible-dir")
    open(inacc_file, "w").close()
    os.chmod(inacc_file, 0)
    os.mkdir(inacc_dir, 0)

    if plan["private_devices"]:
        stage = os.path.join(run_dir, "dev")
        os.mkdir(stage)
        sh("mount", "-t", "tmpfs", "-o", "mode=0755,nosuid,noexec", "tmpfs", stage)
        for node in ("null", "zero", "full", "random", "urandom", "tty"):
            if os.path.exists(f"/dev/{node}"):
                open(os.path.join(stage, node), "w").close()
                sh("mount", "--bind", f"/dev/{node}", os.path.join(stage, node))
        os.mkdir(os.path.join(stage, "shm"))
        sh("mount", "-t", "tmpfs", "-o", "mode=1777,nosuid,nodev", "tmpfs", os.path.join(stage, "shm"))
        for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                             ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
            os.symlink(target, os.path.join(stage, name))
        sh("mount", "--move", stage, "/dev")

    if plan["protect_proc"] in ("invisible", "noaccess", "ptraceable"):
        sh("mount", "-t", "proc", "-o", f"hidepid={plan['protect_proc']},nosuid,nodev,noexec", "proc", "/proc")

    api = ["/dev", "/proc", "/sys"]
    if plan["protect_system"] == "strict":
        for mp in mountpoints():
            if not under(mp, api):
                sh("mount", "-o", "remount,bind,ro", mp, ok_fail=(mp != "/"))
    if plan["protect_kernel_tunables"]:
        for p in ("/proc/acpi", "/proc/apm", "/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq",
                  "/proc/latency_stats", "/proc/mtrr", "/proc/scsi", "/proc/sys", "/proc/sysrq-trigger",
                  "/proc/timer_stats"):
            if os.path.exists(p):
                sh("mount", "--bind", p, p)
                sh("mount", "-o", "remount,bind,ro", p)
        for p in ("/proc/kallsyms", "/proc/kcore"):
            if os.path.exists(p):
                sh("mount", "--bind", inacc_file, p)
        for mp in mountpoints():
            if under(mp, ["/sys"]):
                sh("mount", "-o", "remount,bind,ro", mp, ok_fail=True)
    if plan["protect_control_groups"]:
        for mp in mountpoints():
            if under(mp, ["/sys/fs/cgroup"]):
                sh("mount", "-o", "remount,bind,ro", mp, ok_fail=True)
    if plan["protect_kernel_logs"] and os.path.exists("/proc/kmsg"):
        sh("mount", "--bind", inacc_file, "/proc/kmsg")
    if plan["protect_home"]:
        for p in ("/home", "/root", "/run/user"):
            if os.path.isdir(p):
                sh("mount", "--bind", inacc_dir, p)
                sh("mount", "-o", "remount,bind,ro", p)
    if plan["private_tmp"]:
        for p in ("/tmp", "/var/tmp"):
            if os.path.isdir(p):
                sh("mount", "-t", "tmpfs", "-o", "mode=1777,nosuid,nodev", "tmpfs", p)

    os.umask(plan["umask"])
    if plan["memlock"]:
        v = sizes(plan["memlock"])
        _, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
        if hard != resource.RLIM_INFINITY and (v == resource.RLIM_INFINITY or v > hard):
            # Raising needs CAP_SYS_RESOURCE, which this machine's root may lack; systemd (PID 1) has it.
            print(f"sandbox: LimitMEMLOCK={plan['memlock']} above the hard limit {hard}: using {hard}",
                  file=sys.stderr, flush=True)
            v = hard
        resource.setrlimit(resource.RLIMIT_MEMLOCK, (v, v))

    cmd = ["setpriv", f"--reuid={plan['uid']}", f"--regid={plan['gid']}", "--clear-groups",
           "--inh-caps=" + ",".join(["-all"] + ["+" + c for c in plan["ambient"]]),
           "--ambient-caps=" + ",".join(["-all"] + ["+" + c for c in plan["ambient"]]),
           "--bounding-set=" + ",".join(["-all"] + ["+" + c for c in plan["bounding"]])]
    if plan["no_new_privs"]:
        cmd.append("--no-new-privs")
    cmd += ["--", plan["binary"], *plan["args"]]

    install_seccomp(plan)  # last: setpriv and the exporter both run under it, as under systemd
    print(SANDBOX_READY, flush=True)
    os.execvp(cmd[0], cmd)


# libseccomp through ctypes
SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_CMP_EQ = 4
SCMP_CMP_MASKED_EQ = 7
FAMILIES = {"AF_UNIX": 1, "AF_LOCAL": 1, "AF_INET": 2, "AF_INET6": 10, "AF_NETLINK": 16, "AF_PACKET": 17}


class ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


def scmp_errno(e):
    return 0x00050000 | (e & 0xFFFF)


def install_seccomp(plan):
    lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                           ctypes.POINTER(ArgCmp)]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    import errno as errno_mod

    def rule(ctx, action, name, *cmps):
        nr = lib.seccomp_syscall_resolve_name(name.encode())
        if nr < 0:
            return  # not a syscall on this architecture
        arr = (ArgCmp * max(len(cmps), 1))(*[ArgCmp(*c) for c in cmps])
        rc = lib.seccomp_rule_add_array(ctx, action, nr, len(cmps), arr)
        if rc < 0:
            raise RuntimeError(f"seccomp_rule_add({name}): {rc}")

    def load(ctx):
        rc = lib.seccomp_load(ctx)
        lib.seccomp_release(ctx)
        if rc < 0:
            raise RuntimeError(f"seccomp_load: {rc}")

    if plan["families"]:
        allowed = {FAMILIES[f] for f in plan["families"]}
        ctx = lib.seccomp_init(SCMP_ACT_ALLOW)
        for fam in range(0, 46):
            if fam not in allowed:
                rule(ctx, scmp_errno(errno_mod.EAFNOSUPPORT), "socket", (0, SCMP_CMP_EQ, fam, 0))
        load(ctx)
    if plan["mdwe"]:
        prot_exec, prot_write = 0x4, 0x2
        ctx = lib.seccomp_init(SCMP_ACT_ALLOW)
        both = prot_exec | prot_write
        rule(ctx, scmp_errno(errno_mod.EPERM), "mmap", (2, SCMP_CMP_MASKED_EQ, both, both))
        rule(ctx, scmp_errno(errno_mod.EPERM), "mprotect", (2, SCMP_CMP_MASKED_EQ, prot_exec, prot_exec))
        rule(ctx, scmp_errno(errno_mod.EPERM), "pkey_mprotect", (2, SCMP_CMP_MASKED_EQ, prot_exec, prot_exec))
        load(ctx)

    # The allow list last, as systemd does: it may not allow seccomp(2) itself.
    if plan["syscalls"] is not None:
        ctx = lib.seccomp_init(scmp_errno(getattr(errno_mod, plan["syscall_errno"])))
        for name in plan["syscalls"]:
            rule(ctx, SCMP_ACT_ALLOW, name)
        load(ctx)


# --- the test ------------------------------------------------------------------------------------

def free_dynamic_id():
    """A uid/gid in systemd's DynamicUser range (61184-65519) that no user or group has."""
    used_u = {p.pw_uid for p in pwd.getpwall()}
    used_g = {g.gr_gid for g in grp.getgrall()}
    for i in range(61184 + os.getpid() % 1000, 65520):
        if i not in used_u and i not in used_g:
            return i
    raise RuntimeError("no free uid in 61184..65519")


def die_with_parent():
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG (cleared again by setpriv's uid change)


class Sandbox:
    """Starts commands in the emulated sandbox."""

    def __init__(self, tmp, settings, uid):
        self.tmp, self.settings, self.uid = tmp, settings, uid
        self.procs = []
        self.n = 0

    def start(self, binary, args, log_path, notify=None, tweak=None):
        self.n += 1
        run_dir = os.path.join(self.tmp, f"run{self.n}")
        os.mkdir(run_dir)
        plan = make_plan(self.settings, binary, args, run_dir, self.uid, self.uid)
        if tweak:
            tweak(plan)
        plan_path = os.path.join(run_dir, "plan.json")
        json.dump(plan, open(plan_path, "w"))
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
        if notify:
            env["NOTIFY_SOCKET"] = notify
        cmd = ["unshare", "--mount", "--propagation", "private", "--", sys.executable, os.path.abspath(__file__),
               "--sandbox-child", plan_path]
        p = subprocess.Popen(cmd, stdout=open(log_path, "w"), stderr=subprocess.STDOUT, env=env,
                             preexec_fn=die_with_parent)
        self.procs.append(p)
        return p

    def run(self, binary, args, log_path, timeout=CMD_TIMEOUT, tweak=None):
        p = self.start(binary, args, log_path, tweak=tweak)
        try:
            rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            rc = p.wait(10)
        return rc, open(log_path).read()

    def stop_all(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)


def check_table(out):
    """FEATURE STATE HOOK MODE PROGRAM rows of --check output."""
    rows = []
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 5 and f[1] in ("available", "unavailable", "disabled"):
            rows.append(tuple(f[:5]))
    return sorted(rows)


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        return r.read().decode()


def metric_values(text, name):
    out = {}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def total(text, name, **labels):
    """The sum of the samples of a metric whose labels include the given ones (0 when none has)."""
    out = 0.0
    for key, value in metric_values(text, name).items():
        have = dict(LABEL.findall(key[len(name):]))
        if all(have.get(k) == v for k, v in labels.items()):
            out += value
    return out


def poll(port, done, timeout=20):
    """Scrapes until done(text) holds or the timeout passes; returns the last scrape."""
    end = time.monotonic() + timeout
    while True:
        text = scrape(port)
        if done(text) or time.monotonic() > end:
            return text
        time.sleep(0.2)


def cgroup_mkdir(path, made):
    os.mkdir(path)
    made.append(path)


def cgroup_rmdir(paths):
    """Children first; a cgroup goes only once its last task is gone, which lags behind wait() a little."""
    for path in reversed(paths):
        for _ in range(100):
            try:
                os.rmdir(path)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.05)


class Driven:
    """A root workload process in cgroups (directories whose cgroup.procs it joins before exec), driven
    line by line over pipes: it says a word, waits for a line, and so on."""

    def __init__(self, argv, cgroups, expect="ready"):
        def enter():
            die_with_parent()
            for d in cgroups:
                with open(os.path.join(d, "cgroup.procs"), "w") as f:
                    f.write(str(os.getpid()))
        self.proc = subprocess.Popen(argv, preexec_fn=enter, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        if expect:
            self.expect(expect)

    def expect(self, word):
        line = self.proc.stdout.readline().strip()
        if line != word:
            raise RuntimeError(f"{self.proc.args}: said {line!r}, expected {word!r}")

    def step(self):
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass

# --- what is specific to each exporter -------------------------------------------------------------

class Work:
    """What a profile gives: serve_opts (flags besides the listen address), extra_features (features
    --check does not report because they need those flags), tracepoint_id (a tracefs id its classic
    tracepoints read), readable (files the exporter reads, world-readable), prepare() before the
    exporter runs, verify() while it serves, extra_controls(), cleanup()."""
    serve_opts = []
    extra_features = {}
    serve_log = None  # the exporter's log in the sandbox, set before verify()

    def prepare(self, tmp):
        pass

    def proc_reads(self):
        """A root process the profile started and the files below its /proc/<pid> that the exporter
        reads (process filters, per-namespace procfs). Default: this test's own process."""
        return os.getpid(), ["comm"]

    def extra_controls(self, sandbox, tmp):
        pass

    def cleanup(self):
        pass


class BlockWork(Work):
    """scry-block: direct writes to a file on a real disk, outside the sandbox."""
    serve_opts = ["--collector.cgroup"]
    extra_features = {"cgroup": 1.0}  # --check runs without --collector.cgroup
    tracepoint_id = "/sys/kernel/tracing/events/block/block_rq_complete/id"
    readable = ["/proc/diskstats", "/sys/kernel/btf/vmlinux", "/sys/dev/block", "/sys/fs/cgroup"]

    def verify(self, port, first):
        before = sum(metric_values(first, "scry_block_requests_total").values())
        with tempfile.NamedTemporaryFile(dir="/var/tmp", prefix=PREFIX) as f:
            subprocess.run(["dd", "if=/dev/zero", f"of={f.name}", "bs=64k", "count=64", "oflag=direct",
                            "status=none"], timeout=CMD_TIMEOUT, check=True)
        time.sleep(0.5)
        second = scrape(port)
        after = sum(metric_values(second, "scry_block_requests_total").values())
        check(after >= before + 64, f"sandbox: scry_block_requests_total grew by {after - before:g} (>= 64 direct writes)")
        cg = metric_values(second, "scry_block_cgroup_io_duration_seconds_count")
        check(bool(cg), f"sandbox: per-cgroup series resolved to paths ({sorted(cg)[:3]})")
        return second


class SchedWork(Work):
    """scry-sched-sli: a root process that sleeps in a loop, in a cgroup of its own, picked by
    --filter.comm: the exporter (another user) must read its /proc/<pid>/comm and cgroup."""
    COMM = "scryunitwork"
    serve_opts = [f"--filter.comm={COMM}"]
    extra_features = {}
    tracepoint_id = "/sys/kernel/tracing/events/sched/sched_switch/id"
    readable = ["/sys/kernel/btf/vmlinux", "/sys/fs/cgroup", "/proc/1/comm", "/proc/1/cgroup"]

    def __init__(self):
        self.proc = None
        self.cgroup_dir = None
        self.label = None

    def prepare(self, tmp):
        root = e2elib.cgroup2_root()
        if not root:
            raise Skip("no cgroup v2 hierarchy mounted")
        self.cgroup_dir = os.path.join(root, os.path.basename(tmp))
        os.mkdir(self.cgroup_dir)
        self.label = "/" + os.path.basename(tmp)
        procs = os.path.join(self.cgroup_dir, "cgroup.procs")

        def enter():
            die_with_parent()
            with open(procs, "w") as f:
                f.write("0")
        code = (f"open('/proc/self/comm', 'w').write({self.COMM!r})\n"
                "import time\nwhile True: time.sleep(0.01)")
        self.proc = subprocess.Popen([sys.executable, "-c", code], preexec_fn=enter)

    def verify(self, port, first):
        sel = f'cgroup="{self.label}"'
        state = {}

        def seen():
            text = scrape(port)
            state["text"] = text
            entries = metric_values(text, "scry_filter_entries")
            n = sum(v for k, v in metric_values(text, "scry_sched_runqueue_latency_seconds_count").items() if sel in k)
            return text if entries.get('scry_filter_entries{kind="process"}', 0) >= 1 and n > 0 else None
        try:
            text = e2elib.wait_for("the filtered process counted", seen, 20)
        except RuntimeError:
            text = state.get("text", "")
        entries = metric_values(text, "scry_filter_entries")
        check(entries.get('scry_filter_entries{kind="process"}', 0) >= 1,
              f"sandbox: --filter.comm found the root process {self.proc.pid} through /proc ({entries})")
        counts = {k: v for k, v in metric_values(text, "scry_sched_offcpu_seconds_count").items() if sel in k}
        sleeps = sum(v for k, v in counts.items() if 'reason="sleep"' in k)
        check(sleeps > 0, f"sandbox: sleeps of the filtered process counted in its cgroup {self.label} ({counts})")
        return text

    def proc_reads(self):
        # --filter.comm reads comm, the workload labels come from cgroup
        return self.proc.pid, ["comm", "cgroup"]

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self.cgroup_dir:
            for _ in range(100):
                try:
                    os.rmdir(self.cgroup_dir)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)


def v1_memory_root():
    """The v1 memory controller's mount point on hybrid hosts, else None."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, post = line.split(" - ", 1)
            fields = post.split()
            if fields[0] == "cgroup" and "memory" in fields[2].split(","):
                return pre.split()[4]
    return None


class MemWork(Work):
    """scry-mem-sli: root processes of the integration tests' C workload (mem_sli_workload.c), picked by
    --filter.comm (the exporter reads their /proc/<pid>/comm as another user), each group in a cgroup
    of its own: one touches PAGES pages (page faults), one makes known mmap/munmap/brk calls (VM
    growth, exact sizes), one runs out of a memory limit (one OOM kill, counted and logged)."""
    COMM = "scryunitmem"
    PAGES = 2048
    LIMIT = 32 << 20
    serve_opts = [f"--filter.comm={COMM}"]
    tracepoint_id = "/sys/kernel/tracing/events/syscalls/sys_enter_mmap/id"
    readable = ["/sys/kernel/btf/vmlinux", "/sys/fs/cgroup"]

    def __init__(self):
        self.made = []      # cgroup directories, parents first
        self.procs = []     # Driven
        self.binary = None

    def prepare(self, tmp):
        if not shutil.which("cc"):
            raise Skip("no C compiler (cc) for the memory workload")
        src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration", "mem_sli_workload.c")
        self.binary = os.path.join(tmp, self.COMM)  # its name is the comm the filter matches
        e2elib.run(["cc", "-O1", "-o", self.binary, src])
        root = e2elib.cgroup2_root()
        if not root:
            raise Skip("no cgroup v2 hierarchy mounted")
        name = os.path.basename(tmp)
        self.work_cg = os.path.join(root, name + "-work")
        self.oom_cg = os.path.join(root, name + "-oom")
        cgroup_mkdir(self.work_cg, self.made)
        cgroup_mkdir(self.oom_cg, self.made)
        self.work_label, self.oom_label = "/" + name + "-work", "/" + name + "-oom"
        # The limit: the v1 memory controller on hybrid hosts (identity stays the v2 path), memory.max
        # on pure v2. No swap either way, so that running out of the limit is an OOM kill. The work
        # cgroup has a memory cgroup of its own too: its faults come from there.
        self.oom_dirs = [self.oom_cg]
        self.work_dirs = [self.work_cg]
        v1 = v1_memory_root()
        if v1:
            d = os.path.join(v1, name + "-work")
            cgroup_mkdir(d, self.made)
            self.work_dirs.append(d)
            d = os.path.join(v1, name + "-oom")
            cgroup_mkdir(d, self.made)
            open(os.path.join(d, "memory.limit_in_bytes"), "w").write(str(self.LIMIT))
            open(os.path.join(d, "memory.swappiness"), "w").write("0")
            self.oom_dirs.append(d)
        else:
            with open(os.path.join(root, "cgroup.subtree_control"), "w") as f:
                f.write("+memory")
            open(os.path.join(self.oom_cg, "memory.max"), "w").write(str(self.LIMIT))
            open(os.path.join(self.oom_cg, "memory.swap.max"), "w").write("0")
        # Started before the exporter: a root process the sandbox must show (proc_reads).
        self.touch = self.start(["touch", str(self.PAGES)], self.work_dirs)

    def start(self, args, cgroups):
        d = Driven([self.binary, *args], cgroups)
        self.procs.append(d)
        return d

    def proc_reads(self):
        # --filter.comm reads comm (--filter.cmdline cmdline), the workload labels come from cgroup
        return self.touch.proc.pid, ["comm", "cmdline", "cgroup"]

    def wait_filter(self, port, n):
        """The filter is refreshed from /proc once a second: waits until it holds n processes."""
        key = 'scry_filter_entries{kind="process"}'
        text = poll(port, lambda t: metric_values(t, "scry_filter_entries").get(key, 0) >= n)
        got = metric_values(text, "scry_filter_entries").get(key, 0)
        check(got >= n, f"sandbox: --filter.comm found {got:g} of the {n} root workload processes through /proc")

    def verify(self, port, first):
        page = os.sysconf("SC_PAGE_SIZE")
        mib = 1 << 20

        # Page faults: one per page touched (the workload asks for no huge pages).
        self.wait_filter(port, 1)
        before = scrape(port)
        self.touch.step()
        self.touch.expect("done")

        def faults(t):
            return total(t, "scry_mem_page_faults_total", cgroup=self.work_label) - \
                total(before, "scry_mem_page_faults_total", cgroup=self.work_label)
        text = poll(port, lambda t: faults(t) >= self.PAGES)
        check(faults(text) >= self.PAGES, f"sandbox: scry_mem_page_faults_total of {self.work_label} grew by "
              f"{faults(text):g} (>= {self.PAGES} pages touched)")

        # VM growth: exact sizes of the workload's mmap/munmap/brk calls (syscall tracepoints, which
        # attach through tracefs ids and perf_event_open).
        vm = self.start(["vm", self.binary], self.work_dirs)
        self.wait_filter(port, 2)
        before = scrape(port)
        vm.step()
        vm.expect("done")
        want = {("scry_mem_vm_mapped_bytes_total", "anon"): 3 * mib + 5 * page,
                ("scry_mem_vm_mapped_bytes_total", "shared"): 2 * mib + 3 * page,
                ("scry_mem_vm_mapped_bytes_total", "file"): 16 * page,
                ("scry_mem_vm_unmapped_bytes_total", None): 3 * mib + 3 * page,
                ("scry_mem_heap_grown_bytes_total", None): mib + 7 * page,
                ("scry_mem_heap_shrunk_bytes_total", None): 3 * page}

        def growth(t):
            out = {}
            for name, kind in want:
                labels = {"cgroup": self.work_label, **({"kind": kind} if kind else {})}
                out[(name, kind)] = total(t, name, **labels) - total(before, name, **labels)
            return out
        text = poll(port, lambda t: growth(t) == want)
        got = growth(text)
        check(got == want, f"sandbox: VM growth of {self.work_label} moved by exactly the sizes mapped"
              + ("" if got == want else f": got {got}, want {want}"))

        # One OOM kill: twice the limit touched in the limited cgroup.
        hog = self.start(["touch", str(2 * self.LIMIT // page)], self.oom_dirs)
        self.wait_filter(port, 3)
        hog.step()
        try:
            rc = hog.proc.wait(60)
        except subprocess.TimeoutExpired:
            rc = None
        check(rc == -signal.SIGKILL, f"workload: the process over its {self.LIMIT >> 20} MiB limit was "
              f"OOM-killed (rc {rc})")

        def kills(t, scope):
            return total(t, "scry_mem_oom_kills_total", cgroup=self.oom_label, scope=scope)
        text = poll(port, lambda t: kills(t, "memcg") >= 1)
        check(kills(text, "memcg") == 1 and kills(text, "global") == 0,
              f"sandbox: scry_mem_oom_kills_total of {self.oom_label}: memcg {kills(text, 'memcg'):g} (want 1), "
              f"global {kills(text, 'global'):g} (want 0)")
        # The log line comes from the ring buffer; its RSS from the victim's mm (CO-RE on mm_struct).
        lines = []
        end = time.monotonic() + 10
        while time.monotonic() < end and not lines:
            time.sleep(0.2)
            lines = [l.strip() for l in open(self.serve_log) if 'msg="oom kill"' in l and f"pid={hog.proc.pid} " in l]
        fields = dict(re.findall(r'(\w+)=(\S+)', lines[0])) if len(lines) == 1 else {}
        check(fields.get("comm") == self.COMM and fields.get("cgroup") == self.oom_label
              and int(fields.get("anon_rss_bytes", 0)) > 0,
              f"sandbox: the OOM kill logged once, with the victim, its cgroup and its RSS ({lines})")
        return text

    def cleanup(self):
        for d in self.procs:
            d.stop()
        cgroup_rmdir(self.made)


class NetWork(Work):
    """scry-net: root processes of the integration tests' TCP workload (net_workload.py) in two network
    namespaces joined by a veth pair, server and client each in a cgroup of its own: N connections to
    an accepting server, counted for the client (per peer) and the server; then connects to a server
    that never accepts, whose listen overflows the exporter reads from /proc/<pid>/net/netstat of that
    namespace. As another user it cannot read other users' /proc/<pid>/ns/net, so it finds that
    namespace only through the listener it saw being opened (the server starts after the exporter)."""
    N = 20
    SERVER_IP, CLIENT_IP = "10.79.0.1", "10.79.0.2"
    ACCEPT_PORT, NEVER_PORT = 7201, 7202
    tracepoint_id = "/sys/kernel/tracing/events/sock/inet_sock_set_state/id"
    readable = ["/sys/kernel/btf/vmlinux", "/sys/fs/cgroup", "/proc/net/netstat"]

    def __init__(self):
        tag = f"su{os.getpid()}"  # unique per run: other test runs may use the machine at the same time
        self.server_ns, self.client_ns = tag + "s", tag + "c"
        self.veth = (tag + "a", tag + "b")
        self.netns_made = []
        self.made = []
        self.procs = []

    def workload(self, ns, cgroup, *args):
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration", "net_workload.py")
        return [sys.executable, script, ns, cgroup, *map(str, args)]

    def prepare(self, tmp):
        if not shutil.which("ip"):
            raise Skip("ip (iproute2) not installed")
        root = e2elib.cgroup2_root()
        if not root:
            raise Skip("no cgroup v2 hierarchy mounted")
        name = os.path.basename(tmp)
        self.server_cg, self.client_cg = os.path.join(root, name + "-server"), os.path.join(root, name + "-client")
        self.server_label, self.client_label = "/" + name + "-server", "/" + name + "-client"
        cgroup_mkdir(self.server_cg, self.made)
        cgroup_mkdir(self.client_cg, self.made)
        for ns in (self.server_ns, self.client_ns):
            e2elib.run(["ip", "netns", "add", ns])
            self.netns_made.append(ns)
        e2elib.run(["ip", "link", "add", self.veth[0], "netns", self.server_ns, "type", "veth", "peer", "name",
                    self.veth[1], "netns", self.client_ns])
        for ns, dev, ip in ((self.server_ns, self.veth[0], self.SERVER_IP), (self.client_ns, self.veth[1], self.CLIENT_IP)):
            e2elib.run(["ip", "netns", "exec", ns, "ip", "addr", "add", ip + "/24", "dev", dev])
            e2elib.run(["ip", "netns", "exec", ns, "ip", "link", "set", dev, "up"])
            e2elib.run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"])
        # Started before the exporter: a root process in the server's namespace (proc_reads).
        self.accepting = self.server(self.ACCEPT_PORT, "accept", 64)

    def server(self, port, mode, backlog):
        d = Driven(self.workload(self.server_ns, self.server_cg, "serve", port, mode, backlog), [])
        self.procs.append(d)
        return d

    def client(self, *args):
        r = e2elib.run(self.workload(self.client_ns, self.client_cg, *args), timeout=CMD_TIMEOUT)
        return json.loads(r.stdout.strip().splitlines()[-1])

    def proc_reads(self):
        # listen overflows: /proc/<pid>/net/netstat of a process in the namespace; --filter.* reads
        # comm, cmdline and cgroup
        return self.accepting.proc.pid, ["net/netstat", "cmdline", "cgroup"]

    def listen_overflows(self):
        """TcpExt ListenOverflows of the server's namespace, as the kernel counts it."""
        lines = e2elib.run(["ip", "netns", "exec", self.server_ns, "cat", "/proc/net/netstat"]).stdout.splitlines()
        for names, values in zip(lines, lines[1:]):
            n, v = names.split(), values.split()
            if n[0] == "TcpExt:" and v[0] == "TcpExt:":
                return int(v[n.index("ListenOverflows")])
        raise RuntimeError("no TcpExt ListenOverflows in the server namespace's /proc/net/netstat")

    def verify(self, port, first):
        # After the exporter's start, so that it sees the listen(): how it finds this namespace.
        self.server(self.NEVER_PORT, "never", 1)

        before = scrape(port)
        out = self.client("connect", self.SERVER_IP, self.ACCEPT_PORT, self.N)
        check(out == {"ok": self.N}, f"workload: {self.N} connections to {self.SERVER_IP}:{self.ACCEPT_PORT} ({out})")
        sides = {"client": dict(cgroup=self.client_label, direction="client", peer=self.SERVER_IP,
                                port=str(self.ACCEPT_PORT)),
                 "server": dict(cgroup=self.server_label, direction="server", peer="", port=str(self.ACCEPT_PORT))}

        def moved(t, name, side):
            return total(t, name, **sides[side]) - total(before, name, **sides[side])
        text = poll(port, lambda t: all(moved(t, "scry_net_connections_closed_total", s) >= self.N for s in sides))
        for side in sides:
            opened = moved(text, "scry_net_connections_opened_total", side)
            closed = moved(text, "scry_net_connections_closed_total", side)
            check(opened == self.N and closed == self.N,
                  f"sandbox: {side} side {sides[side]}: scry_net_connections_opened_total moved by {opened:g}, "
                  f"closed by {closed:g} (want exactly {self.N})")

        # A full accept queue: the exporter's counter is the namespace's own.
        self.client("synflood", self.SERVER_IP, self.NEVER_PORT, 8)
        netns = str(os.stat(os.path.join("/run/netns", self.server_ns)).st_ino)
        state = {}

        def same(t):
            state["kernel"] = self.listen_overflows()
            return total(t, "scry_net_listen_overflows_total", netns=netns) == state["kernel"] > 0
        text = poll(port, same)
        got = metric_values(text, "scry_net_listen_overflows_total")
        check(same(text), f"sandbox: scry_net_listen_overflows_total of the server's namespace {netns} is its "
              f"ListenOverflows ({state.get('kernel')}) > 0: {got}")
        return text

    def cleanup(self):
        for d in self.procs:
            d.stop()
        for ns in self.netns_made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=CMD_TIMEOUT)
        cgroup_rmdir(self.made)


PROFILES = {"scry-block": BlockWork, "scry-sched-sli": SchedWork, "scry-mem-sli": MemWork, "scry-net": NetWork}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir")
    ap.add_argument("--source-dir", default=os.path.normpath(os.path.join(here, "..", "..")))
    ap.add_argument("--unit", default="systemd/scry-block.service")
    ap.add_argument("--deadline", type=int, default=240)
    ap.add_argument("--sandbox-child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.sandbox_child:
        sandbox_child(args.sandbox_child)
        return 1  # not reached: sandbox_child execs

    ci = os.environ.get("CI") == "true"
    def on_signal(signum, _):
        raise Deadline(f"deadline of {args.deadline}s reached" if signum == signal.SIGALRM else f"signal {signum}")

    signal.signal(signal.SIGALRM, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.alarm(args.deadline)

    tmp = None
    sandbox = None
    notify = None
    work = None
    try:
        unit = os.path.join(os.path.abspath(args.source_dir), args.unit)
        settings = parse_unit(unit)
        exec_start = settings["ExecStart"][-1].split()
        exporter = os.path.basename(exec_start[0])
        if exporter not in PROFILES:
            raise RuntimeError(f"{args.unit}: no profile for {exporter} in this test")
        work = PROFILES[exporter]()
        if os.geteuid() != 0:
            raise Skip("needs root (mount namespaces, BPF)")
        if not args.bin_dir:
            raise Skip("no --bin-dir")
        built = os.path.join(os.path.abspath(args.bin_dir), exporter)
        if not os.access(built, os.X_OK):
            raise Skip(f"{built} not built")
        for tool in ("systemd-analyze", "unshare", "setpriv", "mount"):
            if not shutil.which(tool):
                raise Skip(f"{tool} not installed")
        try:
            ctypes.CDLL("libseccomp.so.2")
        except OSError:
            raise Skip("libseccomp.so.2 not installed")

        check(settings.get("Type", [""])[-1] == "notify", f"{args.unit}: Type=notify")

        # /run, not /tmp: PrivateTmp= hides /tmp inside the sandbox. World-traversable, so that the
        # dynamic user can execute the binary and reach the notify socket.
        for stale in os.listdir("/run"):
            if stale.startswith(PREFIX):
                shutil.rmtree(os.path.join("/run", stale), ignore_errors=True)
        tmp = tempfile.mkdtemp(prefix=PREFIX, dir="/run")
        os.chmod(tmp, 0o755)
        binary = os.path.join(tmp, exporter)
        shutil.copy2(built, binary)
        os.chmod(binary, 0o755)
        uid = free_dynamic_id()
        sandbox = Sandbox(tmp, settings, uid)
        work.prepare(tmp)
        log(f"unit {args.unit}: ExecStart={' '.join(exec_start)} -> {binary}; dynamic uid/gid {uid}")

        # Reference: --check as root, no sandbox.
        r = subprocess.run([built, "--check"], capture_output=True, text=True, timeout=CMD_TIMEOUT)
        reference = check_table(r.stdout)
        check(r.returncode == 0 and reference, f"reference: {exporter} --check as root exits 0 (rc {r.returncode})")

        # 1. --check in the sandbox: same attach modes.
        rc, out = sandbox.run(binary, ["--check"], os.path.join(tmp, "check.log"))
        table = check_table(out)
        check(rc == 0, f"sandbox: {exporter} --check exits 0 (rc {rc})")
        check(table == reference, "sandbox: --check attaches every hook in the same mode as root"
              + ("" if table == reference else f"\n  root:    {reference}\n  sandbox: {table}\n{out}"))
        for row in table:
            log(f"       {'  '.join(f'{c:<20}' for c in row)}")

        # 2. tracefs ids readable (classic tracepoint attach), and not without CAP_DAC_READ_SEARCH; a unit
        # without it (an exporter whose hooks never need tracefs) keeps tracefs unreadable.
        tp_id = work.tracepoint_id
        granted = "dac_read_search" in capabilities(settings.get("AmbientCapabilities", []))
        if os.path.exists(tp_id) and not granted:
            rc, out = sandbox.run("/bin/cat", [tp_id], os.path.join(tmp, "tracefs.log"))
            check(rc != 0 and SANDBOX_READY in out and "Permission denied" in out,
                  f"sandbox: without CAP_DAC_READ_SEARCH in the unit {tp_id} is unreadable ({out.strip()[-80:]!r})")
        elif os.path.exists(tp_id):
            rc, out = sandbox.run("/bin/cat", [tp_id], os.path.join(tmp, "tracefs.log"))
            last = out.strip().splitlines()[-1] if out.strip() else ""
            check(rc == 0 and last.isdigit(), f"sandbox: {tp_id} readable ({last!r})")

            def no_dac(plan):
                plan["ambient"] = [c for c in plan["ambient"] if c != "dac_read_search"]
                plan["bounding"] = [c for c in plan["bounding"] if c != "dac_read_search"]
            rc, out = sandbox.run("/bin/cat", [tp_id], os.path.join(tmp, "tracefs-nodac.log"), tweak=no_dac)
            check(rc != 0 and SANDBOX_READY in out and "Permission denied" in out,
                  f"negative control: without CAP_DAC_READ_SEARCH {tp_id} is unreadable ({out.strip()!r})")
        elif ci:
            check(False, f"{tp_id} does not exist (tracefs not mounted?)")

        # 3. what the exporter reads is readable; what the unit hides is hidden.
        probe = " ; ".join([
            f"for f in {' '.join(work.readable)}; do"
            " test -r $f && echo readable $f || echo UNREADABLE $f; done",
            # "Inaccessible" nodes are mode 0000 and empty: CAP_DAC_READ_SEARCH may open them, but
            # there is nothing in them.
            "test \"$(head -c1 /proc/kallsyms 2>/dev/null | wc -c)\" = 0 && echo hidden kallsyms || echo VISIBLE kallsyms",
            "test -z \"$(ls -A /root 2>/dev/null)\" && echo hidden /root || echo VISIBLE /root",
            "touch /var/lib/scry-e2e-probe 2>/dev/null && echo WRITABLE /var/lib || echo read-only /var/lib",
            "test -z \"$(ls -A /tmp)\" && echo private /tmp || echo SHARED /tmp",
            "test -e /dev/vda -o -e /dev/sda -o -e /dev/loop0 && echo VISIBLE block devices || echo private /dev",
        ])
        rc, out = sandbox.run("/bin/sh", ["-c", probe], os.path.join(tmp, "probe.log"))
        lines = [l for l in out.splitlines() if not l.startswith("sandbox:")]
        bad = [l for l in lines if l.split()[0].isupper()]
        want = len(work.readable) + 5
        check(rc == 0 and len(lines) == want and not bad, f"sandbox: exporter inputs readable ({', '.join(work.readable)}); "
              "/proc/kallsyms, /root, block devices hidden; /var/lib read-only; /tmp private"
              + (f": {lines}" if bad or len(lines) != want else ""))

        # 3b. /proc/<pid> of a root process: what the exporter reads there (process filters, a network
        # namespace's procfs) is readable with the unit's ProtectProc=default, and hidden with
        # ProtectProc=invisible (the negative control); a unit with ProtectProc=invisible hides it.
        pid, files = work.proc_reads()
        paths = [f"/proc/{pid}/{f}" for f in files]
        proc_probe = ('for f in "$@"; do if [ ! -e "$f" ]; then echo absent "$f"; '
                      'elif [ "$(head -c 64 "$f" 2>/dev/null | wc -c)" -gt 0 ]; then echo readable "$f"; '
                      'else echo UNREADABLE "$f"; fi; done')

        def proc_view(name, tweak=None):
            rc, out = sandbox.run("/bin/sh", ["-c", proc_probe, "sh", *paths], os.path.join(tmp, name), tweak=tweak)
            return rc, [l.split()[0] for l in out.splitlines() if not l.startswith("sandbox:")]
        protect_proc = settings.get("ProtectProc", ["default"])[-1]
        rc, seen = proc_view("proc-unit.log")
        if protect_proc == "default":
            check(rc == 0 and seen == ["readable"] * len(paths),
                  f"sandbox: {', '.join(paths)} of a root process readable ({seen})")

            def invisible(plan):
                plan["protect_proc"] = "invisible"
            rc, seen = proc_view("proc-invisible.log", tweak=invisible)
            check(rc == 0 and seen == ["absent"] * len(paths),
                  f"negative control: with ProtectProc=invisible {', '.join(paths)} hidden ({seen})")
        else:
            check(rc == 0 and seen == ["absent"] * len(paths),
                  f"sandbox: with ProtectProc={protect_proc} {', '.join(paths)} of a root process hidden ({seen})")
        work.extra_controls(sandbox, tmp)

        # 4. negative controls: the emulation restricts for real.
        def no_bpf_cap(plan):
            plan["ambient"] = [c for c in plan["ambient"] if c != "bpf"]
            plan["bounding"] = [c for c in plan["bounding"] if c != "bpf"]

        def no_bpf_syscall(plan):
            plan["syscalls"] = [s for s in plan["syscalls"] if s != "bpf"]
        for name, tweak in (("without CAP_BPF", no_bpf_cap), ("without bpf(2) in SystemCallFilter", no_bpf_syscall)):
            rc, out = sandbox.run(binary, ["--check"], os.path.join(tmp, f"neg{sandbox.n}.log"), tweak=tweak)
            check(rc != 0 and SANDBOX_READY in out and "FEATURE" not in out,
                  f"negative control: --check {name} fails (rc {rc}): {out.splitlines()[-1] if out else ''}")

        # 5. the exporter as the unit runs it: Type=notify, metrics, real work, orderly stop.
        port = free_port()
        notify_path = os.path.join(tmp, "notify.sock")
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(notify_path)
        os.chmod(notify_path, 0o777)
        notify.settimeout(1)
        opts = [f"--web.listen-address=127.0.0.1:{port}"] + work.serve_opts
        opts_var = exporter.upper().replace("-", "_") + "_OPTS"
        check(f"${opts_var}" in exec_start[1:] or f"${{{opts_var}}}" in exec_start[1:],
              f"{args.unit}: ExecStart passes ${opts_var}")
        argv = []
        for a in exec_start[1:]:
            argv += opts if a in (f"${opts_var}", f"${{{opts_var}}}") else [a]
        log_path = os.path.join(tmp, "serve.log")
        p = sandbox.start(binary, argv, log_path, notify=notify_path)
        msgs = []
        end = time.monotonic() + 60
        while time.monotonic() < end and not any("READY=1" in m.split("\n") for m in msgs):
            if p.poll() is not None:
                break
            try:
                msgs.append(notify.recv(4096).decode())
            except socket.timeout:
                pass
        ready = any("READY=1" in m.split("\n") for m in msgs)
        check(ready, f"sandbox: READY=1 from the exporter (rc {p.poll()})")
        if ready:
            first = scrape(port)
            feats = metric_values(first, "scry_feature_available")
            ref_feats = {f"scry_feature_available{{feature=\"{row[0]}\"}}": 1.0 if row[1] == "available" else 0.0
                         for row in reference if row[1] != "disabled"}
            for f, v in work.extra_features.items():
                ref_feats[f'scry_feature_available{{feature="{f}"}}'] = v
            check(feats == ref_feats, f"sandbox: features as under root: {feats}")
            work.serve_log = log_path
            second = work.verify(port, first)
            r = subprocess.run(["promtool", "check", "metrics"], input=second, capture_output=True, text=True,
                               timeout=CMD_TIMEOUT) if shutil.which("promtool") else None
            if r:
                check(r.returncode == 0 and not (r.stdout + r.stderr).strip(),
                      f"sandbox: promtool check metrics prints nothing{(r.stdout + r.stderr)[:500]}")
            p.send_signal(signal.SIGTERM)
            try:
                rc = p.wait(20)
            except subprocess.TimeoutExpired:
                rc = None
            while True:
                try:
                    msgs.append(notify.recv(4096).decode())
                except (socket.timeout, BlockingIOError):
                    break
            check(any("STOPPING=1" in m.split("\n") for m in msgs), "sandbox: STOPPING=1 on SIGTERM")
            check(rc == 0, f"sandbox: exit 0 after SIGTERM (rc {rc})")
        log("--- exporter log in the sandbox ---\n" + open(log_path).read().rstrip())

        if failures:
            log(f"\n{len(failures)} failure(s)")
            return 1
        log(f"\nPASS: {exporter} works in the emulated sandbox of " + args.unit)
        return 0
    except Skip as e:
        log(f"SKIP: {e}")
        return 1 if ci else SKIP
    except Exception as e:  # noqa: BLE001
        log(f"FAIL: {type(e).__name__}: {e}")
        return 1
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if sandbox:
            sandbox.stop_all()
        if work:
            work.cleanup()
        if notify:
            notify.close()
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
