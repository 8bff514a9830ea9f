"""What the end-to-end tests share: failure bookkeeping, logging, ports, child-process hygiene."""
import ctypes
import signal
import socket

failures = []


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
