#!/usr/bin/env python3
"""End-to-end: a real Prometheus scrapes the real scry-block; every PromQL expression of the shipped
dashboard and alert rules evaluates and returns data.

What it does (as root, Python 3 standard library only):
  1. makes a loop device backed by a sparse file on a tiny tmpfs, so that direct writes past the tmpfs
     size fail with ENOSPC at the block layer;
  2. makes a plain cgroup for a host-service-like workload, and a node root for --path.rootfs with the
     kubelet's files of one pod (namespace "shop", pod "ledger-0", container "db") and the container's
     cgroup v2 directory below kubepods.slice;
     starts <bin-dir>/scry-block on a free loopback port (--collector.cgroup --bpf.stats
     --path.rootfs), with a NOTIFY_SOCKET, and waits for READY=1;
  3. starts Debian's prometheus on a free loopback port (scrape and evaluation interval 1s, job
     "scry-block", rule_files = alerts/scry-block.rules.yml, storage in a temp dir) and waits until
     the target is up;
  4. drives I/O with dd: writes on the loop device from the plain cgroup, reads from the pod's
     container, then two bursts of failing writes;
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
     - $cgroup offers the plain cgroup, $namespace and $pod the test pod, and both have per-workload
       latency series;
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
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2elib import (CMD_TIMEOUT, Deadline, Skip, alerts_by_name, cgroup2_root, check,  # noqa: E402
                    check_dashboard_exprs, check_metric_names, check_rule_exprs, dashboard_variables,
                    disarm_deadline, e2e_args, failures, free_port, log, log_tail, makedirs_tracked,
                    metric_names, pod_node_root, print_table, promtool_check_metrics, report, run,
                    series_value, skipped, start_exporter, start_prometheus, stop_exporter, wait_for,
                    wait_rules_evaluated)

DEFAULT_DEADLINE = 240    # the whole test; the CTest TIMEOUT is above it so that cleanup runs
PREFIX = "scry-e2e-prom-"
JOB = "scry-block"

# The test pod (fixed ids, so that a run killed before its cleanup can be cleaned up by the next one).
NAMESPACE, POD, CONTAINER = "shop", "ledger-0", "db"
POD_UID = "6c0d7f4e-2b1a-4e8d-9c3f-0a1b2c3de2eb"
CONTAINER_ID = "e2eb10cd3bf6641bdb0e2050b76932cbb2e6034a0ddacc1d9bea82a6ba57f7cf"
POD_SLICE = ["kubepods.slice", "kubepods-besteffort.slice",
             "kubepods-besteffort-pod%s.slice" % POD_UID.replace("-", "_")]
CONTAINER_SCOPE = "cri-containerd-%s.scope" % CONTAINER_ID

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

def feature_of(metric):
    for prefix, feature in FEATURE_OF:
        if metric.startswith(prefix):
            return feature
    return None



# --- the test ------------------------------------------------------------------------------------

class Env:
    def __init__(self):
        self.tmp = None
        self.mountpoint = None
        self.loop = None
        self.procs = []  # (name, Popen)
        self.notify = None
        self.cgroup_dir = None  # a cgroup v2 directory for the workload
        self.made_cgroups = []  # the pod's cgroup directories, parents first

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
        for d in reversed(self.made_cgroups + ([self.cgroup_dir] if self.cgroup_dir else [])):
            try:
                os.rmdir(d)
            except OSError as e:
                log(f"cleanup: cannot remove {d}: {e}")
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
        stale = [os.path.join(root, name) for name in os.listdir(root) if name.startswith(PREFIX)]
        pod = os.path.join(root, *POD_SLICE)
        stale += [os.path.join(pod, CONTAINER_SCOPE), pod]
        for d in stale:
            try:
                os.rmdir(d)
            except OSError:
                pass



def setup_cgroup(env):
    root = cgroup2_root()
    if not root:
        raise Skip("no cgroup v2 hierarchy mounted")
    env.cgroup_dir = os.path.join(root, os.path.basename(env.tmp))
    os.mkdir(env.cgroup_dir)
    return "/" + os.path.basename(env.tmp)


def setup_pod(env):
    """The kubelet's files below a node root, and the container's cgroup. Returns (root, the container's
    cgroup.procs)."""
    root = pod_node_root(env.tmp, NAMESPACE, POD, POD_UID, CONTAINER, CONTAINER_ID)
    path = makedirs_tracked(env.made_cgroups, cgroup2_root(), POD_SLICE + [CONTAINER_SCOPE])
    return root, os.path.join(path, "cgroup.procs")


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
POD_CGROUP = None       # cgroup.procs of the pod's container, set in main()


def dd(*args, procs=None):
    """dd in the workload cgroup, or in the cgroup whose cgroup.procs is procs."""
    def enter():
        with open(procs or WORKLOAD_CGROUP, "w") as f:
            f.write("0")  # "0": the writing process itself
    return subprocess.run(["dd", "status=none", *args], capture_output=True, text=True, timeout=CMD_TIMEOUT,
                          preexec_fn=enter)


def workload(prom, loop):
    """Reads and writes that succeed, then two bursts of writes that fail with ENOSPC, each seen by
    Prometheus (the second one makes increase() over the error counter positive)."""
    dev = f"/dev/{loop}"
    r = dd("if=/dev/zero", f"of={dev}", "bs=64k", "count=32", "oflag=direct")
    check(r.returncode == 0, f"dd write to {dev} failed: {r.stderr}")
    r = dd(f"if={dev}", "of=/dev/null", "bs=4k", "count=256", "iflag=direct", procs=POD_CGROUP)
    check(r.returncode == 0, f"dd read from {dev} in the pod failed: {r.stderr}")
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
    dd(f"if={dev}", "of=/dev/null", "bs=4k", "count=64", "iflag=direct", procs=POD_CGROUP)


def main():
    args, src, binary, ci = e2e_args(__doc__, "block", DEFAULT_DEADLINE)

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
        global WORKLOAD_CGROUP, POD_CGROUP
        cgroup = setup_cgroup(env)
        WORKLOAD_CGROUP = os.path.join(env.cgroup_dir, "cgroup.procs")
        log(f"workload cgroup {cgroup} ({env.cgroup_dir})")
        node_root, POD_CGROUP = setup_pod(env)
        log(f"pod {NAMESPACE}/{POD} container {CONTAINER}: {os.path.dirname(POD_CGROUP)}")

        exporter_port, prom_port = free_port(), free_port()
        cmd = [binary, f"--web.listen-address=127.0.0.1:{exporter_port}", "--collector.cgroup", "--bpf.stats",
               f"--path.rootfs={node_root}", "--log.level=info"]
        exporter, exporter_log = start_exporter(env, "scry-block", cmd)
        rules_path = os.path.join(src, "alerts", "scry-block.rules.yml")
        prom, prom_log = start_prometheus(env, JOB, rules_path, exporter_port, prom_port)
        t0 = time.time()
        workload(prom, loop)

        # Wait until every rule was evaluated after the workload (and the recording rules have data).
        rules = wait_rules_evaluated(prom, rules_path)

        features = {}
        fr = prom.query(f'scry_feature_available{{job="{JOB}"}}')
        for s in fr["data"]["result"]:
            features[s["metric"]["feature"]] = s["value"][1] == "1"
        unavailable = sorted(f for f, ok in features.items() if not ok)
        log(f"features: {', '.join(f'{f}={int(ok)}' for f, ok in sorted(features.items()))}")

        def expected_empty(expr):
            """The unavailable features that explain an empty result, or None."""
            names = [n for n in metric_names(expr) if n.startswith("scry_block_")]
            feats = sorted({feature_of(n) for n in names} & set(unavailable))
            return [f"{f} unavailable" for f in feats] or None

        # --- dashboard expressions ---
        dash_path = os.path.join(src, "dashboards", "scry-block.json")
        dashboard = json.load(open(dash_path))
        range_s = int(time.time() - t0) + 60
        # 'All' sends each variable's allValue, as Grafana does: ".*" also matches the empty cgroup
        # label of containers and the empty pod label of host services.
        values, resolved = dashboard_variables(prom, dashboard, {"datasource": "prometheus"}, use_all_value=True)
        log("template variables (All): " + "; ".join(f"{k}={v}" for k, v in values.items()))
        check(loop in resolved.get("device", []), f"$device does not offer the loop device {loop}: {resolved.get('device')}")
        check(cgroup in resolved.get("cgroup", []), f"$cgroup does not offer the workload cgroup {cgroup}: {resolved.get('cgroup')}")
        cg_sel = f'scry_block_cgroup_io_duration_seconds_count{{job="{JOB}", cgroup="{cgroup}", device="{loop}"}}'
        cg_n = series_value(prom, cg_sel)
        check(cg_n is not None and cg_n > 0, f"{cg_sel} = {cg_n}, want > 0")
        log(f"per-cgroup: {cg_sel} = {cg_n}")
        for var, want in (("namespace", NAMESPACE), ("pod", POD)):
            check(want in resolved.get(var, []), f"${var} does not offer {want}: {resolved.get(var)}")
        pod_sel = (f'scry_block_cgroup_io_duration_seconds_count{{job="{JOB}", namespace="{NAMESPACE}", pod="{POD}", '
                   f'container="{CONTAINER}", container_id="{CONTAINER_ID}", cgroup="", device="{loop}"}}')
        pod_n = series_value(prom, pod_sel)
        check(pod_n is not None and pod_n > 0, f"{pod_sel} = {pod_n}, want > 0")
        log(f"per-pod: {pod_sel} = {pod_n}")

        all_exprs = check_dashboard_exprs(prom, dashboard, values, range_s, expected_empty, rows, tag="all")
        # The same with the test pod selected: its I/O only (reads of the loop device).
        pod_values, _ = dashboard_variables(prom, dashboard, {"datasource": "prometheus", "namespace": NAMESPACE,
                                                              "pod": POD}, use_all_value=True)
        check_dashboard_exprs(prom, dashboard, pod_values, range_s, expected_empty, rows, tag="pod")

        # --- rule expressions ---
        all_exprs += check_rule_exprs(prom, rules, expected_empty, rows)

        # --- every metric name used exists ---
        def absent_ok(name):
            feat = feature_of(name) if name.startswith("scry_block_") else None
            return f"feature {feat} unavailable" if feat in unavailable else None

        check_metric_names(prom, all_exprs, t0 - 5, absent_ok)

        # --- alerts ---
        state = alerts_by_name(prom)
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
        promtool_check_metrics(exporter_port)

        # --- orderly stop: STOPPING=1 and exit 0 ---
        stop_exporter(env, "scry-block", exporter)

        return report(rows, (("scry-block", exporter_log), ("prometheus", prom_log)))
    except Skip as e:
        return skipped(e, ci)
    except Exception as e:  # noqa: BLE001 (any error, incl. Deadline, fails the test after cleanup)
        if rows:
            print_table(rows)
        log(f"FAIL: {type(e).__name__}: {e}")
        for name, p in env.procs:
            path = os.path.join(env.tmp or "", f"{name}.log")
            if os.path.exists(path):
                log_tail(name, path)
        return 1
    finally:
        disarm_deadline()
        if args.keep and failures and env.tmp:
            log(f"keeping logs: {env.tmp}")
            env.tmp = None
        env.cleanup()
        log("cleanup: processes stopped, loop device detached, tmpfs unmounted, temp dir removed")



if __name__ == "__main__":
    sys.exit(main())
