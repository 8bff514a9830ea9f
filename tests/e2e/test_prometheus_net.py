#!/usr/bin/env python3
"""End-to-end: a real Prometheus scrapes the real scry-net while a pod-like client talks TCP to servers in
another network namespace; every PromQL expression of the shipped dashboard and alert rules evaluates and
returns data.

What it does (as root, Python 3 standard library only):
  1. makes a node root for --path.rootfs with the kubelet's files of one pod (namespace "web", pod
     "frontend-5f7c9", container "client") and the container's cgroup v2 directory below kubepods.slice;
     a server cgroup on the host;
  2. makes two network namespaces joined by a veth pair, with an nftables rule in the server's that drops
     one in 25 segments to the bulk port (retransmits, drops by reason);
  3. starts <bin-dir>/scry-net with a NOTIFY_SOCKET and Debian's prometheus (scrape and evaluation
     interval 1s, job "scry-net", rule_files = alerts/scry-net.rules.yml);
  4. runs, until the checks are done, rounds of: short connections to an accepting server, a bulk
     transfer through the lossy rule, connects to a closed port (refused), and a burst of connects to a
     server that never accepts with a backlog of 1 (listen overflows); clients in the pod's cgroup
     (tests/integration/net_workload.py);
  5. asserts:
     - every dashboard expression returns status success and a non-empty result (instant query and range
       query over the last 30 s), with every variable at "All" and with namespace and pod set to the
       test pod; nothing is expected empty;
     - every rule of alerts/scry-net.rules.yml is loaded, evaluated, healthy; each alert's expression
       without its conditions returns data; every metric name used has series in Prometheus;
     - ScryNetConnectFailures fires for the pod's refused connects and ScryNetListenOverflows for the
       server's namespace; ScryNetExporterDown, ScryNetLostEvents and ScryNetBPFMapNearlyFull are not
       active; ScryNetFeatureUnavailable is active exactly for the features the exporter reports
       unavailable (none on this kernel: all are required here);
     - `promtool check metrics` on a live scrape prints nothing; on SIGTERM the exporter sends
       STOPPING=1 and exits 0.
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
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2elib import (CMD_TIMEOUT, Deadline, Skip, alerts_by_name, cgroup2_root, check,  # noqa: E402
                    check_dashboard_exprs, check_metric_names, check_rule_exprs, dashboard_variables,
                    disarm_deadline, e2e_args, failures, free_port, log, makedirs_tracked, pod_node_root,
                    print_table, promtool_check_metrics, report, run, skipped, start_exporter,
                    start_prometheus, stop_exporter, wait_rules_evaluated, wait_value)

DEFAULT_DEADLINE = 240
PREFIX = "scry-e2e-net-"
JOB = "scry-net"
WORKLOAD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration", "net_workload.py")

NAMESPACE, POD, CONTAINER = "web", "frontend-5f7c9", "client"
POD_UID = "0c5d2f4e-8b1a-4f6e-9d3c-7a2b1e5f9c40"
CONTAINER_ID = "9c40aa51d2e3f4a5b6c7d8e9f0a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d"
POD_SLICE = ["kubepods.slice", "kubepods-besteffort.slice",
             "kubepods-besteffort-pod%s.slice" % POD_UID.replace("-", "_")]
CONTAINER_SCOPE = "cri-containerd-%s.scope" % CONTAINER_ID
SERVER_CGROUP = PREFIX + "server"

SERVER_NS, CLIENT_NS = "scrye2enets", "scrye2enetc"
VETH_S, VETH_C = "scrye2ens", "scrye2enc"
SERVER_IP, CLIENT_IP = "10.78.0.1", "10.78.0.2"
ACCEPT_PORT, SINK_PORT, CLOSED_PORT, NEVER_PORT = 7101, 7102, 7103, 7104


class Env:
    def __init__(self):
        self.tmp = None
        self.procs = []          # (name, Popen)
        self.notify = None
        self.made_cgroups = []   # directories this test created, parents first
        self.netns = False
        self.stop = threading.Event()

    def cleanup(self):
        self.stop.set()
        for name, p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(10)
        if self.netns:
            remove_netns()
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


def remove_netns():
    for ns in (SERVER_NS, CLIENT_NS):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=CMD_TIMEOUT)


def remove_leftovers():
    """Namespaces and cgroups of an earlier run that was killed before its cleanup."""
    remove_netns()
    root = cgroup2_root()
    if not root:
        return
    pod = os.path.join(root, *POD_SLICE)
    for d in (os.path.join(pod, CONTAINER_SCOPE), pod, os.path.join(root, SERVER_CGROUP)):
        if os.path.isdir(d):
            for pid in open(os.path.join(d, "cgroup.procs")).read().split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            rmdir_retry(d, tries=20)


def in_ns(ns, *cmd):
    return run(["ip", "netns", "exec", ns, *cmd])


def setup_network(env):
    run(["ip", "netns", "add", SERVER_NS])
    env.netns = True
    run(["ip", "netns", "add", CLIENT_NS])
    run(["ip", "link", "add", VETH_S, "netns", SERVER_NS, "type", "veth", "peer", "name", VETH_C, "netns", CLIENT_NS])
    for ns, dev, ip in ((SERVER_NS, VETH_S, SERVER_IP), (CLIENT_NS, VETH_C, CLIENT_IP)):
        in_ns(ns, "ip", "addr", "add", ip + "/24", "dev", dev)
        in_ns(ns, "ip", "link", "set", dev, "up")
        in_ns(ns, "ip", "link", "set", "lo", "up")
    table = "scrye2enet"
    in_ns(SERVER_NS, "nft", "add", "table", "inet", table)
    in_ns(SERVER_NS, "nft", "add", "chain", "inet", table, "input",
          "{ type filter hook input priority 0 ; policy accept ; }")
    in_ns(SERVER_NS, "nft", "add", "rule", "inet", table, "input", "tcp", "dport", str(SINK_PORT),
          "numgen", "random", "mod", "25", "==", "0", "drop")
    log(f"network namespaces {SERVER_NS} ({SERVER_IP}) and {CLIENT_NS} ({CLIENT_IP}); 1 in 25 segments to "
        f"port {SINK_PORT} dropped")


def setup_pod(env):
    """The kubelet's files below a node root, the container's cgroup and the server's. Returns (root,
    container cgroup dir, server cgroup dir)."""
    root = pod_node_root(env.tmp, NAMESPACE, POD, POD_UID, CONTAINER, CONTAINER_ID)
    cg2 = cgroup2_root()
    if not cg2:
        raise Skip("no cgroup v2 hierarchy mounted")
    path = makedirs_tracked(env.made_cgroups, cg2, POD_SLICE + [CONTAINER_SCOPE])
    server = os.path.join(cg2, SERVER_CGROUP)
    os.mkdir(server)
    env.made_cgroups.append(server)
    log(f"pod {NAMESPACE}/{POD} container {CONTAINER}: {path}; servers in {server}")
    return root, path, server


def workload(ns, cgroup, *args):
    return [sys.executable, WORKLOAD, ns, cgroup, *map(str, args)]


def start_server(env, server_cg, port, mode, backlog):
    p = subprocess.Popen(workload(SERVER_NS, server_cg, "serve", port, mode, backlog), stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    env.procs.append((f"server-{mode}", p))
    line = p.stdout.readline().strip()
    if line != "ready":
        raise RuntimeError(f"server {mode} on {port} did not start: {line!r}")


def client_rounds(env, pod_cg, counts):
    """Rounds of client traffic until env.stop is set; counts the rounds."""
    steps = (("connect", SERVER_IP, ACCEPT_PORT, 5), ("bulk", SERVER_IP, SINK_PORT, 4 << 20),
             ("connect", SERVER_IP, CLOSED_PORT, 3), ("synflood", SERVER_IP, NEVER_PORT, 8))
    while not env.stop.is_set():
        for step in steps:
            if env.stop.is_set():
                return
            r = subprocess.run(workload(CLIENT_NS, pod_cg, *step), capture_output=True, text=True,
                               timeout=CMD_TIMEOUT)
            if r.returncode:
                counts["errors"] += 1
                log(f"workload {step[0]} failed: {r.stderr.strip()[-300:]}")
        counts["rounds"] += 1


def pod_sel(metric, extra=""):
    return f'{metric}{{job="{JOB}", namespace="{NAMESPACE}", pod="{POD}", container="{CONTAINER}"{extra}}}'


def main():
    args, src, binary, ci = e2e_args(__doc__, "net", DEFAULT_DEADLINE)

    env = Env()
    rows = []
    exporter_log = prom_log = None
    try:
        if os.geteuid() != 0:
            raise Skip("needs root (BPF, network namespaces, cgroups)")
        if not os.access(binary, os.X_OK):
            raise Skip(f"{binary} not built")
        for tool in ("prometheus", "promtool", "ip", "nft"):
            if not shutil.which(tool):
                raise Skip(f"{tool} not installed")

        remove_leftovers()
        env.tmp = tempfile.mkdtemp(prefix=PREFIX)
        root, pod_cg, server_cg = setup_pod(env)
        setup_network(env)

        exporter_port, prom_port = free_port(), free_port()
        cmd = [binary, f"--web.listen-address=127.0.0.1:{exporter_port}", f"--path.rootfs={root}",
               "--collector.windows", "--log.level=info"]
        exporter, exporter_log = start_exporter(env, "scry-net", cmd)
        rules_path = os.path.join(src, "alerts", "scry-net.rules.yml")
        prom, prom_log = start_prometheus(env, JOB, rules_path, exporter_port, prom_port)
        t0 = time.time()

        start_server(env, server_cg, ACCEPT_PORT, "accept", 64)
        start_server(env, server_cg, SINK_PORT, "sink", 16)
        start_server(env, server_cg, NEVER_PORT, "never", 1)
        counts = {"rounds": 0, "errors": 0}
        driver = threading.Thread(target=client_rounds, args=(env, pod_cg, counts), daemon=True)
        driver.start()
        log(f"workload: rounds of 5 connects to :{ACCEPT_PORT}, 4 MiB to :{SINK_PORT} (lossy), 3 connects to "
            f"closed :{CLOSED_PORT}, 8 connects to :{NEVER_PORT} (never accepts, backlog 1)")

        client = f', direction="client", peer="{SERVER_IP}"'
        wait_value(prom, pod_sel("scry_net_connections_opened_total", client + f', port="{ACCEPT_PORT}"'),
                   "connections", timeout=60)
        wait_value(prom, pod_sel("scry_net_retransmitted_segments_total", client + f', port="{SINK_PORT}"'),
                   "retransmits", timeout=60)
        wait_value(prom, pod_sel("scry_net_connections_failed_total", client + f', port="{CLOSED_PORT}", '
                                 'reason="refused"'), "refused connects", minimum=5, timeout=60)
        netns = str(os.stat("/run/netns/" + SERVER_NS).st_ino)
        wait_value(prom, f'scry_net_listen_overflows_total{{job="{JOB}", netns="{netns}"}}', "listen overflows",
                   timeout=60)
        # the rates over the dashboard's 4 s windows and the alerts' increase() see a few more rounds
        time.sleep(6)

        rules = wait_rules_evaluated(prom, rules_path)
        features = {}
        for s in prom.query(f'scry_feature_available{{job="{JOB}"}}')["data"]["result"]:
            features[s["metric"]["feature"]] = s["value"][1] == "1"
        unavailable = sorted(f for f, ok in features.items() if not ok)
        log(f"features: {', '.join(f'{f}={int(ok)}' for f, ok in sorted(features.items()))}")
        check(not unavailable, f"features unavailable on this kernel: {unavailable} (the test needs all of them)")

        def expected_empty(_expr):
            return None  # the workload makes every series exist

        dashboard = json.load(open(os.path.join(src, "dashboards", "scry-net.json")))
        range_s = int(time.time() - t0) + 60
        values, resolved = dashboard_variables(prom, dashboard, {"datasource": "prometheus"}, use_all_value=True)
        log("template variables (All): " + "; ".join(f"{k}={v}" for k, v in values.items()))
        check(NAMESPACE in resolved.get("namespace", []), f"$namespace offers {resolved.get('namespace')}")
        check(POD in resolved.get("pod", []), f"$pod does not offer {POD}: {resolved.get('pod')}")
        check("/" + SERVER_CGROUP in resolved.get("cgroup", []),
              f"$cgroup does not offer the servers' cgroup: {resolved.get('cgroup')}")
        all_exprs = check_dashboard_exprs(prom, dashboard, values, range_s, expected_empty, rows, tag="all")
        pod_values, _ = dashboard_variables(prom, dashboard, {"datasource": "prometheus", "namespace": NAMESPACE,
                                                               "pod": POD}, use_all_value=True)
        # server-side and listener panels have no series of the client pod: checked with All above
        pod_rows = []
        server_side = ('direction="server"', "handshake", "scry_net_listen_queue", "scry_net_listener_drops")
        check_dashboard_exprs(prom, dashboard, pod_values, range_s,
                              lambda e: ["server side"] if any(s in e for s in server_side) else None,
                              pod_rows, tag="pod")
        rows += pod_rows

        all_exprs += check_rule_exprs(prom, rules, expected_empty, rows)
        check_metric_names(prom, all_exprs, t0 - 5, lambda _name: None)

        state = alerts_by_name(prom)
        refused = [a for a in state.get("ScryNetConnectFailures", []) if a["labels"].get("pod") == POD
                   and a["labels"].get("reason") == "refused" and a["labels"].get("port") == str(CLOSED_PORT)]
        check(len(refused) == 1 and refused[0]["state"] == "firing",
              f"ScryNetConnectFailures should fire for {POD} -> :{CLOSED_PORT} refused: "
              f"{state.get('ScryNetConnectFailures')}")
        overflow = [a for a in state.get("ScryNetListenOverflows", []) if a["labels"].get("netns") == netns]
        check(len(overflow) == 1 and overflow[0]["state"] == "firing",
              f"ScryNetListenOverflows should fire for netns {netns}: {state.get('ScryNetListenOverflows')}")
        for a in refused + overflow:
            log(f"alert {a['labels']['alertname']} {a['state']}: {a['annotations']['summary']}")
        for quiet in ("ScryNetExporterDown", "ScryNetLostEvents", "ScryNetBPFMapNearlyFull"):
            check(quiet not in state, f"{quiet} should not be active: {state.get(quiet)}")
        fu = sorted(a["labels"]["feature"] for a in state.get("ScryNetFeatureUnavailable", []))
        check(fu == unavailable, f"ScryNetFeatureUnavailable active for {fu}, features unavailable: {unavailable}")

        env.stop.set()
        driver.join(CMD_TIMEOUT * 4)
        log(f"workload: {counts['rounds']} rounds, {counts['errors']} failed steps")
        check(counts["errors"] == 0, f"{counts['errors']} workload steps failed")

        promtool_check_metrics(exporter_port)
        stop_exporter(env, "scry-net", exporter)

        return report(rows, (("scry-net", exporter_log), ("prometheus", prom_log)))
    except Skip as e:
        return skipped(e, ci)
    except Exception as e:  # noqa: BLE001 (any error, incl. Deadline, fails the test after cleanup)
        if rows:
            print_table(rows)
        log(f"FAIL: {type(e).__name__}: {e}")
        for path in (exporter_log, prom_log):
            if path and os.path.exists(path):
                log(f"--- {os.path.basename(path)} (tail) ---\n" + "".join(open(path).readlines()[-30:]))
        return 1
    finally:
        disarm_deadline()
        if args.keep and failures and env.tmp:
            log(f"keeping logs: {env.tmp}")
            keep, env.tmp = env.tmp, None
            env.cleanup()
            env.tmp = keep
        else:
            env.cleanup()
        log("cleanup: processes stopped, network namespaces and cgroups removed")


if __name__ == "__main__":
    sys.exit(main())
