"""Helpers shared by the integration tests: run an exporter, scrape and parse /metrics, make loop devices."""
import contextlib
import http.server
import json
import math
import os
import re
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.request

BIN_DIR = os.environ.get("SCRY_BIN_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build", "bin"))


def require_root(testcase):
    """Integration tests need root for BPF; under CI=true not having it is a failure, not a skip."""
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            testcase.fail("BPF integration tests must run as root under CI=true")
        testcase.skipTest("needs root")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """Prometheus text format -> {(name, frozenset(labels.items())): value}."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            raise ValueError("unparsable metrics line: %r" % line)
        labels = frozenset(_LABEL.findall(m.group(3) or ""))
        samples[(m.group(1), labels)] = float(m.group(4))
    return samples


class Metrics:
    def __init__(self, text):
        self.text = text
        self.samples = parse_metrics(text)

    def get(self, name, default=None, **labels):
        """The one sample of name whose labels include the given ones; default if none."""
        want = set(labels.items())
        found = [v for (n, ls), v in self.samples.items() if n == name and want <= set(ls)]
        if len(found) > 1:
            raise AssertionError("%s%s matches %d series" % (name, labels, len(found)))
        return found[0] if found else default

    def series(self, name):
        return {ls: v for (n, ls), v in self.samples.items() if n == name}

    def has(self, name):
        return any(n == name for (n, _) in self.samples)


def bucket_le(value):
    """The le label string prometheus-cpp prints for a bucket bound."""
    if math.isinf(value):
        return "+Inf"
    return "%.16g" % value


class Exporter:
    """Runs bin/scry-<name> on a free loopback port until stopped."""

    def __init__(self, name, *args, env=None):
        self.name = name
        self.port = free_port()
        self.binary = os.path.join(BIN_DIR, "scry-" + name)
        self.args = ["--web.listen-address=127.0.0.1:%d" % self.port, *args]
        self.env = dict(os.environ, **(env or {}))
        self.proc = None
        self.stderr = tempfile.TemporaryFile()

    def __enter__(self):
        self.proc = subprocess.Popen([self.binary, *self.args], env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=self.stderr)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("scry-%s exited with %d: %s" % (self.name, self.proc.returncode, self.log()))
            try:
                self.scrape()
                return self
            except OSError:
                time.sleep(0.1)
        raise AssertionError("scry-%s did not serve /metrics within 60 s: %s" % (self.name, self.log()))

    def __exit__(self, *exc):
        self.stop()

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None

    def log(self):
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")

    def url(self, path="/metrics"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def scrape_text(self):
        with urllib.request.urlopen(self.url(), timeout=10) as r:
            return r.read().decode()

    def scrape(self):
        return Metrics(self.scrape_text())


def cgroup2_root():
    """The cgroup v2 mount point (/sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid hosts), or None."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, post = line.split(" - ", 1)
            if post.split()[0] == "cgroup2":
                return pre.split()[4]
    return None


def remove_cgroup(path):
    """Removes a cgroup directory, waiting a little for its last exited processes to leave it."""
    for _ in range(100):
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.05)


@contextlib.contextmanager
def cgroup(name):
    """A new cgroup in the v2 tree (name may have several levels); yields its directory. Removed at the
    end with the levels it created (its processes must be gone)."""
    root = cgroup2_root()
    path = os.path.join(root, name)
    created = []
    level = path
    while level != root and not os.path.isdir(level):
        created.append(level)
        level = os.path.dirname(level)
    os.makedirs(path, exist_ok=True)
    try:
        yield path
    finally:
        for level in created:
            remove_cgroup(level)


@contextlib.contextmanager
def kubelet_node(namespace, pod, uid, container, container_id, qos="besteffort", files=True):
    """A node root for --path.rootfs (the host's /proc and /sys, and unless files=False the kubelet's log
    files of one pod) and the pod's container cgroup (systemd driver, containerd). Yields (root,
    container cgroup dir)."""
    pod_slice = "kubepods.slice/kubepods-{0}.slice/kubepods-{0}-pod{1}.slice".format(qos, uid.replace("-", "_"))
    with tempfile.TemporaryDirectory() as root:
        os.symlink("/proc", os.path.join(root, "proc"))
        os.symlink("/sys", os.path.join(root, "sys"))
        if files:
            log = "var/log/pods/%s_%s_%s/%s/0.log" % (namespace, pod, uid, container)
            os.makedirs(os.path.dirname(os.path.join(root, log)))
            open(os.path.join(root, log), "w").close()
            os.makedirs(os.path.join(root, "var/log/containers"))
            os.symlink("/" + log, os.path.join(root, "var/log/containers",
                                               "%s_%s_%s-%s.log" % (pod, namespace, container, container_id)))
        with cgroup(os.path.join(pod_slice, "cri-containerd-%s.scope" % container_id)) as path:
            yield root, path


class KubeletApi:
    """A stand-in for the kubelet's authenticated /pods endpoint: HTTPS with a certificate for 127.0.0.1
    signed by a CA of its own (openssl), a bearer token required, a PodList in JSON. Its attributes:
    url, ca_file (the CA's certificate), token_file (the right token), requests (the Authorization
    header of each request)."""

    def __init__(self, tmp, pods, token):
        ca_key, ca, key, csr, cert = (os.path.join(tmp, n) for n in ("ca.key", "ca.pem", "kubelet.key", "kubelet.csr",
                                                                      "kubelet.pem"))
        run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca, "-days", "1",
            "-subj", "/CN=scry-test-ca")
        run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=kubelet")
        ext = os.path.join(tmp, "san.ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=IP:127.0.0.1\n")
        run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert,
            "-days", "1", "-extfile", ext)
        self.ca_file = ca
        self.token_file = os.path.join(tmp, "token")
        with open(self.token_file, "w") as f:
            f.write(token + "\n")
        self.requests = []
        body = json.dumps(pods).encode()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append(self.headers.get("Authorization"))
                if self.path != "/pods":
                    self.send_error(404)
                elif self.headers.get("Authorization") != "Bearer " + token:
                    self.send_error(401)
                else:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = "https://127.0.0.1:%d/pods" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def kubelet_api(pods, token):
    with tempfile.TemporaryDirectory() as tmp:
        api = KubeletApi(tmp, pods, token)
        try:
            yield api
        finally:
            api.close()


def popen_in_cgroup(cgroup_dir, argv, **kw):
    """Starts argv as a process that joins the cgroup before it execs."""
    procs = os.path.join(cgroup_dir, "cgroup.procs")

    def join():
        with open(procs, "w") as f:
            f.write(str(os.getpid()))
    return subprocess.Popen(argv, preexec_fn=join, **kw)


def run(*cmd, **kw):
    return subprocess.run(list(cmd), check=True, capture_output=True, text=True, timeout=120, **kw)


@contextlib.contextmanager
def loop_device(backing_file, size_bytes, direct_io=False):
    """A loop device on a sparse backing file; yields its name (loopN)."""
    with open(backing_file, "wb") as f:
        f.truncate(size_bytes)
    args = ["losetup", "--find", "--show"]
    if direct_io:
        args.append("--direct-io=on")
    dev = run(*args, backing_file).stdout.strip()
    try:
        yield os.path.basename(dev)
    finally:
        subprocess.run(["losetup", "-d", dev], check=False)


@contextlib.contextmanager
def tmpfs(path, size):
    os.makedirs(path, exist_ok=True)
    run("mount", "-t", "tmpfs", "-o", "size=%s" % size, "tmpfs", path)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", path], check=False)


def direct_io(device, op, count, size, offset=0):
    """count O_DIRECT reads or writes of size bytes at consecutive offsets; returns the errors (errno list)."""
    import mmap
    buf = mmap.mmap(-1, size)
    buf.write(b"\x5a" * size)
    fd = os.open("/dev/" + device, (os.O_RDONLY if op == "read" else os.O_WRONLY) | os.O_DIRECT)
    errors = []
    try:
        for i in range(count):
            try:
                if op == "read":
                    os.preadv(fd, [buf], offset + i * size)
                else:
                    os.pwritev(fd, [buf], offset + i * size)
            except OSError as e:
                errors.append(e.errno)
    finally:
        os.close(fd)
    return errors
