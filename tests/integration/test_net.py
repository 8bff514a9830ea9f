"""scry-net on the running kernel against TCP traffic with known answers.

Two network namespaces joined by a veth pair: servers in one, clients in the other, each workload in a
cgroup of its own. Ground truth: the number of connections the clients made and how each ended (as
the clients saw it), and the kernel's own counters of the namespace (/proc/net/snmp RetransSegs,
/proc/net/netstat ListenOverflows), read inside it.
"""
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import scrylib  # noqa: E402
from scrylib import Exporter, cgroup2_root  # noqa: E402

WORKLOAD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "net_workload.py")
TAG = "scrynet%d" % os.getpid()
SERVER_NS, CLIENT_NS = TAG + "s", TAG + "c"
SERVER_IP, CLIENT_IP = "10.77.0.1", "10.77.0.2"


def sh(*cmd):
    return subprocess.run(list(cmd), check=True, capture_output=True, text=True, timeout=60).stdout


def in_ns(ns, *cmd):
    return sh("ip", "netns", "exec", ns, *cmd)


def netns_counter(ns, path, prefix, name):
    lines = in_ns(ns, "cat", path).splitlines()
    for names, values in zip(lines, lines[1:]):
        n, v = names.split(), values.split()
        if n[0] == prefix + ":" and v[0] == prefix + ":" and name in n:
            return int(v[n.index(name)])
    raise KeyError(name)


def delta(before, after, name, **labels):
    return after.get(name, 0, **labels) - before.get(name, 0, **labels)


def wait_for(what, fn, timeout=20):
    """Polls fn until it returns true; the value it returned last otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def link_share(pid, tracepoint, seconds):
    """The share of samples, every 50 ms for `seconds`, in which process pid holds a BPF link to the raw
    tracepoint (as the kernel lists it in the descriptors' fdinfo)."""
    fdinfo = "/proc/%d/fdinfo" % pid
    hits = samples = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        held = False
        for fd in os.listdir(fdinfo):
            with contextlib.suppress(OSError), open(os.path.join(fdinfo, fd)) as f:
                held = held or "tp_name:\t%s\n" % tracepoint in f.read()
        hits += held
        samples += 1
        time.sleep(0.05)
    return hits / samples


class Network:
    """The two namespaces, created once."""

    @staticmethod
    def up():
        for tool in ("ip", "nft"):
            if not shutil.which(tool):
                if os.environ.get("CI") == "true":
                    raise AssertionError(tool + " not installed (scripts/deps.sh installs it)")
                raise unittest.SkipTest(tool + " not installed")
        sh("ip", "netns", "add", SERVER_NS)
        sh("ip", "netns", "add", CLIENT_NS)
        sh("ip", "link", "add", TAG + "a", "netns", SERVER_NS, "type", "veth", "peer", "name", TAG[:10] + "b",
           "netns", CLIENT_NS)
        for ns, dev, ip in ((SERVER_NS, TAG + "a", SERVER_IP), (CLIENT_NS, TAG[:10] + "b", CLIENT_IP)):
            in_ns(ns, "ip", "addr", "add", ip + "/24", "dev", dev)
            in_ns(ns, "ip", "link", "set", dev, "up")
            in_ns(ns, "ip", "link", "set", "lo", "up")
        # short SYN timeouts: a connect to a blackholed port fails in about 3 s
        in_ns(CLIENT_NS, "sysctl", "-qw", "net.ipv4.tcp_syn_retries=1")
        for ns in (SERVER_NS, CLIENT_NS):
            in_ns(ns, "nft", "add", "table", "inet", TAG)
            for hook in ("input", "output"):
                in_ns(ns, "nft", "add", "chain", "inet", TAG, hook,
                      "{ type filter hook %s priority 0 ; policy accept ; }" % hook)

    @staticmethod
    def down():
        for ns in (SERVER_NS, CLIENT_NS):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


class Workloads:
    """Processes in namespaces and test cgroups; all killed and removed at the end."""

    def __init__(self, test):
        self.root = cgroup2_root()
        test.assertIsNotNone(self.root, "no cgroup v2 hierarchy")
        self.procs, self.cgroups = [], []

    def cgroup(self, name):
        path = os.path.join(self.root, "%s-%s" % (TAG, name))
        os.makedirs(path, exist_ok=True)
        self.cgroups.append(path)
        return path, "/" + os.path.basename(path)

    def start(self, ns, cgroup, *args, marker=None):
        argv = [sys.executable, WORKLOAD, ns, cgroup, *map(str, args)]
        if marker:
            argv.insert(1, "-X" + marker)  # a harmless interpreter option that shows in the command line
        p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.procs.append(p)
        if args[0] in ("serve", "udphold") or args[-1] == "--wait":
            line = p.stdout.readline()
            if line.strip() != "ready":
                raise AssertionError("workload %s did not start: %r" % (args, line))
        return p

    def run(self, ns, cgroup, *args, marker=None):
        p = self.start(ns, cgroup, *args, marker=marker)
        out, _ = p.communicate(timeout=120)
        if p.returncode:
            raise AssertionError("workload %s exited with %d" % (args, p.returncode))
        return json.loads(out.strip().splitlines()[-1])

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        for path in self.cgroups:
            with contextlib.suppress(OSError):
                os.rmdir(path)


class NetTest(unittest.TestCase):
    exporter_args = ()
    port = 7000

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            return
        Network.up()
        try:
            cls.exporter = Exporter("net", "--bpf.stats", *cls.exporter_args).__enter__()
        except Exception:
            Network.down()
            raise

    @classmethod
    def tearDownClass(cls):
        if os.geteuid() != 0:
            return
        cls.exporter.stop()
        Network.down()

    def setUp(self):
        scrylib.require_root(self)
        self.w = Workloads(self)
        self.addCleanup(self.w.close)
        NetTest.port += 1
        self.port = NetTest.port

    def hold(self, n, tag):
        """n connections held open between two workloads of their own; (client labels, server labels, the
        client process, the server process) once all are open."""
        server_cg, server_label = self.w.cgroup(tag + "srv")
        client_cg, client_label = self.w.cgroup(tag + "cli")
        server = self.w.start(SERVER_NS, server_cg, "serve", self.port, "hold", 4096)
        client = self.w.start(CLIENT_NS, client_cg, "hold", SERVER_IP, self.port, n)
        self.assertEqual(client.stdout.readline().strip(), "held")
        return (dict(cgroup=client_label, direction="client", peer=SERVER_IP, port=str(self.port)),
                dict(cgroup=server_label, direction="server", peer="", port=str(self.port)), client, server)

    def scrape_until(self, fn, timeout=20):
        """Scrapes until fn(metrics) is true (labels of new cgroups come with a later scrape)."""
        box = {}

        def probe():
            box["m"] = self.exporter.scrape()
            return fn(box["m"])
        wait_for("scrape", probe, timeout)
        return box["m"]


class Connections(NetTest):
    def connect_while_dropping(self, client_cg, hook, *match):
        """One connection (up to 4 SYN retransmits) from client_cg while a rule on the client namespace's
        hook drops what it matches, for its first 2.5 s; the seconds the workload took, start to end."""
        in_ns(CLIENT_NS, "nft", "add", "rule", "inet", TAG, hook, *match, "drop")
        started = time.monotonic()
        p = self.w.start(CLIENT_NS, client_cg, "connect", SERVER_IP, self.port, 1, 4)
        time.sleep(2.5)
        in_ns(CLIENT_NS, "nft", "flush", "chain", "inet", TAG, hook)
        out, _ = p.communicate(timeout=60)
        self.assertEqual(json.loads(out), {"ok": 1})
        return time.monotonic() - started

    def test_opened_closed_and_latency_per_peer_and_side(self):
        n = 20
        server_cg, server_label = self.w.cgroup("server")
        client_cg, client_label = self.w.cgroup("client")
        self.w.start(SERVER_NS, server_cg, "serve", self.port, "accept", 64)
        before = self.exporter.scrape()
        out = self.w.run(CLIENT_NS, client_cg, "connect", SERVER_IP, self.port, n)
        self.assertEqual(out, {"ok": n})
        client = dict(cgroup=client_label, direction="client", peer=SERVER_IP, port=str(self.port))
        server = dict(cgroup=server_label, direction="server", peer="", port=str(self.port))
        m = self.scrape_until(lambda m: m.get("scry_net_connections_closed_total", 0, **client) >= n and
                              m.get("scry_net_connections_closed_total", 0, **server) >= n)
        for side in (client, server):
            self.assertEqual(delta(before, m, "scry_net_connections_opened_total", **side), n, side)
            self.assertEqual(delta(before, m, "scry_net_connections_closed_total", **side), n, side)
            self.assertEqual(m.get("scry_net_connections_active", **side), 0, side)
            for reason in ("refused", "timed_out", "reset", "other"):
                self.assertEqual(m.get("scry_net_connections_failed_total", reason=reason, **side), 0)
        self.assertEqual(m.get("scry_net_connect_duration_seconds_count", **client), n)
        self.assertGreater(m.get("scry_net_connect_duration_seconds_sum", **client), 0)
        self.assertEqual(m.get("scry_net_handshake_duration_seconds_count", **server), n)
        self.assertIsNone(m.get("scry_net_handshake_duration_seconds_count", None, **client))
        # one data byte each way per connection (SYN and FIN are not bytes). The server sends its byte
        # and closes without reading the client's: a reset, which may overtake the ACK of either byte
        self.assertEqual(m.get("scry_net_received_bytes_total", **client), n)
        self.assertLessEqual(m.get("scry_net_sent_bytes_total", **client), n)
        self.assertLessEqual(m.get("scry_net_sent_bytes_total", **server), n)
        # the workload's labels: a host cgroup, no container
        self.assertEqual(m.get("scry_net_connections_opened_total", container_id="", pod="", **client), n)
        # no series of the clients' ephemeral ports
        ports = {dict(ls)["port"] for ls in m.series("scry_net_connections_opened_total")
                 if dict(ls)["cgroup"] in (client_label, server_label)}
        self.assertEqual(ports, {str(self.port)})

    def test_refused(self):
        n = 5
        client_cg, client_label = self.w.cgroup("refused")
        out = self.w.run(CLIENT_NS, client_cg, "connect", SERVER_IP, self.port, n)
        self.assertEqual(out, {os.strerror(111): n})
        labels = dict(cgroup=client_label, direction="client", peer=SERVER_IP, port=str(self.port))
        m = self.scrape_until(lambda m: m.get("scry_net_connections_failed_total", 0, reason="refused", **labels) >= n)
        self.assertEqual(m.get("scry_net_connections_failed_total", reason="refused", **labels), n)
        self.assertEqual(m.get("scry_net_connections_failed_total", reason="timed_out", **labels), 0)
        self.assertEqual(m.get("scry_net_connections_opened_total", **labels), 0)
        self.assertEqual(m.get("scry_net_connect_duration_seconds_count", **labels), 0)

    def test_timed_out_behind_a_drop_rule(self):
        n = 3
        in_ns(SERVER_NS, "nft", "add", "rule", "inet", TAG, "input", "tcp", "dport", str(self.port), "drop")
        client_cg, client_label = self.w.cgroup("blackholed")
        out = self.w.run(CLIENT_NS, client_cg, "connect", SERVER_IP, self.port, n, 1)
        self.assertEqual(out, {os.strerror(110): n})
        labels = dict(cgroup=client_label, direction="client", peer=SERVER_IP, port=str(self.port))
        m = self.scrape_until(
            lambda m: m.get("scry_net_connections_failed_total", 0, reason="timed_out", **labels) >= n)
        self.assertEqual(m.get("scry_net_connections_failed_total", reason="timed_out", **labels), n)
        self.assertEqual(m.get("scry_net_connections_failed_total", reason="refused", **labels), 0)

    def test_retransmits_agree_with_the_kernels_count(self):
        """Bulk transfer with 2% of segments dropped: retransmits as the kernel counts them, for the socket
        (tcpi_total_retrans) and in the namespace (RetransSegs)."""
        server_cg, server_label = self.w.cgroup("sink")
        client_cg, client_label = self.w.cgroup("bulk")
        self.w.start(SERVER_NS, server_cg, "serve", self.port, "sink", 16)
        in_ns(SERVER_NS, "nft", "add", "rule", "inet", TAG, "input", "tcp", "dport", str(self.port),
              "numgen", "random", "mod", "50", "==", "0", "drop")
        labels = dict(cgroup=client_label, direction="client", peer=SERVER_IP, port=str(self.port))
        retrans_before = netns_counter(CLIENT_NS, "/proc/net/snmp", "Tcp", "RetransSegs")
        socket_truth = self.w.run(CLIENT_NS, client_cg, "bulk", SERVER_IP, self.port, 32 << 20)["total_retrans"]
        m = self.scrape_until(lambda m: m.get("scry_net_connections_closed_total", 0, **labels) >= 1)
        netns_truth = netns_counter(CLIENT_NS, "/proc/net/snmp", "Tcp", "RetransSegs") - retrans_before
        seen = m.get("scry_net_retransmitted_segments_total", **labels)
        why = "scry %d, tcpi_total_retrans %d, RetransSegs %d, missed runs %s" % (
            seen, socket_truth, netns_truth, m.get("scry_bpf_program_missed_total", hook="retransmit"))
        self.assertGreater(socket_truth, 0)
        self.assertEqual(seen, socket_truth, why)
        # The namespace also counts what other sockets there retransmit (an earlier test's, closing).
        self.assertGreaterEqual(netns_truth, socket_truth, why)
        # data bytes, exactly: the SYN and FIN of both sides are left out
        server = dict(cgroup=server_label, direction="server", peer="", port=str(self.port))
        m = self.scrape_until(lambda m: m.get("scry_net_connections_closed_total", 0, **server) >= 1)
        self.assertEqual(m.get("scry_net_sent_bytes_total", **labels), 32 << 20)
        self.assertEqual(m.get("scry_net_received_bytes_total", **labels), 0)
        self.assertEqual(m.get("scry_net_received_bytes_total", **server), 32 << 20)
        self.assertEqual(m.get("scry_net_sent_bytes_total", **server), 0)
        self.assertGreater(m.get("scry_net_rtt_seconds_count", **labels), 0)

    def test_syn_and_synack_retransmits_agree_with_the_namespaces(self):
        server_cg, server_label = self.w.cgroup("synack")
        client_cg, client_label = self.w.cgroup("syn")
        self.w.start(SERVER_NS, server_cg, "serve", self.port, "accept", 16)
        truth = {ns: (netns_counter(ns, "/proc/net/netstat", "TcpExt", "TCPSynRetrans"),
                      netns_counter(ns, "/proc/net/snmp", "Tcp", "RetransSegs")) for ns in (SERVER_NS, CLIENT_NS)}
        # the SYN-ACKs are lost on the way to the client: the client repeats its SYN (at 1 s), the server
        # its SYN-ACK (its timer, and the repeated SYN)
        elapsed = self.connect_while_dropping(client_cg, "input", "tcp", "sport", str(self.port),
                                              "tcp", "flags", "&", "(syn|ack)", "==", "syn|ack")
        for ns in truth:
            truth[ns] = (netns_counter(ns, "/proc/net/netstat", "TcpExt", "TCPSynRetrans") - truth[ns][0],
                         netns_counter(ns, "/proc/net/snmp", "Tcp", "RetransSegs") - truth[ns][1])
        client = dict(cgroup=client_label, direction="client", peer=SERVER_IP, port=str(self.port))
        server = dict(cgroup=server_label, direction="server", peer="", port=str(self.port))
        m = self.scrape_until(lambda m: m.get("scry_net_connections_closed_total", 0, **client) >= 1 and
                              m.get("scry_net_connections_closed_total", 0, **server) >= 1)
        for labels, ns in ((client, CLIENT_NS), (server, SERVER_NS)):
            syn, segs = truth[ns]
            self.assertGreater(syn, 0, ns)
            self.assertEqual(m.get("scry_net_syn_retransmits_total", **labels), syn, labels)
            # SYN-ACKs are in the server's retransmitted segments, as in the kernel's RetransSegs
            self.assertEqual(m.get("scry_net_retransmitted_segments_total", **labels), segs, labels)
        # the connect waited for the rule to go, 2.5 s after the workload started (less its start-up)
        self.assertEqual(m.get("scry_net_connect_duration_seconds_count", **client), 1)
        self.assertGreater(m.get("scry_net_connect_duration_seconds_sum", **client), 1.5)
        self.assertLess(m.get("scry_net_connect_duration_seconds_sum", **client), elapsed)

    def test_syn_retransmits_that_fail_to_send_count_as_the_kernel_counts(self):
        """The kernel counts a retransmit it could not send (RetransSegs, TCPSynRetrans), and so does scry."""
        server_cg, _ = self.w.cgroup("sendfail-server")
        client_cg, client_label = self.w.cgroup("sendfail")
        self.w.start(SERVER_NS, server_cg, "serve", self.port, "accept", 16)
        names = (("/proc/net/netstat", "TcpExt", "TCPSynRetrans"), ("/proc/net/snmp", "Tcp", "RetransSegs"),
                 ("/proc/net/netstat", "TcpExt", "TCPRetransFail"))
        before = [netns_counter(CLIENT_NS, *n) for n in names]
        # the client's own SYNs are refused on the way out: the send fails with EPERM
        self.connect_while_dropping(client_cg, "output", "tcp", "dport", str(self.port),
                                    "tcp", "flags", "&", "(syn|ack)", "==", "syn")
        syn, segs, failed = (netns_counter(CLIENT_NS, *n) - b for n, b in zip(names, before))
        self.assertGreater(failed, 0, "no retransmit failed to send")
        client = dict(cgroup=client_label, direction="client", peer=SERVER_IP, port=str(self.port))
        m = self.scrape_until(lambda m: m.get("scry_net_connections_closed_total", 0, **client) >= 1)
        self.assertEqual(m.get("scry_net_syn_retransmits_total", **client), syn)
        self.assertEqual(m.get("scry_net_retransmitted_segments_total", **client), segs)

    def test_open_connections_count_their_bytes_before_they_close(self):
        nbytes = 3 << 20
        server_cg, server_label = self.w.cgroup("opensink")
        client_cg, client_label = self.w.cgroup("openbulk")
        self.w.start(SERVER_NS, server_cg, "serve", self.port, "sink", 16)
        p = self.w.start(CLIENT_NS, client_cg, "bulkheld", SERVER_IP, self.port, nbytes)
        self.assertEqual(p.stdout.readline().strip(), "sent")  # and acknowledged
        client = dict(cgroup=client_label, direction="client", peer=SERVER_IP, port=str(self.port))
        server = dict(cgroup=server_label, direction="server", peer="", port=str(self.port))
        m = self.scrape_until(lambda m: m.get("scry_net_received_bytes_total", 0, **server) >= nbytes)
        self.assertEqual(m.get("scry_net_connections_active", **client), 1)
        self.assertEqual(m.get("scry_net_sent_bytes_total", **client), nbytes)
        self.assertEqual(m.get("scry_net_received_bytes_total", **server), nbytes)
        self.assertGreater(m.get("scry_net_sent_segments_total", **client), 0)
        self.assertGreater(m.get("scry_net_received_segments_total", **server), 0)
        p.stdin.write("\n")
        p.stdin.flush()
        p.communicate(timeout=60)
        m = self.scrape_until(lambda m: m.get("scry_net_connections_closed_total", 0, **client) >= 1 and
                              m.get("scry_net_connections_closed_total", 0, **server) >= 1)
        # counted once: at the close the open transfer moves into the totals
        self.assertEqual(m.get("scry_net_sent_bytes_total", **client), nbytes)
        self.assertEqual(m.get("scry_net_received_bytes_total", **server), nbytes)

    def test_resets_sent_by_a_linger0_close_and_received(self):
        n = 5
        server_cg, server_label = self.w.cgroup("linger0")
        client_cg, client_label = self.w.cgroup("resetclient")
        self.w.start(SERVER_NS, server_cg, "serve", self.port, "linger0", 16)
        out = self.w.run(CLIENT_NS, client_cg, "connect", SERVER_IP, self.port, n)
        self.assertEqual(out, {"ok": n})
        client = dict(cgroup=client_label, direction="client", peer=SERVER_IP, port=str(self.port))
        server = dict(cgroup=server_label, direction="server", peer="", port=str(self.port))
        m = self.scrape_until(lambda m: m.get("scry_net_resets_received_total", 0, **client) >= n and
                              m.get("scry_net_resets_sent_total", 0, **server) >= n)
        self.assertEqual(m.get("scry_net_resets_sent_total", **server), n)
        self.assertEqual(m.get("scry_net_resets_received_total", **server), 0)
        self.assertEqual(m.get("scry_net_resets_received_total", **client), n)
        self.assertEqual(m.get("scry_net_resets_sent_total", **client), 0)

    def test_listen_overflows_agree_with_the_namespace(self):
        server_cg, server_label = self.w.cgroup("backlog")
        client_cg, _ = self.w.cgroup("flood")
        self.w.start(SERVER_NS, server_cg, "serve", self.port, "never", 1)
        netns = str(os.stat("/run/netns/" + SERVER_NS).st_ino)
        labels = dict(netns=netns, source="procfs")
        before_truth = netns_counter(SERVER_NS, "/proc/net/netstat", "TcpExt", "ListenOverflows")
        before = self.scrape_until(lambda m: m.get("scry_net_listen_overflows_total", None, **labels) is not None)
        self.assertEqual(before.get("scry_net_listen_overflows_total", **labels), before_truth)
        drops_before = netns_counter(SERVER_NS, "/proc/net/netstat", "TcpExt", "ListenDrops")
        self.w.run(CLIENT_NS, client_cg, "synflood", SERVER_IP, self.port, 20)
        truth = netns_counter(SERVER_NS, "/proc/net/netstat", "TcpExt", "ListenOverflows") - before_truth
        drops = netns_counter(SERVER_NS, "/proc/net/netstat", "TcpExt", "ListenDrops") - drops_before
        m = self.exporter.scrape()
        self.assertGreater(truth, 0)
        self.assertEqual(delta(before, m, "scry_net_listen_overflows_total", **labels), truth)
        # the listener's own count and queue, as ss shows them (Recv-Q: waiting for accept, Send-Q: backlog)
        listener = dict(cgroup=server_label, port=str(self.port))
        self.assertEqual(delta(before, m, "scry_net_listener_drops_total", **listener), drops)
        queued, backlog = in_ns(SERVER_NS, "ss", "-ltnH", "sport", "= :%d" % self.port).split()[1:3]
        self.assertEqual(m.get("scry_net_listen_queue_length", **listener), int(queued))
        self.assertEqual(m.get("scry_net_listen_queue_capacity", **listener), int(backlog))
        self.assertEqual(int(backlog), 1)

    def test_tcp_probe_attached_a_tenth_of_the_time(self):
        # --collector.rtt.duty-cycle=0.1: one second in each 10-s cycle; 12 s of samples hold 1 to 3 such seconds
        pid = self.exporter.proc.pid
        share = link_share(pid, "tcp_probe", 12)
        self.assertGreater(share, 0.04)
        self.assertLess(share, 0.3)
        self.assertEqual(link_share(pid, "inet_sock_set_state", 1), 1)
        m = self.exporter.scrape()
        always = m.get("scry_bpf_program_attached_seconds_total", hook="set_state")
        probe = m.get("scry_bpf_program_attached_seconds_total", hook="probe")
        cycles = always // 10
        self.assertGreaterEqual(cycles, 1)
        # a second for each cycle ended, and up to one for the cycle under way (a detach takes a moment)
        self.assertGreater(probe, 0.9 * (cycles - 1))
        self.assertLess(probe, 1.2 * (cycles + 1))

    def test_self_metrics_and_promtool(self):
        m = self.exporter.scrape()
        for feature in ("connections", "retransmits", "resets", "rtt", "drops", "sockets"):
            self.assertEqual(m.get("scry_feature_available", feature=feature), 1, feature)
        self.assertTrue(m.has("scry_net_drops_total"))
        self.assertTrue(m.has("scry_net_listen_queue_capacity"))
        self.assertFalse(m.has("scry_net_cwnd_segments_count"))  # --collector.windows is off by default
        self.assertIsNotNone(m.get("scry_bpf_program_missed_total", hook="set_state"))
        if shutil.which("promtool"):
            r = subprocess.run(["promtool", "check", "metrics"], input=self.exporter.scrape_text(),
                               capture_output=True, text=True, timeout=60)
            self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""))


class Windows(NetTest):
    exporter_args = ("--collector.rtt.sample-every=1", "--collector.rtt.duty-cycle=1", "--collector.windows")

    def test_duty_cycle_1_keeps_tcp_probe_attached(self):
        self.assertEqual(link_share(self.exporter.proc.pid, "tcp_probe", 1), 1)
        m = self.exporter.scrape()
        self.assertAlmostEqual(m.get("scry_bpf_program_attached_seconds_total", hook="probe"),
                               m.get("scry_bpf_program_attached_seconds_total", hook="set_state"), delta=0.1)

    def test_a_peer_that_does_not_read_closes_the_window(self):
        server_cg, server_label = self.w.cgroup("noread")
        client_cg, client_label = self.w.cgroup("stuffer")
        self.w.start(SERVER_NS, server_cg, "serve", self.port, "hold", 16)
        before = netns_counter(SERVER_NS, "/proc/net/netstat", "TcpExt", "TCPToZeroWindowAdv")
        self.w.run(CLIENT_NS, client_cg, "stuff", SERVER_IP, self.port, 3)
        self.assertGreater(netns_counter(SERVER_NS, "/proc/net/netstat", "TcpExt", "TCPToZeroWindowAdv"), before)
        client = dict(cgroup=client_label, direction="client", peer=SERVER_IP, port=str(self.port))
        server = dict(cgroup=server_label, direction="server", peer="", port=str(self.port))
        m = self.exporter.scrape()
        # zero windows (le="1"): advertised by the server, seen by the client as its send window
        self.assertGreater(m.get("scry_net_send_window_bytes_bucket", le="1", **client), 0)
        self.assertGreater(m.get("scry_net_receive_window_bytes_bucket", le="1", **server), 0)
        for labels in (client, server):
            # one window sample with each RTT sample after the handshake's
            n = m.get("scry_net_rtt_seconds_count", **labels) - 1
            self.assertGreater(n, 0)
            for name in ("scry_net_cwnd_segments", "scry_net_send_window_bytes", "scry_net_receive_window_bytes"):
                self.assertEqual(m.get(name + "_count", **labels), n, (name, labels))
        self.assertGreaterEqual(m.get("scry_net_cwnd_segments_sum", **client),
                                m.get("scry_net_cwnd_segments_count", **client))  # at least one segment


class Expiry(NetTest):
    exporter_args = ("--collector.peers.expiry=2s",)

    def test_quiet_peers_expire_open_ones_stay(self):
        server_cg, _ = self.w.cgroup("expiryserver")
        client_cg, client_label = self.w.cgroup("expiryclient")
        quiet_port, open_port = self.port, self.port + 100
        self.w.start(SERVER_NS, server_cg, "serve", quiet_port, "accept", 16)
        self.w.start(SERVER_NS, server_cg, "serve", open_port, "sink", 16)
        held = self.w.start(CLIENT_NS, client_cg, "bulkheld", SERVER_IP, open_port, 1000)
        self.assertEqual(held.stdout.readline().strip(), "sent")
        self.assertEqual(self.w.run(CLIENT_NS, client_cg, "connect", SERVER_IP, quiet_port, 3), {"ok": 3})
        quiet = dict(cgroup=client_label, direction="client", peer=SERVER_IP, port=str(quiet_port))
        still_open = dict(cgroup=client_label, direction="client", peer=SERVER_IP, port=str(open_port))
        m = self.scrape_until(lambda m: m.get("scry_net_connections_closed_total", 0, **quiet) == 3)
        self.assertEqual(m.get("scry_net_connections_active", **still_open), 1)
        # quiet for 2 s after its counts last moved: gone; the open connection's peer stays
        m = self.scrape_until(lambda m: m.get("scry_net_connections_opened_total", None, **quiet) is None)
        self.assertIsNone(m.get("scry_net_connections_opened_total", None, **quiet))
        self.assertEqual(m.get("scry_net_connections_active", **still_open), 1)
        # a new connection starts the series again from zero
        self.assertEqual(self.w.run(CLIENT_NS, client_cg, "connect", SERVER_IP, quiet_port, 1), {"ok": 1})
        m = self.scrape_until(lambda m: m.get("scry_net_connections_closed_total", 0, **quiet) >= 1)
        self.assertEqual(m.get("scry_net_connections_opened_total", **quiet), 1)


class PeerPods(NetTest):
    """--collector.peers.pod-names: a server in a pod's cgroup, in the server namespace, names its address."""
    uid = "3f0b5a62-9c1d-4e7a-8b2f-6d5c4a3b2e1f"
    container_id = "c0ffee" + "0" * 58

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            return
        cls.node = scrylib.kubelet_node("shop", "cart-7d4b9c", cls.uid, "app", cls.container_id)
        cls.root, cls.pod_cgroup = cls.node.__enter__()
        cls.exporter_args = ("--collector.peers.pod-names", "--path.rootfs=" + cls.root)
        try:
            super().setUpClass()
        except Exception:
            cls.node.__exit__(None, None, None)
            raise

    @classmethod
    def tearDownClass(cls):
        if os.geteuid() != 0:
            return
        super().tearDownClass()
        cls.node.__exit__(None, None, None)

    def test_a_pod_peer_is_named_by_its_pod(self):
        n = 10
        self.w.start(SERVER_NS, self.pod_cgroup, "serve", self.port, "accept", 64)
        client_cg, client_label = self.w.cgroup("podclient")
        self.assertEqual(self.w.run(CLIENT_NS, client_cg, "connect", SERVER_IP, self.port, n), {"ok": n})
        named = dict(cgroup=client_label, direction="client", peer="shop/cart-7d4b9c", port=str(self.port))
        m = self.scrape_until(lambda m: m.get("scry_net_connections_closed_total", 0, **named) >= n)
        self.assertEqual(m.get("scry_net_connections_opened_total", **named), n)
        self.assertIsNone(m.get("scry_net_connections_opened_total", None, cgroup=client_label, peer=SERVER_IP))
        self.assertGreaterEqual(m.get("scry_net_peer_pod_addresses"), 1)
        # the server side is the pod, with its labels
        self.assertEqual(m.get("scry_net_connections_opened_total", namespace="shop", pod="cart-7d4b9c",
                               container="app", direction="server", port=str(self.port)), n)

    def test_an_address_of_no_pod_stays_an_address(self):
        n = 3
        server_cg, _ = self.w.cgroup("hostserver")
        client_cg, client_label = self.w.cgroup("hostclient")
        self.w.start(CLIENT_NS, server_cg, "serve", self.port, "accept", 64)
        self.assertEqual(self.w.run(SERVER_NS, client_cg, "connect", CLIENT_IP, self.port, n), {"ok": n})
        labels = dict(cgroup=client_label, direction="client", peer=CLIENT_IP, port=str(self.port))
        m = self.scrape_until(lambda m: m.get("scry_net_connections_closed_total", 0, **labels) >= n)
        self.assertEqual(m.get("scry_net_connections_opened_total", **labels), n)


class PeerPodsFromKubelet(NetTest):
    """--collector.peers.pod-names with --kubelet.url: the kubelet's /pods lists the server's address as
    its pod's (status.podIPs). The server runs in a plain cgroup, so only that list can name it."""
    pods = {"kind": "PodList", "items": [
        {"metadata": {"name": "db-0", "namespace": "store", "uid": "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"},
         "status": {"podIPs": [{"ip": SERVER_IP}]}},
        # a hostNetwork pod's address is the node's: never a peer name
        {"metadata": {"name": "proxy-x", "namespace": "kube-system", "uid": "0" * 32},
         "spec": {"hostNetwork": True}, "status": {"podIPs": [{"ip": CLIENT_IP}]}}]}

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            return
        cls.api_context = scrylib.kubelet_api(cls.pods, token="t0ken")
        api = cls.api_context.__enter__()
        cls.exporter_args = ("--collector.peers.pod-names", "--kubelet.url=" + api.url,
                             "--kubelet.token-file=" + api.token_file, "--kubelet.ca-file=" + api.ca_file)
        try:
            super().setUpClass()
        except Exception:
            cls.api_context.__exit__(None, None, None)
            raise

    @classmethod
    def tearDownClass(cls):
        if os.geteuid() != 0:
            return
        super().tearDownClass()
        cls.api_context.__exit__(None, None, None)

    def test_a_pod_peer_is_named_from_the_kubelets_pod_list(self):
        n = 5
        server_cg, _ = self.w.cgroup("apiserver")
        client_cg, client_label = self.w.cgroup("apiclient")
        self.w.start(SERVER_NS, server_cg, "serve", self.port, "accept", 64)
        self.assertEqual(self.w.run(CLIENT_NS, client_cg, "connect", SERVER_IP, self.port, n), {"ok": n})
        named = dict(cgroup=client_label, direction="client", peer="store/db-0", port=str(self.port))
        m = self.scrape_until(lambda m: m.get("scry_net_connections_closed_total", 0, **named) >= n)
        self.assertEqual(m.get("scry_net_connections_opened_total", **named), n)
        self.assertIsNone(m.get("scry_net_connections_opened_total", None, cgroup=client_label, peer=SERVER_IP))
        self.assertGreaterEqual(m.get("scry_kubelet_requests_total", result="ok"), 1)

    def test_a_host_network_pods_address_stays_an_address(self):
        n = 3
        server_cg, _ = self.w.cgroup("apihostserver")
        client_cg, client_label = self.w.cgroup("apihostclient")
        self.w.start(CLIENT_NS, server_cg, "serve", self.port, "accept", 64)
        self.assertEqual(self.w.run(SERVER_NS, client_cg, "connect", CLIENT_IP, self.port, n), {"ok": n})
        labels = dict(cgroup=client_label, direction="client", peer=CLIENT_IP, port=str(self.port))
        m = self.scrape_until(lambda m: m.get("scry_net_connections_closed_total", 0, **labels) >= n)
        self.assertEqual(m.get("scry_net_connections_opened_total", **labels), n)


class Drops(NetTest):
    def test_drops_by_reason_no_socket(self):
        # a SYN to a closed port: answered by a reset; a UDP datagram to a closed port is dropped
        # with reason no_socket (an ICMP unreachable goes back)
        n = 10
        before = self.exporter.scrape()
        for _ in range(n):
            in_ns(SERVER_NS, sys.executable, "-c",
                  "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('127.0.0.1', 9))")
        m = self.scrape_until(lambda m: delta(before, m, "scry_net_drops_total", reason="no_socket",
                                               protocol="") >= n)
        self.assertGreaterEqual(delta(before, m, "scry_net_drops_total", reason="no_socket", protocol=""), n)

    def test_udp_receive_buffer_drops_of_the_socket_owner(self):
        # a receiver that never reads, with a 4 KiB buffer: the kernel's RcvbufErrors of its namespace
        receiver_cg, receiver_label = self.w.cgroup("udphold")
        sender_cg, _ = self.w.cgroup("udpsend")
        self.w.start(SERVER_NS, receiver_cg, "udphold", self.port)
        truth = netns_counter(SERVER_NS, "/proc/net/snmp", "Udp", "RcvbufErrors")
        labels = dict(cgroup=receiver_label, reason="socket_rcvbuff", protocol="udp")
        self.w.run(CLIENT_NS, sender_cg, "udpsend", SERVER_IP, self.port, 200)
        truth = netns_counter(SERVER_NS, "/proc/net/snmp", "Udp", "RcvbufErrors") - truth
        self.assertGreater(truth, 100)
        m = self.scrape_until(lambda m: m.get("scry_net_workload_drops_total", 0, **labels) >= truth)
        self.assertEqual(m.get("scry_net_workload_drops_total", **labels), truth)


class Filter(NetTest):
    exporter_args = ("--filter.cmdline=-X[s]crynetmark",)  # a pattern that does not match itself

    def test_only_matching_processes_are_observed(self):
        n = 4
        server_cg, _ = self.w.cgroup("fserver")
        self.w.start(SERVER_NS, server_cg, "serve", self.port, "accept", 16)
        seen_cg, seen_label = self.w.cgroup("seen")
        unseen_cg, unseen_label = self.w.cgroup("unseen")
        p = self.w.start(CLIENT_NS, seen_cg, "connect", SERVER_IP, self.port, n, "--wait", marker="scrynetmark")
        # the filter maps learn of the process within a second
        self.scrape_until(lambda m: m.get("scry_filter_entries", 0, kind="process") >= 1)
        p.stdin.write("go\n")
        p.stdin.flush()
        out, _ = p.communicate(timeout=60)
        self.assertEqual(json.loads(out.splitlines()[-1]), {"ok": n})
        self.assertEqual(self.w.run(CLIENT_NS, unseen_cg, "connect", SERVER_IP, self.port, n), {"ok": n})
        labels = dict(direction="client", peer=SERVER_IP, port=str(self.port))
        m = self.scrape_until(lambda m: m.get("scry_net_connections_closed_total", 0, cgroup=seen_label,
                                              **labels) >= n)
        self.assertEqual(m.get("scry_net_connections_opened_total", cgroup=seen_label, **labels), n)
        self.assertIsNone(m.get("scry_net_connections_opened_total", None, cgroup=unseen_label, **labels))
        # the server's listener was not matched either
        self.assertEqual(m.series("scry_net_handshake_duration_seconds_count"), {})


class PeerCap(NetTest):
    exporter_args = ("--collector.peers.max=1",)

    def test_peers_past_the_cap_sum_into_other(self):
        n = 3
        server_cg, _ = self.w.cgroup("capserver")
        client_cg, client_label = self.w.cgroup("capclient")
        ports = (self.port, self.port + 100)
        for port in ports:
            self.w.start(SERVER_NS, server_cg, "serve", port, "accept", 16)
            self.assertEqual(self.w.run(CLIENT_NS, client_cg, "connect", SERVER_IP, port, n), {"ok": n})
        m = self.scrape_until(lambda m: sum(v for ls, v in m.series("scry_net_connections_closed_total").items()
                                            if dict(ls)["cgroup"] == client_label) >= 2 * n)
        series = {(dict(ls)["peer"], dict(ls)["port"]): v
                  for ls, v in m.series("scry_net_connections_opened_total").items()
                  if dict(ls)["cgroup"] == client_label}
        self.assertEqual(len(series), 2, series)
        self.assertEqual(series.get(("other", "")), n, series)
        self.assertEqual(sum(series.values()), 2 * n)


class SeriesNumbers(NetTest):
    """--bpf.series=16: the programs hold 16 series at once. Past that, connections of new series are
    counted lost; the numbers of expired series come back, and their next series start from zero. Only
    the test's clients are observed (the host's own connections would take numbers too)."""
    exporter_args = ("--bpf.series=16", "--collector.peers.expiry=1s", "--filter.cmdline=-X[s]crynetnum")

    def connect_from(self, tag, workloads, n):
        """n connections from each of `workloads` new cgroups, started together once the filter knows
        every process; their series' labels."""
        cgroups = [self.w.cgroup("%s%d" % (tag, i)) for i in range(workloads)]
        known = self.exporter.scrape().get("scry_filter_entries", 0, kind="process")
        procs = [self.w.start(CLIENT_NS, cg, "connect", SERVER_IP, self.port, n, "--wait", marker="scrynetnum")
                 for cg, _ in cgroups]
        self.scrape_until(lambda m: m.get("scry_filter_entries", 0, kind="process") >= known + workloads)
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        for p in procs:
            out, _ = p.communicate(timeout=60)
            self.assertEqual(json.loads(out.splitlines()[-1]), {"ok": n})
        return [dict(cgroup=label, direction="client", peer=SERVER_IP, port=str(self.port)) for _, label in cgroups]

    def test_numbers_of_expired_series_are_used_again(self):
        server_cg, _ = self.w.cgroup("numserver")
        self.w.start(SERVER_NS, server_cg, "serve", self.port, "accept", 64)
        # 24 client workloads for 16 numbers (no series expires: none is quiet for long enough between
        # scrapes); 16 of them count their connections exactly, the other 8 count none
        first = self.connect_from("numa", 24, 2)
        m = self.exporter.scrape()
        self.assertGreater(m.get("scry_lost_events_total", reason="conns_map_full"), 0)
        self.assertEqual(m.get("scry_bpf_map_entries", map="conns"), 16)
        self.assertEqual(m.get("scry_bpf_map_capacity", map="conns"), 17)  # number 0 is never given out
        counted = [m.get("scry_net_connections_opened_total", None, **labels) for labels in first]
        self.assertEqual(sorted(counted, key=str), [2] * 16 + [None] * 8)
        # quiet for the expiry time: every series goes, and its number is free again
        m = self.scrape_until(lambda m: m.get("scry_bpf_map_entries", map="conns") == 0)
        self.assertEqual(m.series("scry_net_connections_opened_total"), {})
        # new workloads get the numbers back, each series counting from zero
        lost_before = m.get("scry_lost_events_total", reason="conns_map_full")
        second = self.connect_from("numb", 6, 3)
        m = self.scrape_until(lambda m: all(m.get("scry_net_connections_closed_total", 0, **labels) == 3
                                            for labels in second))
        for labels in second:
            self.assertEqual(m.get("scry_net_connections_opened_total", **labels), 3, labels)
            self.assertEqual(m.get("scry_net_connect_duration_seconds_count", **labels), 3, labels)
        self.assertEqual(m.get("scry_bpf_map_entries", map="conns"), 6)
        self.assertEqual(m.get("scry_lost_events_total", reason="conns_map_full"), lost_before)


class TrackedSockets(NetTest):
    """A small table of tracked sockets (--bpf.tracked-sockets=1024: 256 buckets of 7 slots, a spill hash
    of 128): sockets whose bucket is full are tracked in the spill hash, and past that not at all, each
    counted once as lost."""
    exporter_args = ("--bpf.tracked-sockets=1024",)

    def test_sockets_past_their_bucket_are_tracked_in_the_spill_hash(self):
        # 1,000 sockets in 256 buckets: some buckets overflow (all stay at 7 or fewer with a chance of
        # 1 in 100,000), and about 20 sockets spill, far from the 128 the spill hash holds
        n = 500
        lost_before = self.exporter.scrape().get("scry_lost_events_total", reason="socks_map_full")
        client, server, client_proc, server_proc = self.hold(n, "spill")
        m = self.scrape_until(lambda m: m.get("scry_net_connections_opened_total", 0, **server) >= n)
        self.assertEqual(m.get("scry_net_connections_opened_total", **client), n)
        self.assertEqual(m.get("scry_net_connections_opened_total", **server), n)
        self.assertGreater(m.get("scry_bpf_map_entries", map="socks_spill"), 0)
        self.assertGreaterEqual(m.get("scry_bpf_map_entries", map="socks"), 2 * n - 128)
        self.assertEqual(m.get("scry_lost_events_total", reason="socks_map_full"), lost_before)
        client_proc.communicate("\n", timeout=60)
        server_proc.kill()
        # the sides close in no fixed order (a client's end closes at the server's FIN, or before)
        m = self.scrape_until(lambda m: m.get("scry_net_connections_closed_total", 0, **client) >= n and
                              m.get("scry_net_connections_closed_total", 0, **server) >= n)
        for side in (client, server):
            self.assertEqual(m.get("scry_net_connections_closed_total", **side), n, side)
            self.assertEqual(m.get("scry_net_connections_active", **side), 0, side)
        # the spill hash empties: a scrape's own connection, or one of the host's, that spilled while the
        # table was full goes when it closes
        m = self.scrape_until(lambda m: m.get("scry_bpf_map_entries", map="socks_spill") == 0)
        # a close whose program run the kernel skipped (nested on its CPU) leaves its entry behind
        self.assertEqual(m.get("scry_bpf_map_entries", map="socks_spill"), 0,
                         "set_state runs missed: %s" % m.get("scry_bpf_program_missed_total", hook="set_state"))

    def test_sockets_past_the_table_and_the_spill_hash_are_counted_lost(self):
        # 3,000 sockets for 1,792 slots and 128 spill entries
        n = 1500
        lost_before = self.exporter.scrape().get("scry_lost_events_total", reason="socks_map_full")
        client, server, client_proc, _ = self.hold(n, "lost")
        # the server's side is established when the client's last handshake ACK has reached it
        established = lambda: len(in_ns(SERVER_NS, "ss", "-tnH", "state", "established", "sport",  # noqa: E731
                                        "= :%d" % self.port).splitlines())
        self.assertEqual(wait_for("established", lambda: established() == n), True)
        scrapes = 0  # each scrape's own two sockets may be lost too

        def settled(m):
            nonlocal scrapes
            scrapes += 1
            return m.get("scry_net_connections_opened_total", None, **client) is not None and \
                m.get("scry_net_connections_opened_total", None, **server) is not None
        m = self.scrape_until(settled)
        lost = m.get("scry_lost_events_total", reason="socks_map_full") - lost_before
        opened = m.get("scry_net_connections_opened_total", **client) + \
            m.get("scry_net_connections_opened_total", **server)
        self.assertGreater(lost, 0)
        # every socket is tracked or counted lost, once
        self.assertGreaterEqual(opened + lost, 2 * n)
        self.assertLessEqual(opened + lost, 2 * n + 2 * scrapes)
        self.assertEqual(m.get("scry_bpf_map_entries", map="socks_spill"), 128)
        client_proc.communicate("\n", timeout=60)


class SocketTableHash(NetTest):
    """--bpf.socket-table=hash, what kernels without BPF atomics get: every tracked socket in the hash."""
    exporter_args = ("--bpf.socket-table=hash",)

    def test_connections_are_tracked_in_the_hash(self):
        n = 200
        client, server, client_proc, server_proc = self.hold(n, "hash")
        m = self.scrape_until(lambda m: m.get("scry_net_connections_opened_total", 0, **server) >= n)
        for side in (client, server):
            self.assertEqual(m.get("scry_net_connections_opened_total", **side), n, side)
        self.assertGreaterEqual(m.get("scry_bpf_map_entries", map="socks_spill"), 2 * n)
        self.assertEqual(m.get("scry_bpf_map_capacity", map="socks_spill"), 65536)
        self.assertIsNone(m.get("scry_bpf_map_entries", None, map="socks"))  # no table
        client_proc.communicate("\n", timeout=60)
        server_proc.kill()
        # the sides close in no fixed order (a client's end closes at the server's FIN, or before)
        m = self.scrape_until(lambda m: m.get("scry_net_connections_closed_total", 0, **client) >= n and
                              m.get("scry_net_connections_closed_total", 0, **server) >= n)
        for side in (client, server):
            self.assertEqual(m.get("scry_net_connections_closed_total", **side), n, side)
        self.assertLess(m.get("scry_bpf_map_entries", map="socks_spill"), n)


class FallbackModes(unittest.TestCase):
    """Connections counted the same with raw_tp and classic tracepoint programs; in tracepoint mode the
    features without a tracepoint program are unavailable and export nothing."""

    def run_mode(self, mode):
        scrylib.require_root(self)
        Network.up()
        self.addCleanup(Network.down)
        w = Workloads(self)
        self.addCleanup(w.close)
        port = 7500
        server_cg, _ = w.cgroup("fb" + mode)
        client_cg, client_label = w.cgroup("fbc" + mode)
        with Exporter("net", "--bpf.attach-modes=" + mode) as exporter:
            w.start(SERVER_NS, server_cg, "serve", port, "accept", 16)
            self.assertEqual(w.run(CLIENT_NS, client_cg, "connect", SERVER_IP, port, 5), {"ok": 5})
            labels = dict(cgroup=client_label, direction="client", peer=SERVER_IP, port=str(port))
            wait_for("closed", lambda: exporter.scrape().get("scry_net_connections_closed_total", 0, **labels) >= 5)
            m = exporter.scrape()
        self.assertEqual(m.get("scry_net_connections_opened_total", **labels), 5)
        self.assertEqual(m.get("scry_net_connect_duration_seconds_count", **labels), 5)
        return m

    def test_raw_tp(self):
        m = self.run_mode("raw_tp")
        self.assertEqual(m.get("scry_feature_available", feature="rtt"), 1)

    def test_classic_tracepoint(self):
        m = self.run_mode("tracepoint")
        for feature in ("retransmits", "resets", "rtt", "drops"):
            self.assertEqual(m.get("scry_feature_available", feature=feature), 0, feature)
        for name in ("scry_net_retransmitted_segments_total", "scry_net_resets_sent_total",
                     "scry_net_rtt_seconds_count", "scry_net_drops_total"):
            self.assertFalse(m.has(name), name)


class CheckAndBadInput(unittest.TestCase):
    def test_check(self):
        scrylib.require_root(self)
        r = subprocess.run([os.path.join(scrylib.BIN_DIR, "scry-net"), "--check"], capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"connections\s+available\s+set_state\s+tp_btf")
        self.assertRegex(r.stdout, r"rtt\s+available\s+probe\s+tp_btf\s+probe_btf  \(attached 0.1 of the time")

    def test_bad_flags_exit_2_with_one_line(self):
        for flag in ("--collector.peers.max=0", "--collector.rtt.sample-every=0", "--collector.peers.expiry=soon",
                     "--bpf.tracked-sockets=100", "--bpf.socket-table=list", "--bpf.series=8",
                     "--collector.rtt.duty-cycle=0", "--collector.rtt.duty-cycle=1.5"):
            r = subprocess.run([os.path.join(scrylib.BIN_DIR, "scry-net"), flag], capture_output=True, text=True,
                               timeout=60)
            self.assertEqual(r.returncode, 2, flag)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
