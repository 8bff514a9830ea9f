#!/usr/bin/python3
"""Run a shell script inside a second kernel (Debian's 6.1 cloud kernel) under QEMU/TCG.

Builds a throw-away initramfs (cpio newc + gzip) holding busybox, a generated /init,
the given binaries with the shared libraries they need (found with ldd, dynamic loader
included), extra files and kernel modules; boots it with qemu-system-x86_64 -accel tcg;
streams the serial console; prints what the guest script wrote (between the markers
===SCRY-GUEST-BEGIN=== and ===SCRY-GUEST-END rc=N===) on stdout and exits with the
guest script's exit status.

Harness failures (bad arguments, missing kernel, qemu failure, boot/run timeout, guest
died before the end marker) print "run-guest: error: ..." and the guest's whole console
log on stderr and exit with 125 (timeouts: 124).

Only the Python 3 standard library is used. See tests/vm/README.md.
"""

import argparse
import gzip
import os
import re
import select
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
DEFAULT_CACHE = os.path.join(REPO, "build", "vm-cache")

BEGIN = "===SCRY-GUEST-BEGIN==="
END_RE = re.compile(r"===SCRY-GUEST-END rc=(\d+)===")
EXIT_HARNESS = 125
EXIT_TIMEOUT = 124


class HarnessError(Exception):
    pass


def log(msg):
    print("run-guest: " + msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- cpio

class Initramfs:
    """An in-memory tree written out as a cpio 'newc' archive."""

    def __init__(self):
        self.entries = {}  # guest path -> (kind, mode, payload)
        self.add_dir("/")

    @staticmethod
    def _norm(path):
        path = os.path.normpath("/" + path.lstrip("/"))  # normpath keeps a leading "//"
        return "/" if path == "/" else path

    def _parents(self, path):
        parent = os.path.dirname(path)
        if parent != path and parent not in self.entries:
            self.add_dir(parent)

    def add_dir(self, path, mode=0o755):
        path = self._norm(path)
        if path != "/":
            self._parents(path)
        self.entries[path] = ("dir", stat.S_IFDIR | mode, b"")

    def add_bytes(self, path, data, mode=0o644):
        path = self._norm(path)
        self._parents(path)
        self.entries[path] = ("file", stat.S_IFREG | mode, data)

    def add_file(self, path, src, mode=None):
        with open(src, "rb") as f:
            data = f.read()
        if mode is None:
            mode = stat.S_IMODE(os.stat(src).st_mode) | 0o400
        self.add_bytes(path, data, mode)

    def add_symlink(self, path, target):
        path = self._norm(path)
        self._parents(path)
        self.entries[path] = ("link", stat.S_IFLNK | 0o777, target.encode())

    def add_chardev(self, path, major, minor, mode=0o600):
        path = self._norm(path)
        self._parents(path)
        self.entries[path] = ("chr", stat.S_IFCHR | mode, (major, minor))

    def has(self, path):
        return self._norm(path) in self.entries

    def write(self, out_path, level=6):
        def pad4(n):
            return (4 - n % 4) % 4

        chunks = []
        ino = 1
        mtime = int(time.time())
        for path in sorted(self.entries):
            kind, mode, payload = self.entries[path]
            name = "." if path == "/" else path[1:]
            rmaj = rmin = 0
            data = b""
            if kind in ("file", "link"):
                data = payload
            elif kind == "chr":
                rmaj, rmin = payload
            nlink = 2 if kind == "dir" else 1
            nameb = name.encode() + b"\0"
            hdr = "070701" + "".join("%08X" % v for v in (
                ino, mode, 0, 0, nlink, mtime, len(data), 0, 0, rmaj, rmin, len(nameb), 0))
            chunks.append(hdr.encode() + nameb + b"\0" * pad4(110 + len(nameb)))
            chunks.append(data + b"\0" * pad4(len(data)))
            ino += 1
        nameb = b"TRAILER!!!\0"
        hdr = "070701" + "".join("%08X" % v for v in (0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, len(nameb), 0))
        chunks.append(hdr.encode() + nameb + b"\0" * pad4(110 + len(nameb)))
        raw = b"".join(chunks)
        with open(out_path, "wb") as f:
            f.write(gzip.compress(raw, compresslevel=level, mtime=0))
        return len(raw)


# --------------------------------------------------------------------------- content

LDD_ARROW = re.compile(r"^\s*(\S+)\s+=>\s+(\S+)\s+\(0x[0-9a-f]+\)")
LDD_PLAIN = re.compile(r"^\s*(/\S+)\s+\(0x[0-9a-f]+\)")


def shared_libs(path):
    """Absolute paths (as the loader sees them) of the libraries `path` needs, loader included."""
    res = subprocess.run(["ldd", path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True)
    out = res.stdout
    if "not a dynamic executable" in out or "statically linked" in out:
        return []
    if res.returncode != 0:
        raise HarnessError("ldd %s failed: %s" % (path, out.strip()))
    libs = []
    for line in out.splitlines():
        m = LDD_ARROW.match(line)
        if m:
            if m.group(2) == "not":
                raise HarnessError("ldd %s: %s not found" % (path, m.group(1)))
            libs.append(m.group(2))
            continue
        if "not found" in line:
            raise HarnessError("ldd %s: %s" % (path, line.strip()))
        m = LDD_PLAIN.match(line)
        if m:
            libs.append(m.group(1))
    return libs


def add_elf_with_libs(fs, src, dest):
    src = os.path.abspath(src)
    if not os.path.isfile(src):
        raise HarnessError("no such file: %s" % src)
    fs.add_file(dest, src)
    for lib in shared_libs(src):
        if not fs.has(lib):
            fs.add_file(lib, os.path.realpath(lib), 0o755)


def add_tree(fs, src, dest):
    if os.path.isdir(src):
        for root, dirs, files in os.walk(src):
            rel = os.path.relpath(root, src)
            gdir = os.path.normpath(os.path.join(dest, rel))
            fs.add_dir(gdir)
            for name in files:
                p = os.path.join(root, name)
                if os.path.islink(p) and not os.path.exists(p):
                    continue
                fs.add_file(os.path.join(gdir, name), p)
    elif os.path.isfile(src):
        fs.add_file(dest, src)
    else:
        raise HarnessError("no such file or directory: %s" % src)


def split_src_dest(spec):
    if ":" in spec:
        src, dest = spec.split(":", 1)
    else:
        src, dest = spec, os.path.abspath(spec)
    if not dest.startswith("/"):
        raise HarnessError("guest destination must be absolute: %s" % spec)
    return src, dest


def module_order(moddir, names):
    """modules.dep resolution: list of relative .ko paths, dependencies first."""
    depfile = os.path.join(moddir, "modules.dep")
    if not os.path.isfile(depfile):
        raise HarnessError("no modules.dep in %s (run fetch-kernel.sh)" % moddir)
    deps, by_name = {}, {}
    with open(depfile) as f:
        for line in f:
            if ":" not in line:
                continue
            mod, rest = line.split(":", 1)
            deps[mod] = rest.split()
            base = os.path.basename(mod).split(".ko")[0].replace("-", "_")
            by_name[base] = mod
    order = []

    def visit(mod):
        if mod in order:
            return
        for d in reversed(deps.get(mod, [])):
            visit(d)
        order.append(mod)

    for n in names:
        key = n.replace("-", "_")
        if key not in by_name:
            raise HarnessError("kernel module %r not found in %s (built in? check the config)" % (n, depfile))
        visit(by_name[key])
    return order


INIT_TEMPLATE = r"""#!/bin/sh
# generated by tests/vm/run-guest.py
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root
say() { echo "scry-init: $*"; }
mnt() { mkdir -p "$3"; mount -t "$1" "$2" "$3" || say "mount -t $1 $3 failed"; }
mnt proc proc /proc
mnt sysfs sysfs /sys
mnt devtmpfs devtmpfs /dev
mnt devpts devpts /dev/pts
mnt tmpfs tmpfs /dev/shm
mnt tmpfs tmpfs /tmp
mnt tmpfs tmpfs /run
mnt tracefs tracefs /sys/kernel/tracing
mnt debugfs debugfs /sys/kernel/debug
mnt bpf bpf /sys/fs/bpf
CGROUP_MODE=@CGROUP@
if [ "$CGROUP_MODE" = hybrid ]; then
    mnt tmpfs cgroup_root /sys/fs/cgroup
    for c in cpu,cpuacct memory blkio pids; do
        mkdir -p "/sys/fs/cgroup/$c"
        mount -t cgroup -o "$c" cgroup "/sys/fs/cgroup/$c" || say "cgroup v1 $c failed"
    done
    ln -s cpu,cpuacct /sys/fs/cgroup/cpu; ln -s cpu,cpuacct /sys/fs/cgroup/cpuacct
    mnt cgroup2 cgroup2 /sys/fs/cgroup/unified
else
    mnt cgroup2 cgroup2 /sys/fs/cgroup
    echo "+cpu +memory +io +pids" > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null
fi
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up || say "loopback up failed"
hostname scry-guest
for m in @MODULES@; do
    insmod "$m" || say "insmod $m failed"
done
@ENV@
echo "@PRINTK@" > /proc/sys/kernel/printk
cd /
echo "@BEGIN@"
/bin/sh /scry/guest.sh </dev/null 2>&1
rc=$?
echo "===SCRY-GUEST-END rc=$rc==="
echo 7 > /proc/sys/kernel/printk
if [ "@DMESG@" = 1 ] || { [ "@DMESG@" = auto ] && [ $rc != 0 ]; }; then
    echo "===SCRY-GUEST-DMESG==="
    dmesg
    echo "===SCRY-GUEST-DMESG-END==="
fi
sync
sleep 0.2
poweroff -f
sleep 5
echo "scry-init: poweroff failed"
"""


def build_initramfs(args, kenv, workdir):
    fs = Initramfs()
    for d in ("/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/lib", "/etc", "/proc", "/sys",
              "/dev", "/tmp", "/run", "/root", "/scry", "/var/tmp", "/mnt"):
        fs.add_dir(d)
    fs.add_dir("/tmp", 0o1777)
    fs.add_chardev("/dev/console", 5, 1)
    fs.add_chardev("/dev/null", 1, 3, 0o666)
    fs.add_chardev("/dev/ttyS0", 4, 64)

    busybox = args.busybox
    if not os.path.isfile(busybox):
        raise HarnessError("%s not found (apt-get install busybox-static, or run fetch-kernel.sh)" % busybox)
    if shared_libs(busybox):
        raise HarnessError("%s is not static (use busybox-static)" % busybox)
    fs.add_file("/bin/busybox", busybox, 0o755)
    applets = subprocess.run([busybox, "--list-full"], stdout=subprocess.PIPE, check=True,
                             universal_newlines=True).stdout.split()
    for a in applets:
        if a != "bin/busybox":
            fs.add_symlink("/" + a, "/bin/busybox")
    fs.add_bytes("/etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
    fs.add_bytes("/etc/group", b"root:x:0:\nnogroup:x:65534:\n")
    fs.add_bytes("/etc/hosts", b"127.0.0.1 localhost scry-guest\n::1 localhost\n")
    fs.add_bytes("/etc/nsswitch.conf", b"passwd: files\ngroup: files\nhosts: files\n")

    for spec in args.bin:
        src, dest = split_src_dest(spec)
        add_elf_with_libs(fs, src, dest)
    for spec in args.lib:
        src, dest = split_src_dest(spec)
        add_elf_with_libs(fs, src, dest)
    for spec in args.file:
        src, dest = split_src_dest(spec)
        add_tree(fs, src, dest)

    # Debian's busybox sh runs its own applets before searching PATH (FEATURE_SH_STANDALONE), so a
    # copied binary named like an applet (ip, losetup, ...) would never run: shadow those applets
    # with shell functions in front of the script.
    applet_names = {os.path.basename(a) for a in applets}
    prelude = []
    for spec in args.bin:
        dest = split_src_dest(spec)[1]
        name = os.path.basename(dest)
        if name in applet_names and re.match(r"^[A-Za-z0-9_.-]+$", name):
            prelude.append('%s() { %s "$@"; }' % (name, shlex.quote(dest)))
    if args.script:
        with open(args.script, "rb") as f:
            body = f.read()
    else:
        body = (args.cmd + "\n").encode()
    if prelude:
        body = ("\n".join(prelude) + "\n").encode() + body
    fs.add_bytes("/scry/guest.sh", body, 0o755)

    modules = [m for spec in args.module for m in spec.split(",") if m]
    guest_mods = []
    if modules:
        moddir = kenv["MODDIR"]
        for rel in module_order(moddir, modules):
            gpath = "/lib/modules/%s/%s" % (kenv.get("KVER", "unknown"), rel)
            fs.add_file(gpath, os.path.join(moddir, rel), 0o644)
            guest_mods.append(gpath)

    env_lines = []
    for kv in args.env:
        if "=" not in kv or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", kv.split("=", 1)[0]):
            raise HarnessError("bad --env %r (want NAME=VALUE)" % kv)
        k, v = kv.split("=", 1)
        env_lines.append("export %s=%s" % (k, shlex.quote(v)))

    init = (INIT_TEMPLATE
            .replace("@CGROUP@", args.cgroup)
            .replace("@MODULES@", " ".join(guest_mods))
            .replace("@ENV@", "\n".join(env_lines))
            .replace("@PRINTK@", "7 4 1 7" if args.kernel_messages else "1 4 1 7")
            .replace("@DMESG@", args.dmesg)
            .replace("@BEGIN@", BEGIN))
    fs.add_bytes("/init", init.encode(), 0o755)

    out = os.path.join(workdir, "initramfs.cpio.gz")
    raw = fs.write(out, level=args.gzip_level)
    return out, raw, os.path.getsize(out)


# --------------------------------------------------------------------------- qemu

def read_kernel_env(cache_dir):
    path = os.path.join(cache_dir, "kernel", "kernel.env")
    if not os.path.isfile(path):
        raise HarnessError("no %s: run tests/vm/fetch-kernel.sh %s first" % (path, cache_dir))
    env = {}
    with open(path) as f:
        for line in f:
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                env[k] = v
    return env


def _die_with_parent():
    """preexec_fn: qemu gets SIGKILL when this script dies, even by SIGKILL (no orphaned guests)."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _sigterm(signum, frame):
    raise KeyboardInterrupt("signal %d" % signum)


def run_qemu(args, kernel, initrd, console_log):
    # a CPU stuck in the kernel for 20 s panics, which ends qemu, instead of hanging until the run timeout
    append = "console=ttyS0 panic=-1 softlockup_panic=1 quiet"
    if args.append:
        append += " " + args.append
    cmd = [args.qemu, "-accel", "tcg,thread=" + args.tcg_thread, "-m", str(args.mem), "-smp", str(args.smp),
           "-nographic", "-no-reboot", "-nic", "none", "-vga", "none", "-kernel", kernel, "-initrd", initrd,
           "-append", append] + args.qemu_arg
    if args.verbose:
        log("exec: " + " ".join(shlex.quote(c) for c in cmd))
    t0 = time.monotonic()
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=_die_with_parent)
    except OSError as e:
        raise HarnessError("cannot start %s: %s" % (args.qemu, e))

    buf = bytearray()
    t_begin = t_end = None
    rc = None
    timeout = None
    pending = b""
    try:
        while True:
            now = time.monotonic()
            if t_end is not None:
                deadline = t_end + args.exit_grace
            elif t_begin is None:
                deadline = t0 + min(args.boot_timeout, args.timeout)
            else:
                deadline = t0 + args.timeout
            if now >= deadline:
                if t_end is not None:
                    break  # guest finished but qemu lingers: just kill it
                timeout = "boot" if t_begin is None else "run"
                break
            r, _, _ = select.select([proc.stdout], [], [], min(1.0, deadline - now))
            if not r:
                if proc.poll() is not None:
                    break
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            buf += chunk
            console_log.write(chunk)
            console_log.flush()
            if args.verbose:
                sys.stderr.buffer.write(chunk)
                sys.stderr.flush()
            pending += chunk
            lines = pending.split(b"\n")
            pending = lines.pop()
            for raw in lines:
                line = raw.decode("utf-8", "replace").rstrip("\r")
                if t_begin is None and line.rstrip().endswith(BEGIN):
                    t_begin = time.monotonic()
                elif t_begin is not None and t_end is None:
                    m = END_RE.search(line)
                    if m:
                        t_end = time.monotonic()
                        rc = int(m.group(1))
    finally:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait()
        proc.stdout.close()
    t_exit = time.monotonic()
    return {
        "console": buf.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", ""),
        "rc": rc, "timeout": timeout, "qemu_rc": proc.returncode,
        "boot_s": (t_begin - t0) if t_begin else None,
        "payload_s": (t_end - t_begin) if (t_begin and t_end) else None,
        "total_s": t_exit - t0,
    }


def extract_payload(console):
    lines = console.split("\n")
    out, inside = [], False
    for line in lines:
        if not inside:
            if line.rstrip().endswith(BEGIN):  # firmware escape codes may precede it
                inside = True
            continue
        if END_RE.search(line):
            # the END marker may follow unterminated script output on the same line
            head = line[:END_RE.search(line).start()]
            if head:
                out.append(head)
            break
        out.append(line)
    return "\n".join(out) + ("\n" if out else "")


def main():
    ap = argparse.ArgumentParser(
        description="Run a script in Debian's 6.1 cloud kernel under qemu (TCG).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--script", help="shell script run by the guest's /bin/sh (busybox)")
    src.add_argument("--cmd", help="shell command line run in the guest instead of --script")
    ap.add_argument("--cache-dir", default=DEFAULT_CACHE, help="cache dir filled by fetch-kernel.sh")
    ap.add_argument("--kernel", help="bzImage to boot (default: the cached 6.1 cloud kernel)")
    ap.add_argument("--bin", action="append", default=[], metavar="SRC[:DEST]",
                    help="executable to copy (with its ldd libraries); DEST defaults to SRC's absolute path")
    ap.add_argument("--lib", action="append", default=[], metavar="SRC[:DEST]",
                    help="extra shared library (e.g. dlopen'ed) to copy with its own libraries")
    ap.add_argument("--file", action="append", default=[], metavar="SRC[:DEST]",
                    help="extra file or directory to copy")
    ap.add_argument("--module", action="append", default=["loop"], metavar="NAME[,NAME]",
                    help="kernel modules to insmod (with modules.dep deps) before the script")
    ap.add_argument("--no-default-modules", action="store_true", help="do not load loop")
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                    help="environment variable for the guest script")
    ap.add_argument("--cgroup", choices=["v2", "hybrid"], default="v2",
                    help="v2: cgroup2 at /sys/fs/cgroup; hybrid: v1 controllers + cgroup2 at /sys/fs/cgroup/unified")
    ap.add_argument("--timeout", type=float, default=float(os.environ.get("SCRY_VM_TIMEOUT", 240)),
                    help="hard limit for the whole run, seconds (env SCRY_VM_TIMEOUT)")
    ap.add_argument("--boot-timeout", type=float, default=float(os.environ.get("SCRY_VM_BOOT_TIMEOUT", 60)),
                    help="hard limit until the guest script starts, seconds (env SCRY_VM_BOOT_TIMEOUT)")
    ap.add_argument("--exit-grace", type=float, default=10, help=argparse.SUPPRESS)
    ap.add_argument("--mem", type=int, default=1024, help="guest memory, MiB")
    ap.add_argument("--smp", type=int, default=2, help="guest CPUs")
    ap.add_argument("--tcg-thread", choices=["single", "multi"],
                    default=os.environ.get("SCRY_VM_TCG_THREAD", "single"),
                    help="TCG threads (env SCRY_VM_TCG_THREAD): single (default), all guest CPUs on one host "
                         "thread; multi, one per guest CPU, which often hangs the guest while its kernel "
                         "patches its text")
    ap.add_argument("--append", default="", help="extra kernel command line")
    ap.add_argument("--qemu", default="qemu-system-x86_64")
    ap.add_argument("--qemu-arg", action="append", default=[], help="extra qemu argument (repeatable)")
    ap.add_argument("--busybox", default="/bin/busybox")
    ap.add_argument("--gzip-level", type=int, default=1)
    ap.add_argument("--dmesg", choices=["auto", "0", "1"], default="auto",
                    help="print the guest's dmesg into the console log: auto = when the script fails")
    ap.add_argument("--kernel-messages", action="store_true",
                    help="let kernel messages interleave with the script output on the console")
    ap.add_argument("--log", help="also write the whole console log to this file")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (initramfs, console log)")
    ap.add_argument("-v", "--verbose", action="store_true", help="stream the console to stderr")
    ap.add_argument("-q", "--quiet", action="store_true", help="no timing line on stderr")
    args = ap.parse_args()
    if args.no_default_modules:
        args.module = args.module[1:]

    signal.signal(signal.SIGTERM, _sigterm)
    signal.signal(signal.SIGHUP, _sigterm)
    workdir = None
    console = ""
    log_path = None

    def console_so_far():
        if console or not log_path or not os.path.isfile(log_path):
            return console
        with open(log_path, "rb") as f:
            return f.read().decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "")
    try:
        if shutil.which(args.qemu) is None:
            raise HarnessError("%s not found (apt-get install qemu-system-x86, or run fetch-kernel.sh)" % args.qemu)
        if args.script and not os.path.isfile(args.script):
            raise HarnessError("no such script: %s" % args.script)
        kenv = {} if (args.kernel and not any(args.module)) else read_kernel_env(args.cache_dir)
        kernel = args.kernel or kenv["VMLINUZ"]
        if not os.path.isfile(kernel):
            raise HarnessError("no kernel image %s" % kernel)
        tmproot = os.path.join(args.cache_dir, "tmp")
        os.makedirs(tmproot, exist_ok=True)
        for old in os.listdir(tmproot):  # left behind by runs that were SIGKILLed
            p = os.path.join(tmproot, old)
            if old.startswith("run-guest.") and time.time() - os.path.getmtime(p) > 6 * 3600:
                shutil.rmtree(p, ignore_errors=True)
        workdir = tempfile.mkdtemp(prefix="run-guest.", dir=tmproot)

        t0 = time.monotonic()
        initrd, raw_size, gz_size = build_initramfs(args, kenv, workdir)
        t_build = time.monotonic() - t0

        log_path = os.path.join(workdir, "console.log")
        with open(log_path, "wb") as console_log:
            res = run_qemu(args, kernel, initrd, console_log)
        console = res["console"]
        if args.log:
            shutil.copyfile(log_path, args.log)

        if not args.quiet:
            fmt = lambda v: "-" if v is None else "%.1fs" % v
            log("initramfs %.1f MiB (%.1f MiB gz) in %.1fs; boot %s, script %s, qemu total %s"
                % (raw_size / 2**20, gz_size / 2**20, t_build, fmt(res["boot_s"]),
                   fmt(res["payload_s"]), fmt(res["total_s"])))
        if res["timeout"]:
            limit = args.boot_timeout if res["timeout"] == "boot" else args.timeout
            raise HarnessError("%s timeout after %.0fs, qemu killed" % (res["timeout"], limit), EXIT_TIMEOUT)
        if res["rc"] is None:
            if res["boot_s"] is None:
                raise HarnessError("guest never started the script (qemu exit %s)" % res["qemu_rc"])
            raise HarnessError("guest died before the end marker (qemu exit %s)" % res["qemu_rc"])
        sys.stdout.write(extract_payload(console))
        sys.stdout.flush()
        if res["rc"] != 0:
            log("guest script exited %d; guest log follows" % res["rc"])
            sys.stderr.write(console)
        return res["rc"]
    except KeyboardInterrupt as e:
        log("error: interrupted (%s), qemu killed" % (e.args[0] if e.args else "SIGINT"))
        if console_so_far():
            sys.stderr.write("----- guest console log -----\n" + console_so_far() + "\n----- end of guest console log -----\n")
        return 130
    except HarnessError as e:
        code = e.args[1] if len(e.args) > 1 else EXIT_HARNESS
        log("error: %s" % e.args[0])
        if console_so_far():
            sys.stderr.write("----- guest console log -----\n" + console_so_far() + "\n----- end of guest console log -----\n")
        return code
    finally:
        if workdir and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        elif workdir:
            log("kept %s" % workdir)


if __name__ == "__main__":
    sys.exit(main())
