"""TCP workloads for test_net.py: `python3 net_workload.py NETNS CGROUP_DIR CMD ARGS`.

The process first moves itself into CGROUP_DIR (cgroup v2), so that the exporter sees it there, then
into the named network namespace (ip netns exec would hide the cgroup tree behind a new /sys); it
prints "ready" once set up, and prints one result line at the end."""
import ctypes
import fcntl
import json
import os
import resource
import socket
import struct
import sys
import termios
import threading
import time

TCP_SYNCNT = 7


def serve(port, mode, backlog):
    """accept: accept and send one byte, then close; linger0: accept and close with a reset;
    never: listen and never accept; sink: read everything; hold: accept and never read."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(backlog)
    held = []
    print("ready", flush=True)
    if mode == "never":
        sys.stdin.read()
        return
    while True:
        c, _ = s.accept()
        if mode == "sink":
            threading.Thread(target=lambda c=c: (drain(c), c.close()), daemon=True).start()
            continue
        if mode == "hold":
            held.append(c)
            continue
        if mode == "linger0":
            c.recv(1)  # the client's byte: the connection is up on both sides
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            c.sendall(b"x")
        c.close()


def drain(c):
    while c.recv(1 << 16):
        pass


def connect(host, port, count, syncnt=None, parallel=False):
    """count connections; returns {"ok": n, errno name: n}."""
    results = {}
    lock = threading.Lock()

    def one():
        s = socket.socket()
        if syncnt:
            s.setsockopt(socket.IPPROTO_TCP, TCP_SYNCNT, syncnt)
        try:
            s.connect((host, port))
            s.sendall(b"y")
            try:
                while s.recv(1024):
                    pass
            except ConnectionResetError:
                pass
            key = "ok"
        except OSError as e:
            key = os.strerror(e.errno) if e.errno else str(e)
        finally:
            s.close()
        with lock:
            results[key] = results.get(key, 0) + 1

    if parallel:
        threads = [threading.Thread(target=one) for _ in range(count)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    else:
        for _ in range(count):
            one()
    return results


def bulk(host, port, nbytes):
    s = socket.create_connection((host, port))
    chunk = b"z" * 65536
    sent = 0
    while sent < nbytes:
        s.sendall(chunk)
        sent += len(chunk)
    s.shutdown(socket.SHUT_WR)
    s.recv(1)
    # The peer's FIN came after ours was received: no retransmit of this connection can follow.
    retrans = total_retrans(s)
    s.close()
    return {"sent": sent, "total_retrans": retrans}


def total_retrans(s):
    """The kernel's count of segments this socket retransmitted (struct tcp_info's tcpi_total_retrans,
    at byte offset 100: 8 one-byte fields, then 23 u32 fields before it)."""
    info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    return struct.unpack_from("I", info, 100)[0]


def bulk_held(host, port, nbytes):
    """Sends nbytes, waits until the peer has acknowledged them all, says "sent" and keeps the connection
    open until told to close (a stdin line)."""
    s = socket.create_connection((host, port))
    s.sendall(b"z" * nbytes)
    while True:
        unacked = fcntl.ioctl(s.fileno(), termios.TIOCOUTQ, b"\0" * 4)  # SIOCOUTQ: sent, not yet acked
        if struct.unpack("i", unacked)[0] == 0:
            break
        time.sleep(0.05)
    print("sent", flush=True)
    sys.stdin.readline()
    s.shutdown(socket.SHUT_WR)
    s.recv(1)
    s.close()
    return {"sent": nbytes}


def hold(host, port, count):
    """count connections opened one after the other and kept open until told to close (a stdin line)."""
    socks = [socket.create_connection((host, port)) for _ in range(count)]
    print("held", flush=True)
    sys.stdin.readline()
    for s in socks:
        s.close()
    return {"ok": count}


def stuff(host, port, seconds):
    """Writes to a peer that does not read, for some seconds: its receive window closes."""
    s = socket.create_connection((host, port))
    s.setblocking(False)
    sent, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            sent += s.send(b"w" * 65536)
        except BlockingIOError:
            time.sleep(0.05)
    s.close()
    return {"sent": sent}


def udp_hold(port):
    """A UDP socket with a small receive buffer that is never read: datagrams past it are dropped."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.bind(("0.0.0.0", port))
    print("ready", flush=True)
    sys.stdin.read()


def udp_send(host, port, count):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(count):
        s.sendto(b"u" * 1000, (host, port))
    return {"sent": count}


def syn_flood(host, port, count):
    """count non-blocking connects left pending, closed after a second (a full accept queue drops them)."""
    socks = []
    for _ in range(count):
        s = socket.socket()
        s.setsockopt(socket.IPPROTO_TCP, TCP_SYNCNT, 1)
        s.setblocking(False)
        s.connect_ex((host, port))
        socks.append(s)
    time.sleep(1)
    for s in socks:
        s.close()
    return {"started": count}


def main():
    netns, cgroup, cmd, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    resource.setrlimit(resource.RLIMIT_NOFILE, (8192, 8192))  # thousands of connections held open
    with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
        f.write(str(os.getpid()))
    fd = os.open("/run/netns/" + netns, os.O_RDONLY)
    if ctypes.CDLL(None, use_errno=True).setns(fd, 0x40000000):  # CLONE_NEWNET
        raise OSError(ctypes.get_errno(), "setns " + netns)
    os.close(fd)
    if cmd == "serve":
        serve(int(args[0]), args[1], int(args[2]))
        return
    if cmd == "udphold":
        udp_hold(int(args[0]))
        return
    if args and args[-1] == "--wait":  # start when told to (stdin line)
        args = args[:-1]
        print("ready", flush=True)
        sys.stdin.readline()
    if cmd == "connect":
        out = connect(args[0], int(args[1]), int(args[2]), syncnt=int(args[3]) if len(args) > 3 else None,
                      parallel=len(args) > 3)
    elif cmd == "bulk":
        out = bulk(args[0], int(args[1]), int(args[2]))
    elif cmd == "bulkheld":
        out = bulk_held(args[0], int(args[1]), int(args[2]))
    elif cmd == "hold":
        out = hold(args[0], int(args[1]), int(args[2]))
    elif cmd == "stuff":
        out = stuff(args[0], int(args[1]), float(args[2]))
    elif cmd == "udpsend":
        out = udp_send(args[0], int(args[1]), int(args[2]))
    elif cmd == "synflood":
        out = syn_flood(args[0], int(args[1]), int(args[2]))
    else:
        raise SystemExit("unknown command " + cmd)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
