#!/usr/bin/env python3
"""Static checks of what ships with the scry exporters: alert rules, dashboards, systemd units.

  - promtool check rules alerts/*.rules.yml
  - promtool test rules alerts/*.test.yml
  - dashboards/*.json: valid JSON, a Prometheus data source variable (or a DS_PROMETHEUS input), the
    template variables job and instance (and those of EXTRA_VARS, and namespace and pod on dashboards whose
    queries use the pod label), unique panel ids, every panel's targets have a
    non-empty expr, no hard-coded job, and every expr (template variables replaced) parses as PromQL
    (checked by promtool as a recording rule)
  - systemd/*.service: systemd-analyze verify passes (on a copy whose ExecStart is a binary that exists),
    and systemd-analyze security --offline=yes rates the unit's exposure <= --max-exposure (2.5)

Python 3 standard library only. Exit 0 when all pass, 1 on a failure, 77 when a tool is missing
(a failure when CI=true).
"""
import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

SKIP = 77
TIMEOUT = 60  # seconds for each external command

failures = []
skips = []


def fail(msg):
    failures.append(msg)
    print(f"FAIL {msg}")


def ok(msg):
    print(f"ok   {msg}")


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, **kw)


def need(tool):
    path = shutil.which(tool)
    if not path:
        skips.append(tool)
        print(f"SKIP {tool} not found")
    return path


# --- Prometheus rules ----------------------------------------------------------------------------

def check_rules(src):
    if not need("promtool"):
        return
    rules = sorted(glob.glob(os.path.join(src, "alerts", "*.rules.yml")))
    tests = sorted(glob.glob(os.path.join(src, "alerts", "*.test.yml")))
    if not rules:
        fail("no alerts/*.rules.yml")
    for path in rules:
        r = run(["promtool", "check", "rules", path])
        if r.returncode:
            fail(f"promtool check rules {path}:\n{r.stdout}{r.stderr}")
        else:
            ok(f"promtool check rules {os.path.relpath(path, src)}: {r.stdout.strip().splitlines()[-1].strip()}")
    covered = {os.path.basename(t).replace(".rules.test.yml", "") for t in tests}
    for path in rules:
        if os.path.basename(path).replace(".rules.yml", "") not in covered:
            fail(f"{os.path.relpath(path, src)} has no .rules.test.yml")
    for path in tests:
        # rule_files in a test file are relative to the test file.
        r = run(["promtool", "test", "rules", os.path.basename(path)], cwd=os.path.dirname(path))
        if r.returncode:
            fail(f"promtool test rules {path}:\n{r.stdout}{r.stderr}")
        else:
            ok(f"promtool test rules {os.path.relpath(path, src)}")


# --- Dashboards ----------------------------------------------------------------------------------

# Every dashboard filters by job and instance; per-workload dashboards also by the identity labels
# (docs/workloads.md), scry-block also by device.
REQUIRED_VARS = ("job", "instance")
WORKLOAD_VARS = ("namespace", "pod")
EXTRA_VARS = {"scry-block.json": ("device", "cgroup", "namespace", "pod")}

# Concrete stand-ins for Grafana's variables, enough for PromQL to parse.
SUBSTITUTIONS = [
    (r"\$__rate_interval\b", "1m"), (r"\$__interval\b", "15s"), (r"\$__range\b", "1h"),
    (r"\$__range_s\b", "3600"), (r"\$__interval_ms\b", "15000"), (r"\$__range_ms\b", "3600000"),
    (r"\$\{(\w+)(?::\w+)?\}", "x"), (r"\[\[(\w+)\]\]", "x"), (r"\$(\w+)", "x"),
]


def substitute(expr):
    for pattern, value in SUBSTITUTIONS:
        expr = re.sub(pattern, value, expr)
    return expr


def all_panels(panels):
    for p in panels:
        yield p
        yield from all_panels(p.get("panels", []))


def check_dashboard(path, src, exprs_out):
    rel = os.path.relpath(path, src)
    try:
        with open(path) as f:
            d = json.load(f)
    except (OSError, ValueError) as e:
        fail(f"{rel}: not valid JSON: {e}")
        return
    ok(f"{rel}: valid JSON, schemaVersion {d.get('schemaVersion')}")
    if not isinstance(d.get("schemaVersion"), int) or d["schemaVersion"] < 36:
        fail(f"{rel}: schemaVersion {d.get('schemaVersion')!r} (want >= 36)")
    for key in ("title", "uid", "panels", "templating"):
        if key not in d:
            fail(f"{rel}: no {key}")
    variables = {v.get("name"): v for v in d.get("templating", {}).get("list", [])}
    ds_var = any(v.get("type") == "datasource" and v.get("query") == "prometheus" for v in variables.values())
    ds_input = any(i.get("name") == "DS_PROMETHEUS" and i.get("pluginId") == "prometheus"
                   for i in d.get("__inputs", []))
    if not (ds_var or ds_input):
        fail(f"{rel}: neither a datasource variable (query prometheus) nor a DS_PROMETHEUS input")
    required = REQUIRED_VARS + EXTRA_VARS.get(os.path.basename(path), ())
    if any("pod" in t.get("expr", "") for p in all_panels(d.get("panels", [])) for t in p.get("targets", [])):
        required += WORKLOAD_VARS
    for name in dict.fromkeys(required):
        v = variables.get(name)
        if not v:
            fail(f"{rel}: no template variable {name}")
            continue
        q = v.get("query")
        q = q.get("query", "") if isinstance(q, dict) else (q or "")
        if v.get("type") != "query" or "label_values(" not in q:
            fail(f"{rel}: variable {name} is not a label_values() query: {q!r}")
    ok(f"{rel}: template variables {', '.join(n for n in variables)}")

    ids = set()
    n_targets = 0
    for p in all_panels(d.get("panels", [])):
        title = p.get("title", "?")
        if "id" in p:
            if p["id"] in ids:
                fail(f"{rel}: panel id {p['id']} used twice")
            ids.add(p["id"])
        if "gridPos" not in p:
            fail(f"{rel}: panel {title!r} has no gridPos")
        if p.get("type") in ("row", "text", "news", "dashlist", "alertlist"):
            continue
        targets = p.get("targets") or []
        if not targets:
            fail(f"{rel}: panel {title!r} has no targets")
        for t in targets:
            expr = (t.get("expr") or "").strip()
            if not expr:
                fail(f"{rel}: panel {title!r} target {t.get('refId')} has no expr")
                continue
            n_targets += 1
            exprs_out.append((f"{rel}: {title} [{t.get('refId')}]", expr))
            if re.search(r'job\s*=~?\s*"(?!\$)', expr):
                fail(f"{rel}: panel {title!r} hard-codes a job: {expr}")
            ds = t.get("datasource") or p.get("datasource")
            uid = ds.get("uid") if isinstance(ds, dict) else ds
            if uid not in ("${datasource}", "$datasource", "${DS_PROMETHEUS}"):
                fail(f"{rel}: panel {title!r} uses data source {uid!r}, not the dashboard's variable")
    ok(f"{rel}: {len(ids)} panels, {n_targets} targets, each with an expr")
    for v in variables.values():
        q = v.get("query")
        q = q.get("query", "") if isinstance(q, dict) else q
        if v.get("type") == "query" and q:
            m = re.fullmatch(r"\s*label_values\((.*),\s*\w+\)\s*", q, re.S)
            if m:
                exprs_out.append((f"{rel}: variable {v['name']}", m.group(1)))


def check_promql(exprs):
    """Parses each expression with promtool by wrapping it in a recording rule."""
    if not exprs or not need("promtool"):
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "exprs.rules.yml")
        with open(path, "w") as f:
            f.write("groups:\n  - name: dashboard_exprs\n    rules:\n")
            for i, (_, expr) in enumerate(exprs):
                f.write(f"      - record: dashboard_expr_{i}\n        expr: {json.dumps(substitute(expr))}\n")
        r = run(["promtool", "check", "rules", path])
        if r.returncode:
            out = r.stdout + r.stderr
            # promtool names the failing rule by its 1-based index in the group ("... rule N").
            for i, (where, expr) in enumerate(exprs):
                if re.search(rf"\brule {i + 1}\b|dashboard_expr_{i}\b", out):
                    fail(f"PromQL does not parse: {where}: {expr}")
            fail(f"promtool check rules on dashboard expressions:\n{out}")
        else:
            ok(f"{len(exprs)} dashboard expressions parse as PromQL")


# --- systemd units -------------------------------------------------------------------------------

def check_units(src, bin_dir, max_exposure):
    if not need("systemd-analyze"):
        return
    units = sorted(glob.glob(os.path.join(src, "systemd", "*.service")))
    if not units:
        fail("no systemd/*.service")
    for unit in units:
        rel = os.path.relpath(unit, src)
        name = os.path.basename(unit)
        text = open(unit).read()
        m = re.search(r"^ExecStart=(\S+)(.*)$", text, re.M)
        if not m:
            fail(f"{rel}: no ExecStart=")
            continue
        exe = m.group(1).lstrip("-@:+!")
        for directive in ("Type=notify", "NoNewPrivileges=yes", "ProtectSystem=strict", "CapabilityBoundingSet="):
            if not re.search(rf"^{re.escape(directive)}", text, re.M):
                fail(f"{rel}: no {directive}")

        # The unit as shipped: the only acceptable complaint is that the binary is not installed here.
        r = run(["systemd-analyze", "verify", unit])
        out = (r.stdout + r.stderr).strip()
        allowed = re.compile(rf"^{re.escape(name)}: Command {re.escape(exe)} is not executable: "
                             r"No such file or directory$")
        other = [line for line in out.splitlines() if line.strip() and not allowed.match(line.strip())]
        if other or (r.returncode and not os.path.exists(exe) and not out):
            fail(f"systemd-analyze verify {rel}:\n{out}")
        elif r.returncode and os.path.exists(exe):
            fail(f"systemd-analyze verify {rel} (rc {r.returncode}):\n{out}")

        # A copy whose ExecStart is a binary that exists: the built exporter, or /bin/true.
        built = os.path.join(os.path.abspath(bin_dir), os.path.basename(exe)) if bin_dir else ""
        stand_in = built if built and os.access(built, os.X_OK) else shutil.which("true")
        with tempfile.TemporaryDirectory() as tmp:
            copy = os.path.join(tmp, name)
            with open(copy, "w") as f:
                f.write(text.replace(f"ExecStart={m.group(1)}", f"ExecStart={stand_in}", 1))
            r = run(["systemd-analyze", "verify", copy])
            out = (r.stdout + r.stderr).strip()
            if r.returncode or out:
                fail(f"systemd-analyze verify {rel} (ExecStart={stand_in}): rc {r.returncode}\n{out}")
            else:
                ok(f"systemd-analyze verify {rel} (ExecStart={stand_in}): clean")

        threshold = int(round(max_exposure * 10))
        r = run(["systemd-analyze", "security", "--offline=yes", f"--threshold={threshold}", "--no-pager", unit])
        out = r.stdout + r.stderr
        m2 = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", out)
        if not m2:
            fail(f"systemd-analyze security {rel}: no overall exposure in output (rc {r.returncode}):\n{out}")
            continue
        exposure = float(m2.group(1))
        if exposure > max_exposure or r.returncode:
            bad = "\n".join(line for line in out.splitlines() if line.startswith("✗"))
            fail(f"systemd-analyze security {rel}: exposure {exposure} > {max_exposure} (rc {r.returncode})\n{bad}")
        else:
            ok(f"systemd-analyze security --offline=yes {rel}: exposure {exposure} <= {max_exposure}")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source-dir", default=os.path.normpath(os.path.join(here, "..", "..")))
    ap.add_argument("--bin-dir", default="", help="build/bin, to verify the units against the built binaries")
    ap.add_argument("--max-exposure", type=float, default=2.5)
    args = ap.parse_args()
    src = os.path.abspath(args.source_dir)

    check_rules(src)
    exprs = []
    dashboards = sorted(glob.glob(os.path.join(src, "dashboards", "*.json")))
    if not dashboards:
        fail("no dashboards/*.json")
    for path in dashboards:
        check_dashboard(path, src, exprs)
    check_promql(exprs)
    check_units(src, args.bin_dir, args.max_exposure)

    if failures:
        print(f"\n{len(failures)} check(s) failed")
        return 1
    if skips:
        if os.environ.get("CI") == "true":
            print(f"\nmissing tools under CI=true: {', '.join(skips)}")
            return 1
        print(f"\nskipped: missing {', '.join(skips)}")
        return SKIP
    print("\nall static checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
