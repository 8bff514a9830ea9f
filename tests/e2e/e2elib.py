"""What the end-to-end tests share: failure bookkeeping, logging, ports, child-process hygiene, the
Prometheus HTTP API, PromQL and Grafana helpers, and the checks every exporter's dashboard and rules get."""
import ctypes
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

failures = []

CMD_TIMEOUT = 30          # any external command
HTTP_TIMEOUT = 10         # any HTTP request
SCRAPE_INTERVAL = "1s"
RATE_INTERVAL = "4s"      # Grafana: max($__interval + scrape interval, 4 * scrape interval)
INTERVAL = "1s"
SKIP = 77                 # the exit code of a skipped test (CTest SKIP_RETURN_CODE)


class Skip(Exception):
    pass


class Deadline(Exception):
    pass


def log(msg):
    print(msg, flush=True)


def check(cond, msg, log_ok=False):
    """Records msg as a failure unless cond holds; returns cond."""
    if not cond:
        failures.append(msg)
        log(f"FAIL {msg}")
    elif log_ok:
        log(f"ok   {msg}")
    return cond


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def die_with_parent():
    """preexec_fn: the child gets SIGKILL if this test process dies (even by SIGKILL)."""
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


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


def cgroup2_root():
    """The cgroup v2 mount: /sys/fs/cgroup on pure v2, /sys/fs/cgroup/unified on hybrid systems."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            if fields[sep + 1] == "cgroup2":
                return fields[4]
    return None



def pod_node_root(tmp, namespace, pod, pod_uid, container, container_id):
    """A node root for --path.rootfs below tmp: the host's /proc and /sys, and the kubelet's log files of
    one pod's container (/var/log/pods/<ns>_<pod>_<uid>/<container>/ and its /var/log/containers link).
    Returns its path."""
    root = os.path.join(tmp, "root")
    os.mkdir(root)
    os.symlink("/proc", os.path.join(root, "proc"))
    os.symlink("/sys", os.path.join(root, "sys"))
    log_dir = os.path.join(root, "var/log/pods", f"{namespace}_{pod}_{pod_uid}", container)
    os.makedirs(log_dir)
    open(os.path.join(log_dir, "0.log"), "w").close()
    os.makedirs(os.path.join(root, "var/log/containers"))
    os.symlink(f"/var/log/pods/{namespace}_{pod}_{pod_uid}/{container}/0.log",
               os.path.join(root, "var/log/containers", f"{pod}_{namespace}_{container}-{container_id}.log"))
    return root


def makedirs_tracked(made, base, parts):
    """Creates base/parts[0]/parts[1]/... where missing, noting each directory made in made (parents
    first, so that cleanup removes them in reverse). Returns the last one."""
    path = base
    for part in parts:
        path = os.path.join(path, part)
        if not os.path.isdir(path):
            os.mkdir(path)
            made.append(path)
    return path


def series_value(prom, expr):
    r = prom.query(expr)
    if r.get("status") != "success" or not r["data"]["result"]:
        return None
    return float(r["data"]["result"][0]["value"][1])



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



# --- processes -----------------------------------------------------------------------------------

def start_exporter(env, name, cmd, ready_timeout=60):
    """Starts an exporter with a NOTIFY_SOCKET in env.tmp and waits for READY=1. env has tmp, procs (a
    list of (name, Popen)) and notify (set here). Returns (Popen, log path)."""
    sock_path = os.path.join(env.tmp, "notify.sock")
    env.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    env.notify.bind(sock_path)
    env.notify.settimeout(1)
    log_path = os.path.join(env.tmp, f"{name}.log")
    p = subprocess.Popen(cmd, stdout=open(log_path, "w"), stderr=subprocess.STDOUT, preexec_fn=die_with_parent,
                         env=dict(os.environ, NOTIFY_SOCKET=sock_path))
    env.procs.append((name, p))
    log(f"started: {' '.join(cmd)} (pid {p.pid})")
    messages = []

    def ready():
        if p.poll() is not None:
            raise RuntimeError(f"{name} exited with {p.returncode}:\n{open(log_path).read()}")
        try:
            messages.append(env.notify.recv(4096).decode())
        except socket.timeout:
            return False
        return any("READY=1" in m.split("\n") for m in messages)

    wait_for(f"READY=1 from {name}", ready, ready_timeout)
    log(f"{name}: READY=1")
    return p, log_path


def stop_exporter(env, name, p):
    """SIGTERM: checks that the exporter sends STOPPING=1 and exits 0."""
    p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(15)
    except subprocess.TimeoutExpired:
        rc = None
    msgs = []
    while True:
        try:
            msgs.append(env.notify.recv(4096).decode())
        except (socket.timeout, BlockingIOError):
            break
    check(any("STOPPING=1" in m.split("\n") for m in msgs), f"no STOPPING=1 after SIGTERM (got {msgs})")
    check(rc == 0, f"{name} exited with {rc} after SIGTERM")
    log(f"{name}: STOPPING=1 and exit {rc} on SIGTERM")


def start_prometheus(env, job, rules, exporter_port, prom_port):
    """Debian's prometheus scraping 127.0.0.1:exporter_port as job every second, evaluating the rules file
    every second. Returns (Prom, log path) once the target is up."""
    cfg = os.path.join(env.tmp, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write(f"""global:
  scrape_interval: {SCRAPE_INTERVAL}
  scrape_timeout: {SCRAPE_INTERVAL}
  evaluation_interval: 1s
rule_files:
  - {json.dumps(rules)}
scrape_configs:
  - job_name: {job}
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
        return any(t["labels"].get("job") == job and t["health"] == "up" for t in targets)

    wait_for(f"the {job} target to be up in Prometheus", target_up, 60)
    log(f"prometheus: target {job} is up")
    return prom, log_path


# --- the checks every dashboard and rules file gets -----------------------------------------------

def dashboard_variables(prom, dashboard, fixed, use_all_value=False):
    """Resolves each query variable like Grafana with 'All' selected: the values of its label_values()
    query, joined into a regex (or, with use_all_value, the variable's allValue when it has one, which is
    what Grafana sends then). Single-valued variables (job) take their first value. fixed: name -> value
    set beforehand (a variable in fixed is not resolved). Returns (values, resolved values per name)."""
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
        if v["name"] in fixed:
            continue
        if v.get("multi") or v.get("includeAll"):
            if use_all_value and v.get("includeAll") and v.get("allValue"):
                values[v["name"]] = v["allValue"]
            else:
                values[v["name"]] = "(" + "|".join(regex_escape(x) for x in found) + ")" if found else "(.*)"
        else:
            values[v["name"]] = found[0] if found else ""
    return values, resolved


def all_panels(panels):
    for p in panels:
        yield p
        yield from all_panels(p.get("panels", []))


def check_dashboard_exprs(prom, dashboard, values, range_s, expected_empty, rows, tag="dash"):
    """Every target of every panel, variables replaced: status success and data, as an instant query and
    as a range query over the last 30 s. expected_empty(raw expr) returns the reasons (a non-empty list)
    why an expression must be empty, or None when it must have data. Returns the raw expressions."""
    exprs = []
    for p in all_panels(dashboard["panels"]):
        for t in p.get("targets", []):
            raw = t.get("expr", "")
            expr = interpolate(raw, values, range_s)
            exprs.append(raw)
            where = f"{tag}: {p['title']} [{t['refId']}]"
            inst = result_summary(prom.query(expr))
            rng = result_summary(prom.query_range(expr))
            empty_ok = expected_empty(raw)
            if not inst[0] or not rng[0]:
                verdict = f"ERROR {inst[3] or rng[3]}"
                check(False, f"{where}: {verdict}: {expr}")
            elif inst[1] and rng[1]:
                verdict = "ok"
                if empty_ok:
                    check(False, f"{where}: data although it should be empty ({', '.join(empty_ok)}): {expr}")
                    verdict = "UNEXPECTED DATA"
            elif empty_ok and not inst[1] and not rng[1]:
                verdict = f"empty: {','.join(empty_ok)} (expected)"
            else:
                verdict = "EMPTY"
                check(False, f"{where}: no data (instant {inst[1]} series, range {rng[1]}): {expr}")
            rows.append((where, f"{inst[1]}/{rng[1]}", rng[2], verdict, raw))
    return exprs


def wait_rules_evaluated(prom, rules_path, settle=2.5):
    """Waits until Prometheus has loaded as many rules as the file has and evaluated each, then a couple
    more evaluations. Checks every rule's health. Returns [(group name, rule)]."""
    n_rules_file = len(re.findall(r"^\s*-\s*(?:record|alert):", open(rules_path).read(), re.M))

    def rules_evaluated():
        groups = prom.api("rules")["data"]["groups"]
        rules = [r for g in groups for r in g["rules"]]
        if len(rules) != n_rules_file:
            return None
        evaluated = all(not r.get("lastEvaluation", "0001").startswith("0001") for r in rules)
        return groups if evaluated else None

    wait_for("all rules evaluated", rules_evaluated, 30)
    time.sleep(settle)
    groups = prom.api("rules")["data"]["groups"]
    rules = [(g["name"], r) for g in groups for r in g["rules"]]
    check(len(rules) == n_rules_file, f"Prometheus loaded {len(rules)} rules, the file has {n_rules_file}")
    for gname, r in rules:
        check(r.get("health") == "ok" and not r.get("lastError"),
              f"rule {gname}/{r.get('name')}: health {r.get('health')!r}, lastError {r.get('lastError')!r}")
    return rules


def check_rule_exprs(prom, rules, expected_empty, rows):
    """Recording rules return data; each alert's expression evaluates, and without its conditions returns
    data (or is expected empty). Returns the raw expressions."""
    exprs = []
    for _, r in rules:
        raw = r["query"]
        exprs.append(raw)
        name = r["name"]
        full = result_summary(prom.query(raw))
        if r["type"] == "recording":
            where = f"rule: {name}"
            empty_ok = expected_empty(raw)
            if full[0] and full[1]:
                verdict = "ok"
            elif not full[0]:
                verdict = "ERROR " + full[3]
            elif empty_ok:
                verdict = f"empty: {','.join(empty_ok)} (expected)"
            else:
                verdict = "EMPTY"
            check(verdict == "ok" or verdict.startswith("empty:"), f"{where}: {verdict}: {raw}")
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
            verdict = f"empty: {','.join(empty_ok)} (expected)"
        else:
            verdict = "EMPTY"
            check(False, f"{where}: the expression without its conditions has no data: {data_expr}")
        rows.append((where, f"{d[1]}", d[2], verdict, data_expr))
    return exprs


def check_metric_names(prom, exprs, since, absent_ok):
    """Every scry_/recorded metric name used in exprs has series in Prometheus since `since`, unless
    absent_ok(name) gives a reason (then it must have none). Returns the names."""
    names = sorted({n for e in exprs for n in metric_names(e)})
    n_fail = len(failures)
    for n in names:
        r = prom.api("series", **{"match[]": n, "start": since, "end": time.time()})
        exists = r.get("status") == "success" and bool(r["data"])
        reason = absent_ok(n)
        if exists:
            check(not reason, f"metric {n} exists although it should not ({reason})")
        else:
            check(bool(reason), f"metric {n} is used by the dashboard or rules but Prometheus has no series")
    if len(failures) == n_fail:
        log(f"metric names used by dashboard and rules: {len(names)}, all present or expected absent")
    return names


def promtool_check_metrics(port):
    scrape = http_get(f"http://127.0.0.1:{port}/metrics")
    r = run(["promtool", "check", "metrics"], input=scrape, check_rc=False)
    out = (r.stdout + r.stderr).strip()
    check(r.returncode == 0 and out == "", f"promtool check metrics (rc {r.returncode}):\n{out}")
    log(f"promtool check metrics on a live scrape ({len(scrape.splitlines())} lines): "
        + ("no output" if not out else "OUTPUT"))


def alerts_by_name(prom):
    state = {}
    for a in prom.api("alerts")["data"]["alerts"]:
        state.setdefault(a["labels"]["alertname"], []).append(a)
    return state


# --- what every e2e script's main() does around its checks -------------------------------------------

def e2e_args(doc, exporter, default_deadline):
    """Parses the command line every e2e script takes and arms its deadline: SIGALRM after --deadline
    seconds, and SIGTERM/SIGINT, raise Deadline so that cleanup still runs. Returns (args, source dir,
    the exporter's binary, whether CI=true)."""
    import argparse
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--source-dir", default=os.path.normpath(os.path.join(here, "..", "..")))
    ap.add_argument("--deadline", type=int, default=default_deadline, help="seconds for the whole test")
    ap.add_argument("--keep", action="store_true", help="print the temp dir and keep logs there on failure")
    args = ap.parse_args()

    def on_alarm(*_):
        raise Deadline(f"test deadline of {args.deadline}s reached")

    def on_term(signum, _):
        raise Deadline(f"killed by signal {signum}")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    signal.alarm(args.deadline)
    return (args, os.path.abspath(args.source_dir), os.path.join(os.path.abspath(args.bin_dir), "scry-" + exporter),
            os.environ.get("CI") == "true")


def disarm_deadline():
    """For the cleanup: no deadline and no signal may interrupt it."""
    signal.alarm(0)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def log_tail(name, path, lines=30):
    log(f"--- {name} log (tail) ---\n" + "".join(open(path).readlines()[-lines:]))


def report(rows, logs):
    """After all checks: the table, then PASS (0) or the failures and the tails of logs
    ((name, path) pairs) (1)."""
    print_table(rows)
    if failures:
        log(f"\n{len(failures)} failure(s):")
        for f in failures:
            log(f"  - {f}")
        for name, path in logs:
            log_tail(name, path)
        return 1
    log(f"\nPASS: {len(rows)} expressions checked")
    return 0


def skipped(e, ci):
    """The exit code of a skip: 77, or a failure under CI=true."""
    log(f"SKIP: {e}")
    if ci:
        log("CI=true: a skip is a failure")
        return 1
    return SKIP


def wait_value(prom, expr, what, timeout=30, minimum=0.0):
    """Waits until a PromQL expression's single value exceeds minimum; returns it."""
    v = wait_for(f"{what}: {expr} > {minimum:g}",
                 lambda: (lambda x: x if x is not None and x > minimum else None)(series_value(prom, expr)), timeout)
    log(f"workload: {what}: {expr} = {v:g}")
    return v

