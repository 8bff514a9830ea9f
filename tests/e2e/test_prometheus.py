#!/usr/bin/env python3
"""End-to-end: a real Prometheus scrapes the real scry-block; every PromQL expression of the shipped
dashboard and alert rules evaluates and returns data.

What it does (as root, Python 3 standard library only):
  1. makes a loop device backed by a sparse file on a tiny tmpfs, so that direct writes past the tmpfs
     size fail with ENOSPC at the block layer;
  2. starts <bin-dir>/scry-block on a free loopback port (--collector.cgroup --bpf.stats), with a
     NOTIFY_SOCKET, and waits for READY=1;
  3. starts Debian's prometheus on a free loopback port (scrape and evaluation interval 1s, job
     "scry-block", rule_files = alerts/scry-block.rules.yml, storage in a temp dir) and waits until
     the target is up;
  4. drives I/O with dd: reads and writes on the loop device, then two bursts of failing writes;
  5. asserts:
     - every dashboard expression (template variables replaced by the values their label_values()
       queries return, Grafana-style; $__rate_interval etc. by durations) returns status success and
       a non-empty result, as an instant query and as a range query over the last 30 s. The one allowed
       exception: an expression whose only data comes from a feature that the exporter itself reports
       unavailable (scry_feature_available == 0) must return empty;
     - every rule of alerts/scry-block.rules.yml is loaded (same count as in the file), has been
       evaluated, and has health "ok" with no lastError;
     - every rule expression evaluates with status success; recording rules return data; for each
       alert, the expression without its conditions (the left operand of or/and/unless, comparisons
       with a constant removed) returns data;
     - every scry_/recorded metric name used anywhere exists in Prometheus (or belongs to an
       unavailable feature);
     - ScryBlockIOErrors fires for the loop device (op write, error ENOSPC); ScryBlockExporterDown,
       ScryBlockProgramNotAttached and ScryBlockLostEvents do not; ScryBlockFeatureUnavailable is
       pending or firing exactly for the features the exporter reports unavailable;
     - `promtool check metrics` on a live scrape prints nothing;
     - on SIGTERM the exporter sends STOPPING=1 and exits 0.
  Everything it starts or creates is removed at the end, also on failure or timeout.

Exit: 0 pass, 1 fail, 77 skip (not root, no binary, missing tools); under CI=true a skip is a failure.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2elib import Deadline, Skip, check, die_with_parent, failures, free_port, log  # noqa: E402

SKIP = 77
CMD_TIMEOUT = 30          # any external command
HTTP_TIMEOUT = 10         # any HTTP request
DEFAULT_DEADLINE = 240    # the whole test; the CTest TIMEOUT is above it so that cleanup runs
PREFIX = "scry-e2e-prom-"

SCRAPE_INTERVAL = "1s"
RATE_INTERVAL = "4s"      # Grafana: max($__interval + scrape interval, 4 * scrape interval)
INTERVAL = "1s"

# Metric name prefix -> the exporter feature (scry_feature_available{feature}) that produces it.
FEATURE_OF = [
    ("scry_block_page_cache_accesses", "page_cache_accesses"),
    ("scry_block_page_cache_additions", "page_cache_additions"),
    ("scry_block_page_cache_dirtied", "page_cache_dirtied"),
    ("scry_block_cgroup_", "cgroup"),
    ("scry_block_queue_duration", "latency"),
    ("scry_block_service_duration", "latency"),
    ("scry_block_", "io"),
]

def run(cmd, timeout=CMD_TIMEOUT, check_rc=True, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check_rc and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


def http_get(url, timeout=HTTP_TIMEOUT):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def wait_for(what, fn, timeout, interval=0.25):
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        try:
            v = fn()
            if v:
                return v
        except (OSError, ValueError, KeyError) as e:
            last = e
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what}" + (f" (last error: {last})" if last else ""))


# --- PromQL helpers ------------------------------------------------------------------------------

def mask_strings(expr):
    """Replaces the contents of string literals by spaces (same length), so that words and operators
    inside label values are not seen."""
    out, i, n = [], 0, len(expr)
    while i < n:
        c = expr[i]
        if c in "\"'`":
            j = i + 1
            while j < n and expr[j] != c:
                j += 2 if expr[j] == "\\" and c != "`" else 1
            out.append(c + " " * (min(j, n) - i - 1) + (c if j < n else ""))
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


# Binary operators by precedence, lowest first (PromQL: or < and/unless < comparisons < +,- < ...).
PRECEDENCE = [
    [r"\bor\b"],
    [r"\band\b", r"\bunless\b"],
    [r"==", r"!=", r">=", r"<=", r"(?<![=!<>])>(?!=)", r"(?<![=!<>])<(?!=)"],
]
MODIFIERS = re.compile(r"^\s*(?:bool\b\s*)?(?:(?:on|ignoring)\s*\([^)]*\)\s*)?(?:(?:group_left|group_right)\s*(?:\([^)]*\))?\s*)?")


def top_level_ops(expr):
    """Yields (start, end, op) of binary operators at parenthesis depth 0."""
    masked = mask_strings(expr)
    depth = []
    level = 0
    for ch in masked:
        depth.append(level)
        if ch in "([{":
            level += 1
        elif ch in ")]}":
            level -= 1
    for prec, patterns in enumerate(PRECEDENCE):
        found = []
        for p in patterns:
            for m in re.finditer(p, masked):
                if depth[m.start()] == 0:
                    found.append((m.start(), m.end(), m.group(0), prec))
        if found:
            return sorted(found)
    return []


def strip_parens(expr):
    e = expr.strip()
    while e.startswith("(") and e.endswith(")"):
        masked = mask_strings(e)
        level = 0
        closes_at_end = True
        for i, ch in enumerate(masked):
            level += ch in "([{"
            level -= ch in ")]}"
            if level == 0 and i < len(e) - 1:
                closes_at_end = False
                break
        if not closes_at_end:
            break
        e = e[1:-1].strip()
    return e


def is_constant(expr):
    return re.fullmatch(r"[\d.eE+\-*/()\s]+", strip_parens(expr) or "x") is not None


def data_expression(expr):
    """The expression without its conditions: for A or B, A and B, A unless B the left operand; for a
    comparison with a constant, the other side; recursively."""
    e = strip_parens(expr)
    ops = top_level_ops(e)
    if not ops:
        return e
    start, end, op, _ = ops[-1]  # left-associative: the rightmost operator of the lowest class is the root
    lhs, rhs = e[:start], MODIFIERS.sub("", e[end:], count=1)
    if op in ("or", "and", "unless"):
        return data_expression(lhs)
    if is_constant(rhs):
        return data_expression(lhs)
    if is_constant(lhs):
        return data_expression(rhs)
    return e


METRIC_NAME = re.compile(r"(?<![\w:])((?:scry_\w+)|(?:[a-z_]+:[\w:]+)|up|scrape_duration_seconds)(?=\s*[{\[)\s]|$)")


def metric_names(expr):
    return sorted(set(METRIC_NAME.findall(mask_strings(expr))))


def feature_of(metric):
    for prefix, feature in FEATURE_OF:
        if metric.startswith(prefix):
            return feature
    return None


# --- Grafana variables ---------------------------------------------------------------------------

def regex_escape(value):
    """RE2-escapes a label value and escapes the backslashes for a PromQL double-quoted string, as
    Grafana does for multi-value variables."""
    escaped = re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\1", value)
    return escaped.replace("\\", "\\\\")


def interpolate(expr, values, range_s):
    expr = expr.replace("$__rate_interval", RATE_INTERVAL).replace("$__interval", INTERVAL)
    expr = expr.replace("$__range", f"{range_s}s")
    for name in sorted(values, key=len, reverse=True):
        for form in ("${%s}" % name, "$" + name):
            expr = expr.replace(form, values[name])
    if re.search(r"\$\w|\$\{|\[\[", expr):
        raise ValueError(f"unreplaced template variable in {expr}")
    return expr


# --- Prometheus API ------------------------------------------------------------------------------

class Prom:
    def __init__(self, base):
        self.base = base

    def api(self, path, **params):
        url = f"{self.base}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params, doseq=True)
        try:
            body = http_get(url)
        except urllib.error.HTTPError as e:
            body = e.read().decode()
        return json.loads(body)

    def query(self, expr, **kw):
        return self.api("query", query=expr, **kw)

    def query_range(self, expr, seconds=30, step=2):
        now = time.time()
        return self.api("query_range", query=expr, start=now - seconds, end=now, step=step)


def result_summary(resp):
    """(ok, n_series, n_nonzero, message)"""
    if resp.get("status") != "success":
        return False, 0, 0, f"{resp.get('errorType')}: {resp.get('error')}"
    data = resp["data"]
    rtype, res = data["resultType"], data["result"]
    if rtype in ("scalar", "string"):
        return True, 1, 1, rtype
    values = []
    for s in res:
        if "value" in s:
            values.append(s["value"][1])
        else:
            values.extend(v[1] for v in s.get("values", []))
    nonzero = sum(1 for v in values if v not in ("0", "NaN"))
    return True, len(res), nonzero, ""


# --- the test ------------------------------------------------------------------------------------

class Env:
    def __init__(self):
        self.tmp = None
        self.mountpoint = None
        self.loop = None
        self.procs = []  # (name, Popen)
        self.notify = None
        self.cgroup_dir = None  # a cgroup v2 directory for the workload

    def cleanup(self):
        for name, p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
        if self.loop:
            subprocess.run(["losetup", "-d", self.loop], capture_output=True, timeout=CMD_TIMEOUT)
        if self.mountpoint and os.path.ismount(self.mountpoint):
            r = subprocess.run(["umount", self.mountpoint], capture_output=True, timeout=CMD_TIMEOUT)
            if r.returncode:
                subprocess.run(["umount", "-l", self.mountpoint], capture_output=True, timeout=CMD_TIMEOUT)
        if self.cgroup_dir and os.path.isdir(self.cgroup_dir):
            try:
                os.rmdir(self.cgroup_dir)
            except OSError as e:
                log(f"cleanup: cannot remove {self.cgroup_dir}: {e}")
        if self.notify:
            self.notify.close()
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)


def remove_leftovers():
    """Loop devices and mounts of earlier runs that were killed before their cleanup."""
    r = subprocess.run(["losetup", "--list", "--json"], capture_output=True, text=True, timeout=CMD_TIMEOUT)
    if r.returncode == 0 and r.stdout.strip():
        for dev in json.loads(r.stdout).get("loopdevices", []):
            if f"/{PREFIX}" in (dev.get("back-file") or ""):
                subprocess.run(["losetup", "-d", dev["name"]], capture_output=True, timeout=CMD_TIMEOUT)
    with open("/proc/self/mounts") as f:
        for line in f:
            mnt = line.split()[1]
            if f"/{PREFIX}" in mnt:
                subprocess.run(["umount", "-l", mnt], capture_output=True, timeout=CMD_TIMEOUT)
    root = cgroup2_root()
    if root:
        for name in os.listdir(root):
            if name.startswith(PREFIX):
                try:
                    os.rmdir(os.path.join(root, name))
                except OSError:
                    pass


def cgroup2_root():
    """The cgroup v2 mount: /sys/fs/cgroup on pure v2, /sys/fs/cgroup/unified on hybrid systems."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            if fields[sep + 1] == "cgroup2":
                return fields[4]
    return None


def setup_cgroup(env):
    root = cgroup2_root()
    if not root:
        raise Skip("no cgroup v2 hierarchy mounted")
    env.cgroup_dir = os.path.join(root, os.path.basename(env.tmp))
    os.mkdir(env.cgroup_dir)
    return "/" + os.path.basename(env.tmp)


def setup_loop(env):
    env.mountpoint = os.path.join(env.tmp, "tmpfs")
    os.mkdir(env.mountpoint)
    run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "scry-e2e", env.mountpoint])
    backing = os.path.join(env.mountpoint, "backing")
    with open(backing, "wb") as f:
        f.truncate(32 << 20)  # sparse 32 MiB on a 4 MiB tmpfs
    env.loop = run(["losetup", "--find", "--show", backing]).stdout.strip()
    return os.path.basename(env.loop)


WORKLOAD_CGROUP = None  # cgroup.procs of the workload cgroup, set in main()


def enter_workload_cgroup():
    with open(WORKLOAD_CGROUP, "w") as f:
        f.write("0")  # "0": the writing process itself


def dd(*args):
    return subprocess.run(["dd", "status=none", *args], capture_output=True, text=True, timeout=CMD_TIMEOUT,
                          preexec_fn=enter_workload_cgroup if WORKLOAD_CGROUP else None)


def start_exporter(env, binary, port):
    sock_path = os.path.join(env.tmp, "notify.sock")
    env.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    env.notify.bind(sock_path)
    env.notify.settimeout(1)
    log_path = os.path.join(env.tmp, "scry-block.log")
    cmd = [binary, f"--web.listen-address=127.0.0.1:{port}", "--collector.cgroup", "--bpf.stats",
           "--log.level=info"]
    p = subprocess.Popen(cmd, stdout=open(log_path, "w"), stderr=subprocess.STDOUT, preexec_fn=die_with_parent,
                         env=dict(os.environ, NOTIFY_SOCKET=sock_path))
    env.procs.append(("scry-block", p))
    log(f"started: {' '.join(cmd)} (pid {p.pid})")
    messages = []

    def ready():
        if p.poll() is not None:
            raise RuntimeError(f"scry-block exited with {p.returncode}:\n{open(log_path).read()}")
        try:
            messages.append(env.notify.recv(4096).decode())
        except socket.timeout:
            return False
        return any("READY=1" in m.split("\n") for m in messages)

    wait_for("READY=1 from scry-block", ready, 60)
    log("scry-block: READY=1")
    return p, log_path


def start_prometheus(env, src, exporter_port, prom_port):
    rules = os.path.join(src, "alerts", "scry-block.rules.yml")
    cfg = os.path.join(env.tmp, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write(f"""global:
  scrape_interval: {SCRAPE_INTERVAL}
  scrape_timeout: {SCRAPE_INTERVAL}
  evaluation_interval: 1s
rule_files:
  - {json.dumps(rules)}
scrape_configs:
  - job_name: scry-block
    static_configs:
      - targets: ["127.0.0.1:{exporter_port}"]
""")
    log_path = os.path.join(env.tmp, "prometheus.log")
    cmd = ["prometheus", f"--config.file={cfg}", f"--storage.tsdb.path={os.path.join(env.tmp, 'data')}",
           f"--web.listen-address=127.0.0.1:{prom_port}", "--storage.tsdb.retention.time=1h",
           "--log.level=warn"]
    p = subprocess.Popen(cmd, stdout=open(log_path, "w"), stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
    env.procs.append(("prometheus", p))
    log(f"started: prometheus on 127.0.0.1:{prom_port} (pid {p.pid})")
    prom = Prom(f"http://127.0.0.1:{prom_port}")

    def target_up():
        if p.poll() is not None:
            raise RuntimeError(f"prometheus exited with {p.returncode}:\n{open(log_path).read()}")
        targets = prom.api("targets")["data"]["activeTargets"]
        return any(t["labels"].get("job") == "scry-block" and t["health"] == "up" for t in targets)

    wait_for("the scry-block target to be up in Prometheus", target_up, 60)
    log("prometheus: target scry-block is up")
    return prom, log_path, rules


def series_value(prom, expr):
    r = prom.query(expr)
    if r.get("status") != "success" or not r["data"]["result"]:
        return None
    return float(r["data"]["result"][0]["value"][1])


def workload(prom, loop):
    """Reads and writes that succeed, then two bursts of writes that fail with ENOSPC, each seen by
    Prometheus (the second one makes increase() over the error counter positive)."""
    dev = f"/dev/{loop}"
    r = dd("if=/dev/zero", f"of={dev}", "bs=64k", "count=32", "oflag=direct")
    check(r.returncode == 0, f"dd write to {dev} failed: {r.stderr}")
    r = dd(f"if={dev}", "of=/dev/null", "bs=4k", "count=256", "iflag=direct")
    check(r.returncode == 0, f"dd read from {dev} failed: {r.stderr}")
    sel = f'scry_block_errors_total{{job="scry-block", device="{loop}", op="write", error="ENOSPC"}}'
    seen = 0.0
    for burst, seek in enumerate((8, 16)):
        r = dd("if=/dev/zero", f"of={dev}", "bs=1M", "count=4", f"seek={seek}", "oflag=direct")
        check(r.returncode != 0 and "No space left" in r.stderr,
              f"burst {burst + 1}: expected dd to fail with ENOSPC on {dev}, got rc {r.returncode}: {r.stderr}")
        prev = seen
        seen = wait_for(f"{sel} > {prev} in Prometheus",
                        lambda: (lambda v: v if v is not None and v > prev else None)(series_value(prom, sel)), 20)
        log(f"workload: ENOSPC burst {burst + 1} on {dev}: {sel} = {seen:g}")
        time.sleep(1.5)
    # Successful I/O again after the failures, so rates over the last seconds are not all zero.
    dd("if=/dev/zero", f"of={dev}", "bs=4k", "count=64", "oflag=direct")
    dd(f"if={dev}", "of=/dev/null", "bs=4k", "count=64", "iflag=direct")


def dashboard_variables(prom, dashboard, fixed):
    """Resolves each query variable like Grafana with 'All' selected: the values of its
    label_values() query, joined into a regex. job is single-valued: its first value."""
    values = dict(fixed)
    resolved = {}
    for v in dashboard["templating"]["list"]:
        if v.get("type") != "query":
            continue
        q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
        m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\)\s*", q, re.S)
        check(m is not None, f"variable {v['name']}: not a label_values() query: {q}")
        if not m:
            continue
        expr, label = interpolate(m.group(1), values, 60), m.group(2)
        r = prom.api("series", **{"match[]": expr, "start": time.time() - 300, "end": time.time()})
        found = sorted({s[label] for s in r.get("data", []) if label in s}) if r.get("status") == "success" else []
        check(bool(found), f"variable {v['name']}: {q} returned no values ({r.get('error', 'empty')})")
        resolved[v["name"]] = found
        if v.get("multi") or v.get("includeAll"):
            values[v["name"]] = "(" + "|".join(regex_escape(x) for x in found) + ")" if found else "(.*)"
        else:
            values[v["name"]] = found[0] if found else ""
    return values, resolved


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--source-dir", default=os.path.normpath(os.path.join(here, "..", "..")))
    ap.add_argument("--deadline", type=int, default=DEFAULT_DEADLINE, help="seconds for the whole test")
    ap.add_argument("--keep", action="store_true", help="print the temp dir and keep logs there on failure")
    args = ap.parse_args()
    src = os.path.abspath(args.source_dir)
    binary = os.path.join(os.path.abspath(args.bin_dir), "scry-block")
    ci = os.environ.get("CI") == "true"

    def on_alarm(*_):
        raise Deadline(f"test deadline of {args.deadline}s reached")

    def on_term(signum, _):
        raise Deadline(f"killed by signal {signum}")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    signal.alarm(args.deadline)

    env = Env()
    rows = []
    try:
        if os.geteuid() != 0:
            raise Skip("needs root (BPF, loop devices, mounts)")
        if not os.access(binary, os.X_OK):
            raise Skip(f"{binary} not built")
        for tool in ("prometheus", "promtool", "losetup", "mount", "umount", "dd"):
            if not shutil.which(tool):
                raise Skip(f"{tool} not installed")
        if not os.path.exists("/dev/loop-control"):
            raise Skip("no /dev/loop-control (loop devices unavailable)")

        remove_leftovers()
        env.tmp = tempfile.mkdtemp(prefix=PREFIX)
        loop = setup_loop(env)
        log(f"loop device /dev/{loop} on a 4 MiB tmpfs at {env.mountpoint}")
        global WORKLOAD_CGROUP
        cgroup = setup_cgroup(env)
        WORKLOAD_CGROUP = os.path.join(env.cgroup_dir, "cgroup.procs")
        log(f"workload cgroup {cgroup} ({env.cgroup_dir})")

        exporter_port, prom_port = free_port(), free_port()
        exporter, exporter_log = start_exporter(env, binary, exporter_port)
        prom, prom_log, rules_path = start_prometheus(env, src, exporter_port, prom_port)
        t0 = time.time()
        workload(prom, loop)

        # Wait until every rule was evaluated after the workload (and the recording rules have data).
        rules_text = open(rules_path).read()
        n_rules_file = len(re.findall(r"^\s*-\s*(?:record|alert):", rules_text, re.M))

        def rules_evaluated():
            groups = prom.api("rules")["data"]["groups"]
            rules = [r for g in groups for r in g["rules"]]
            if len(rules) != n_rules_file:
                return None
            evaluated = all(not r.get("lastEvaluation", "0001").startswith("0001") for r in rules)
            return groups if evaluated else None

        wait_for("all rules evaluated", rules_evaluated, 30)
        time.sleep(2.5)  # a couple more evaluations after the last workload step
        groups = prom.api("rules")["data"]["groups"]
        rules = [(g["name"], r) for g in groups for r in g["rules"]]
        check(len(rules) == n_rules_file, f"Prometheus loaded {len(rules)} rules, the file has {n_rules_file}")
        for gname, r in rules:
            name = r.get("name")
            check(r.get("health") == "ok" and not r.get("lastError"),
                  f"rule {gname}/{name}: health {r.get('health')!r}, lastError {r.get('lastError')!r}")

        features = {}
        fr = prom.query('scry_feature_available{job="scry-block"}')
        for s in fr["data"]["result"]:
            features[s["metric"]["feature"]] = s["value"][1] == "1"
        unavailable = sorted(f for f, ok in features.items() if not ok)
        log(f"features: {', '.join(f'{f}={int(ok)}' for f, ok in sorted(features.items()))}")

        def expected_empty(expr):
            """The features that explain an empty result, or None."""
            names = [n for n in metric_names(expr) if n.startswith("scry_block_")]
            feats = sorted({feature_of(n) for n in names} & set(unavailable))
            return feats or None

        # --- dashboard expressions ---
        dash_path = os.path.join(src, "dashboards", "scry-block.json")
        dashboard = json.load(open(dash_path))
        range_s = int(time.time() - t0) + 60
        values, resolved = dashboard_variables(
            prom, dashboard, {"datasource": "prometheus"})
        log("template variables: " + "; ".join(f"{k}={v}" for k, v in values.items()))
        check(loop in resolved.get("device", []), f"$device does not offer the loop device {loop}: {resolved.get('device')}")
        check(cgroup in resolved.get("cgroup", []), f"$cgroup does not offer the workload cgroup {cgroup}: {resolved.get('cgroup')}")
        cg_sel = f'scry_block_cgroup_io_duration_seconds_count{{job="scry-block", cgroup="{cgroup}", device="{loop}"}}'
        cg_n = series_value(prom, cg_sel)
        check(cg_n is not None and cg_n > 0, f"{cg_sel} = {cg_n}, want > 0")
        log(f"per-cgroup: {cg_sel} = {cg_n}")

        def panels(ps):
            for p in ps:
                yield p
                yield from panels(p.get("panels", []))

        all_exprs = []
        for p in panels(dashboard["panels"]):
            for t in p.get("targets", []):
                raw = t.get("expr", "")
                expr = interpolate(raw, values, range_s)
                all_exprs.append(raw)
                where = f"dash: {p['title']} [{t['refId']}]"
                inst = result_summary(prom.query(expr))
                rng = result_summary(prom.query_range(expr))
                empty_ok = expected_empty(raw)
                if not inst[0] or not rng[0]:
                    verdict = f"ERROR {inst[3] or rng[3]}"
                    check(False, f"{where}: {verdict}: {expr}")
                elif inst[1] and rng[1]:
                    verdict = "ok"
                    if empty_ok:
                        check(False, f"{where}: data for unavailable feature(s) {empty_ok}: {expr}")
                        verdict = "UNEXPECTED DATA"
                elif empty_ok and not inst[1] and not rng[1]:
                    verdict = f"empty: {','.join(empty_ok)} unavailable (expected)"
                else:
                    verdict = "EMPTY"
                    check(False, f"{where}: no data (instant {inst[1]} series, range {rng[1]}): {expr}")
                rows.append((where, f"{inst[1]}/{rng[1]}", rng[2], verdict, raw))

        # --- rule expressions ---
        for gname, r in rules:
            raw = r["query"]
            all_exprs.append(raw)
            name = r["name"]
            full = result_summary(prom.query(raw))
            if r["type"] == "recording":
                where = f"rule: {name}"
                verdict = "ok" if full[0] and full[1] else ("ERROR " + full[3] if not full[0] else "EMPTY")
                check(verdict == "ok", f"{where}: {verdict}: {raw}")
                rows.append((where, str(full[1]), full[2], verdict, raw))
                continue
            where = f"alert: {name}"
            check(full[0], f"{where}: {full[3]}: {raw}")
            data_expr = data_expression(raw)
            d = result_summary(prom.query(data_expr))
            empty_ok = expected_empty(data_expr)
            if not d[0]:
                verdict = "ERROR " + d[3]
                check(False, f"{where}: condition-free part failed: {d[3]}: {data_expr}")
            elif d[1]:
                verdict = f"ok, {full[1]} matching now"
            elif empty_ok:
                verdict = f"empty: {','.join(empty_ok)} unavailable (expected)"
            else:
                verdict = "EMPTY"
                check(False, f"{where}: the expression without its conditions has no data: {data_expr}")
            rows.append((where, f"{d[1]}", d[2], verdict, data_expr))

        # --- every metric name used exists ---
        names = sorted({n for e in all_exprs for n in metric_names(e)})
        n_fail = len(failures)
        for n in names:
            r = prom.api("series", **{"match[]": n, "start": t0 - 5, "end": time.time()})
            exists = r.get("status") == "success" and bool(r["data"])
            feat = feature_of(n) if n.startswith("scry_block_") else None
            if exists:
                check(feat not in unavailable, f"metric {n} exists although feature {feat} is unavailable")
            else:
                check(feat in unavailable, f"metric {n} is used by the dashboard or rules but Prometheus has no series")
        if len(failures) == n_fail:
            log(f"metric names used by dashboard and rules: {len(names)}, all present or of an unavailable feature")

        # --- alerts ---
        alerts = prom.api("alerts")["data"]["alerts"]
        state = {}
        for a in alerts:
            state.setdefault(a["labels"]["alertname"], []).append(a)
        io = [a for a in state.get("ScryBlockIOErrors", [])
              if a["labels"].get("device") == loop and a["labels"].get("error") == "ENOSPC"
              and a["labels"].get("op") == "write"]
        check(len(io) == 1 and io[0]["state"] == "firing",
              f"ScryBlockIOErrors should fire for {loop}/write/ENOSPC: {state.get('ScryBlockIOErrors')}")
        if io:
            log(f"alert ScryBlockIOErrors {io[0]['state']}: {io[0]['annotations']['summary']}")
        for quiet in ("ScryBlockExporterDown", "ScryBlockProgramNotAttached", "ScryBlockLostEvents",
                      "ScryBlockBPFMapNearlyFull"):
            check(quiet not in state, f"{quiet} should not be active: {state.get(quiet)}")
        fu = sorted(a["labels"]["feature"] for a in state.get("ScryBlockFeatureUnavailable", []))
        check(fu == unavailable, f"ScryBlockFeatureUnavailable active for {fu}, features unavailable: {unavailable}")
        log(f"alert ScryBlockFeatureUnavailable active (pending, for: 5m) for: {fu}")

        # --- promtool check metrics on a live scrape ---
        scrape = http_get(f"http://127.0.0.1:{exporter_port}/metrics")
        r = run(["promtool", "check", "metrics"], input=scrape, check_rc=False)
        out = (r.stdout + r.stderr).strip()
        check(r.returncode == 0 and out == "", f"promtool check metrics (rc {r.returncode}):\n{out}")
        log(f"promtool check metrics on a live scrape ({len(scrape.splitlines())} lines): "
            + ("no output" if not out else "OUTPUT"))

        # --- orderly stop: STOPPING=1 and exit 0 ---
        exporter.send_signal(signal.SIGTERM)
        try:
            rc = exporter.wait(15)
        except subprocess.TimeoutExpired:
            rc = None
        msgs = []
        while True:
            try:
                msgs.append(env.notify.recv(4096).decode())
            except (socket.timeout, BlockingIOError):
                break
        check(any("STOPPING=1" in m.split("\n") for m in msgs), f"no STOPPING=1 after SIGTERM (got {msgs})")
        check(rc == 0, f"scry-block exited with {rc} after SIGTERM")
        log(f"scry-block: STOPPING=1 and exit {rc} on SIGTERM")

        print_table(rows)
        if failures:
            log(f"\n{len(failures)} failure(s):")
            for f in failures:
                log(f"  - {f}")
            for name, path in (("scry-block", exporter_log), ("prometheus", prom_log)):
                log(f"--- {name} log (tail) ---\n" + "".join(open(path).readlines()[-30:]))
            return 1
        log(f"\nPASS: {len(rows)} expressions checked")
        return 0
    except Skip as e:
        log(f"SKIP: {e}")
        if ci:
            log("CI=true: a skip is a failure")
            return 1
        return SKIP
    except Exception as e:  # noqa: BLE001 (any error, incl. Deadline, fails the test after cleanup)
        if rows:
            print_table(rows)
        log(f"FAIL: {type(e).__name__}: {e}")
        for name, p in env.procs:
            path = os.path.join(env.tmp or "", f"{name}.log")
            if os.path.exists(path):
                log(f"--- {name} log (tail) ---\n" + "".join(open(path).readlines()[-30:]))
        return 1
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if args.keep and failures and env.tmp:
            log(f"keeping logs: {env.tmp}")
            env.tmp = None
        env.cleanup()
        log("cleanup: processes stopped, loop device detached, tmpfs unmounted, temp dir removed")


def print_table(rows):
    w = max((len(r[0]) for r in rows), default=10)
    w = min(w, 60)
    log("\nSERIES: series returned (dashboard: instant/range query over the last 30 s; alerts: the expression\n"
        "without its conditions). NONZERO: samples that are neither 0 nor NaN (dashboard: in the range query).")
    log(f"\n{'WHERE':<{w}}  {'SERIES':>7}  {'NONZERO':>7}  {'RESULT':<42}  EXPR")
    for where, n, nz, verdict, expr in rows:
        e = " ".join(expr.split())
        if len(e) > 110:
            e = e[:107] + "..."
        log(f"{where[:w]:<{w}}  {n:>7}  {nz:>7}  {verdict[:42]:<42}  {e}")


if __name__ == "__main__":
    sys.exit(main())
