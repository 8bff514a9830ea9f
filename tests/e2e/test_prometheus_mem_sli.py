#!/usr/bin/env python3
"""End-to-end: a real Prometheus scrapes the real scry-mem-sli while a pod-like workload runs out of
memory; every PromQL expression of the shipped dashboard and alert rules evaluates and returns data.

What it does (as root, Python 3 standard library only):
  1. makes a node root for --path.rootfs with the kubelet's files of one pod (namespace "batch", pod
     "etl-5f6d8c", container "worker") and the container's cgroup v2 directory below kubepods.slice; a
     memory limit of 48 MiB without swap for the container (memory.max on cgroup v2 with the memory
     controller, else a v1 memory cgroup on hybrid hosts, which the container's tasks join too);
  2. starts <bin-dir>/scry-mem-sli with a NOTIFY_SOCKET and Debian's prometheus (scrape and evaluation
     interval 1s, job "scry-mem-sli", rule_files = alerts/scry-mem-sli.rules.yml);
  3. runs in the container: a process that maps and unmaps memory in a loop (faults, VM growth), and
     one that touches 1 MiB after another past the limit until the kernel OOM-kills it (memcg reclaim
     stalls, then exactly one OOM kill, which must show in Prometheus and in the exporter's log);
  4. asserts:
     - every dashboard expression returns status success and data (instant and range query), with every
       variable at "All" and with namespace and pod set to the test pod. Expected empty, and checked to
       be: the swap-in expressions when the kernel gives that feature no hook (this machine: no
       kprobes, fentry refused; its metrics are then absent by design). Swap-ins on a
       kernel that has the hook are not driven (no swap device here), so they are empty there too;
     - every rule is loaded, evaluated and healthy; the recording rule returns data; each alert's
       expression without its condition returns data;
     - every metric name used by the dashboard and rules has series in Prometheus (but those of
       unavailable features);
     - ScryMemOOMKill is firing for the test container with scope="memcg"; ScryMemExporterDown is not.
       ScryMemReclaimStallHigh is not asserted (its for: is 10m);
     - `promtool check metrics` on a live scrape prints nothing;
     - on SIGTERM the exporter sends STOPPING=1 and exits 0.
  Everything it starts or creates is removed at the end, also on failure or timeout.

Exit: 0 pass, 1 fail, 77 skip (not root, no binary, missing tools); under CI=true a skip is a failure.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2elib import (Deadline, Skip, alerts_by_name, cgroup2_root, check,  # noqa: E402
                    check_dashboard_exprs, check_metric_names, check_rule_exprs, dashboard_variables,
                    die_with_parent, disarm_deadline, e2e_args, free_port, log, makedirs_tracked,
                    pod_node_root, print_table, promtool_check_metrics, report, series_value, skipped,
                    start_exporter, start_prometheus, stop_exporter, wait_for, wait_rules_evaluated)

DEFAULT_DEADLINE = 240
PREFIX = "scry-e2e-mem-"
JOB = "scry-mem-sli"
LIMIT = 48 << 20

NAMESPACE, POD, CONTAINER = "batch", "etl-5f6d8c", "worker"
POD_UID = "0c3e5a41-93d2-4b7e-8f1a-6d2b9e4c7a10"
CONTAINER_ID = "7a10c3e5a4193d24b7e8f1a6d2b9e4c70c3e5a4193d24b7e8f1a6d2b9e4c7a10"
POD_SLICE = ["kubepods.slice", "kubepods-burstable.slice",
             "kubepods-burstable-pod%s.slice" % POD_UID.replace("-", "_")]
CONTAINER_SCOPE = "cri-containerd-%s.scope" % CONTAINER_ID
V1_MEMORY = "/sys/fs/cgroup/memory"

PY = sys.executable
# Maps, touches and unmaps 4 MiB in a loop (well under the limit).
CHURN = """import mmap, time
while True:
    m = mmap.mmap(-1, 4 << 20)
    for off in range(0, 4 << 20, 4096):
        m[off] = 1
    m.close()
    time.sleep(0.05)
"""
# Touches 1 MiB after another, up to 4 times the limit: the OOM killer stops it.
HOG = """import mmap, sys
chunks = []
for _ in range(4 * %d):
    m = mmap.mmap(-1, 1 << 20)
    for off in range(0, 1 << 20, 4096):
        m[off] = 1
    chunks.append(m)
print("survived")
""" % (LIMIT >> 20)


class Env:
    def __init__(self):
        self.tmp = None
        self.procs = []          # (name, Popen)
        self.notify = None
        self.made_cgroups = []   # directories this test created, parents first

    def cleanup(self):
        for name, p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(10)
        for d in reversed(self.made_cgroups):
            rmdir_retry(d)
        if self.notify:
            self.notify.close()
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)


def rmdir_retry(path, tries=100):
    """A cgroup can be removed only once its last task is gone, which lags behind wait() a little."""
    for _ in range(tries):
        try:
            os.rmdir(path)
            return True
        except FileNotFoundError:
            return True
        except OSError:
            time.sleep(0.05)
    log(f"cleanup: cannot remove {path}")
    return False


def kill_cgroup(path):
    try:
        for pid in open(os.path.join(path, "cgroup.procs")).read().split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
    except OSError:
        pass


def remove_leftovers():
    """Cgroups of an earlier run that was killed before its cleanup."""
    root = cgroup2_root()
    if root:
        pod = os.path.join(root, *POD_SLICE)
        scope = os.path.join(pod, CONTAINER_SCOPE)
        for d in (scope, pod):
            if os.path.isdir(d):
                kill_cgroup(d)
                rmdir_retry(d, tries=20)
    if os.path.isdir(V1_MEMORY):
        for name in os.listdir(V1_MEMORY):
            if name.startswith(PREFIX):
                kill_cgroup(os.path.join(V1_MEMORY, name))
                rmdir_retry(os.path.join(V1_MEMORY, name), tries=20)


def write(path, value):
    with open(path, "w") as f:
        f.write(str(value))


def setup_pod(env):
    """The kubelet's files below a node root, and the container's cgroup with its memory limit. Returns
    (root, the cgroup.procs files the container's tasks join)."""
    root = pod_node_root(env.tmp, NAMESPACE, POD, POD_UID, CONTAINER, CONTAINER_ID)

    cg2 = cgroup2_root()
    if not cg2:
        raise Skip("no cgroup v2 hierarchy mounted")
    container = makedirs_tracked(env.made_cgroups, cg2, POD_SLICE + [CONTAINER_SCOPE])
    procs = [os.path.join(container, "cgroup.procs")]
    if "memory" in open(os.path.join(cg2, "cgroup.controllers")).read().split():
        path = cg2
        for part in POD_SLICE:
            write(os.path.join(path, "cgroup.subtree_control"), "+memory")
            path = os.path.join(path, part)
        write(os.path.join(path, "cgroup.subtree_control"), "+memory")
        write(os.path.join(container, "memory.max"), LIMIT)
        if os.path.exists(os.path.join(container, "memory.swap.max")):
            write(os.path.join(container, "memory.swap.max"), 0)
        how = f"memory.max on {container}"
    elif os.path.exists(os.path.join(V1_MEMORY, "memory.limit_in_bytes")):
        # At the container's path: its memory cgroup's counters are its page faults.
        v1 = makedirs_tracked(env.made_cgroups, V1_MEMORY, POD_SLICE + [CONTAINER_SCOPE])
        write(os.path.join(v1, "memory.limit_in_bytes"), LIMIT)
        if os.path.exists(os.path.join(v1, "memory.memsw.limit_in_bytes")):
            write(os.path.join(v1, "memory.memsw.limit_in_bytes"), LIMIT)
        procs.append(os.path.join(v1, "cgroup.procs"))
        how = f"v1 memory.limit_in_bytes on {v1}"
    else:
        raise Skip("no memory controller (neither cgroup v2 memory nor v1 memory)")
    log(f"pod {NAMESPACE}/{POD} container {CONTAINER}: {container}; memory limit {LIMIT >> 20} MiB: {how}")
    return root, procs


def in_cgroups(procs_files):
    def enter():
        die_with_parent()
        for path in procs_files:
            write(path, 0)
    return enter


def pod_sel(metric, extra=""):
    return f'{metric}{{job="{JOB}", namespace="{NAMESPACE}", pod="{POD}", container="{CONTAINER}"{extra}}}'


def main():
    args, src, binary, ci = e2e_args(__doc__, "mem-sli", DEFAULT_DEADLINE)

    env = Env()
    rows = []
    try:
        if os.geteuid() != 0:
            raise Skip("needs root (BPF, cgroups)")
        if not os.access(binary, os.X_OK):
            raise Skip(f"{binary} not built")
        for tool in ("prometheus", "promtool"):
            if not shutil.which(tool):
                raise Skip(f"{tool} not installed")

        remove_leftovers()
        env.tmp = tempfile.mkdtemp(prefix=PREFIX)
        root, procs = setup_pod(env)

        exporter_port, prom_port = free_port(), free_port()
        cmd = [binary, f"--web.listen-address=127.0.0.1:{exporter_port}", f"--path.rootfs={root}",
               "--log.level=info"]
        exporter, exporter_log = start_exporter(env, "scry-mem-sli", cmd)
        rules_path = os.path.join(src, "alerts", "scry-mem-sli.rules.yml")
        prom, prom_log = start_prometheus(env, JOB, rules_path, exporter_port, prom_port)
        t0 = time.time()

        # --- the workload ---
        churn = subprocess.Popen([PY, "-c", CHURN], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 preexec_fn=in_cgroups(procs))
        env.procs.append(("churn", churn))
        # The container's OOM kill series must be in Prometheus at 0 before the kill, or increase() (the
        # alert) has no earlier sample to see it rise from.
        wait_for("the container's OOM kill series at 0",
                 lambda: series_value(prom, pod_sel("scry_mem_oom_kills_total", ', scope="memcg"')) == 0, 30)
        hog = subprocess.run([PY, "-c", HOG], capture_output=True, text=True, timeout=60,
                             preexec_fn=in_cgroups(procs))
        check(hog.returncode == -signal.SIGKILL and "survived" not in hog.stdout,
              f"the hog should have been OOM-killed (SIGKILL), got exit {hog.returncode}")
        log(f"workload: mmap churn (pid {churn.pid}) and a hog past {LIMIT >> 20} MiB, killed: {hog.returncode}")

        kills = wait_for("the OOM kill in Prometheus",
                         lambda: series_value(prom, pod_sel("scry_mem_oom_kills_total", ', scope="memcg"')), 30)
        check(kills == 1, f"OOM kills of the container: {kills}, want exactly 1")
        lines = wait_for("the oom kill log line", lambda: [l for l in open(exporter_log) if 'msg="oom kill"' in l],
                         10)
        check(len(lines) == 1 and f"pod={POD}" in lines[0] and "scope=memcg" in lines[0],
              f"oom kill log lines: {lines}")
        wait_for("reclaim stalls of the container",
                 lambda: series_value(prom, pod_sel("scry_mem_reclaim_stall_seconds_count", ', kind="memcg"')), 30)
        time.sleep(5)  # samples for the dashboard's 4 s rate windows

        rules = wait_rules_evaluated(prom, rules_path)

        features = {}
        for s in prom.query(f'scry_feature_available{{job="{JOB}"}}')["data"]["result"]:
            features[s["metric"]["feature"]] = s["value"][1] == "1"
        log(f"features: {', '.join(f'{f}={int(ok)}' for f, ok in sorted(features.items()))}")
        absent = {"swap_in": ["scry_mem_swapin_duration_seconds", "scry_mem_node_swapin_duration_seconds"]}
        if not features.get("memcg_faults"):  # the default source; the fault hook's major faults need fexit
            absent["major_faults"] = ["scry_mem_major_page_faults_total", "scry_mem_node_major_page_faults_total"]
        for f in ("oom_kills", "memcg_reclaim", "memcg_faults", "vm_growth"):
            check(features.get(f), f"feature {f} unavailable (the test needs it)")

        def expected_empty(expr):
            why = [f"{f} unavailable" for f, names in absent.items() if not features.get(f)
                   and any(n in expr for n in names)]
            if not why and "swapin_duration_seconds_count" in expr:
                why = ["no swap device: no swap-in"]  # a per-workload swap-in rate needs one
            return why or None

        def absent_ok(name):
            why = [f"{f} unavailable" for f, names in absent.items() if not features.get(f)
                   and any(name.startswith(n) for n in names)]
            return ", ".join(why) or None

        # --- dashboard expressions: all workloads, then the test pod ---
        dashboard = json.load(open(os.path.join(src, "dashboards", "scry-mem-sli.json")))
        range_s = int(time.time() - t0) + 60
        values, resolved = dashboard_variables(prom, dashboard, {"datasource": "prometheus"}, use_all_value=True)
        log("template variables (All): " + "; ".join(f"{k}={v}" for k, v in values.items()))
        check(NAMESPACE in resolved.get("namespace", []), f"$namespace offers {resolved.get('namespace')}")
        check(POD in resolved.get("pod", []), f"$pod does not offer {POD}: {resolved.get('pod')}")
        all_exprs = check_dashboard_exprs(prom, dashboard, values, range_s, expected_empty, rows, tag="all")
        pod_values, _ = dashboard_variables(prom, dashboard, {"datasource": "prometheus", "namespace": NAMESPACE,
                                                               "pod": POD}, use_all_value=True)
        check_dashboard_exprs(prom, dashboard, pod_values, range_s, expected_empty, rows, tag="pod")

        # --- rule expressions, metric names ---
        all_exprs += check_rule_exprs(prom, rules, expected_empty, rows)
        check_metric_names(prom, all_exprs, t0 - 5, absent_ok)

        # --- alerts ---
        state = alerts_by_name(prom)
        mine = [a for a in state.get("ScryMemOOMKill", []) if a["labels"].get("pod") == POD
                and a["labels"].get("container") == CONTAINER and a["labels"].get("scope") == "memcg"]
        check(len(mine) == 1 and mine[0]["state"] == "firing",
              f"ScryMemOOMKill should fire for {NAMESPACE}/{POD}/{CONTAINER}: {state.get('ScryMemOOMKill')}")
        check("ScryMemExporterDown" not in state, f"ScryMemExporterDown is active: {state.get('ScryMemExporterDown')}")

        promtool_check_metrics(exporter_port)
        stop_exporter(env, "scry-mem-sli", exporter)

        return report(rows, (("scry-mem-sli", exporter_log), ("prometheus", prom_log)))
    except Skip as e:
        return skipped(e, ci)
    except Exception as e:  # noqa: BLE001 (any error, incl. Deadline, fails the test after cleanup)
        if rows:
            print_table(rows)
        log(f"FAIL: {type(e).__name__}: {e}")
        return 1
    finally:
        disarm_deadline()
        env.cleanup()
        log("cleanup: processes stopped, cgroups removed")


if __name__ == "__main__":
    sys.exit(main())
