"""Reference probes for the benchmarks: a BPF object of one-purpose programs (bench/*_floor.bpf.c),
built with clang and loaded through libbpf, and what each of its programs costs per event under a
workload, from the kernel's BPF stats. They explain the exporters' per-event figures; not part of scry."""
import contextlib
import ctypes
import os
import shutil
import struct
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


class Libbpf:
    def __init__(self):
        self.lib = ctypes.CDLL("libbpf.so.1", use_errno=True)
        L = self.lib
        L.bpf_prog_get_fd_by_id.argtypes = [ctypes.c_uint32]
        L.bpf_obj_get_info_by_fd.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint32)]
        L.bpf_object__open_file.restype = ctypes.c_void_p
        L.bpf_object__open_file.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
        L.bpf_object__load.argtypes = [ctypes.c_void_p]
        L.bpf_object__close.argtypes = [ctypes.c_void_p]
        L.bpf_object__next_program.restype = ctypes.c_void_p
        L.bpf_object__next_program.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        L.bpf_program__name.restype = ctypes.c_char_p
        L.bpf_program__name.argtypes = [ctypes.c_void_p]
        L.bpf_program__fd.argtypes = [ctypes.c_void_p]
        L.bpf_program__section_name.restype = ctypes.c_char_p
        L.bpf_program__section_name.argtypes = [ctypes.c_void_p]
        L.bpf_program__attach.restype = ctypes.c_void_p
        L.bpf_program__attach.argtypes = [ctypes.c_void_p]
        L.bpf_link__destroy.argtypes = [ctypes.c_void_p]
        L.bpf_enable_stats.argtypes = [ctypes.c_int]
        L.btf__load_from_kernel_by_id.restype = ctypes.c_void_p
        L.btf__load_from_kernel_by_id.argtypes = [ctypes.c_uint32]
        L.btf__name_by_offset.restype = ctypes.c_char_p
        L.btf__name_by_offset.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        L.btf__free.argtypes = [ctypes.c_void_p]

    def prog_name(self, prog_id):
        fd = self.lib.bpf_prog_get_fd_by_id(prog_id)
        if fd < 0:
            return None
        try:
            buf = ctypes.create_string_buffer(256)
            n = ctypes.c_uint32(256)
            if self.lib.bpf_obj_get_info_by_fd(fd, buf, ctypes.byref(n)) != 0:
                return None
            return buf.raw[64:80].split(b"\0")[0].decode()  # struct bpf_prog_info.name
        finally:
            os.close(fd)


def load(source, defines=()):
    """(libbpf, object, [(name, program)]) of bench/<source> built (with the preprocessor's `defines`,
    "NAME=VALUE" each) and loaded, or None (with the reason printed) when it cannot be."""
    clang = shutil.which("clang")
    if not clang:
        print("no clang: skipping the reference probes")
        return None
    with tempfile.TemporaryDirectory() as tmp:
        obj_path = os.path.join(tmp, "probes.bpf.o")
        r = subprocess.run([clang, "-g", "-O2", "-target", "bpf", "-D__TARGET_ARCH_x86",
                            "-I" + os.path.join(REPO, "bpf", "include")] + ["-D" + d for d in defines] +
                           ["-c", os.path.join(HERE, source), "-o", obj_path], capture_output=True, text=True)
        if r.returncode:
            print("cannot build bench/%s: %s" % (source, r.stderr[-300:]))
            return None
        return load_object(obj_path)


def load_object(path):
    """(libbpf, object, [(name, program)]) of the BPF object file at path, loaded with the defaults it was
    built with, or None (with the reason printed) when it cannot be."""
    L = Libbpf().lib
    obj = L.bpf_object__open_file(path.encode(), None)
    if not obj or L.bpf_object__load(obj) != 0:
        print("cannot load %s" % path)
        if obj:
            L.bpf_object__close(obj)
        return None
    progs, p = [], None
    while True:
        p = L.bpf_object__next_program(obj, p)
        if not p:
            return L, obj, progs
        progs.append((L.bpf_program__name(p).decode(), p))


@contextlib.contextmanager
def attached(source, only=None):
    """Every program of bench/<source> (or only the one named `only`) attached while the block runs (no
    BPF stats: what the hooks cost a workload as such); yields False, attaching nothing, when they cannot
    be built or loaded."""
    loaded = load(source)
    if not loaded:
        yield False
        return
    L, obj, progs = loaded
    links = [L.bpf_program__attach(p) for name, p in progs if only in (None, name)]
    try:
        if not all(links):
            print("cannot attach every program of bench/%s" % source)
        yield all(links)
    finally:
        for link in links:
            if link:
                L.bpf_link__destroy(link)
        L.bpf_object__close(obj)


def source_lines(L, prog):
    """[(address, "file:line source")] of a loaded program's machine code, in address order: where the code
    of each source line starts, from the program's line info (struct bpf_prog_info) and its BTF."""
    fd = L.bpf_program__fd(prog)

    def info(fields=()):
        buf = ctypes.create_string_buffer(256)  # struct bpf_prog_info, fields at their offsets
        for offset, size, value in fields:
            buf[offset:offset + size] = value.to_bytes(size, "little")
        n = ctypes.c_uint32(len(buf))
        if L.bpf_obj_get_info_by_fd(fd, buf, ctypes.byref(n)) != 0:
            raise OSError(ctypes.get_errno(), "BPF_OBJ_GET_INFO_BY_FD")
        return buf.raw

    raw = info()
    count, size = struct.unpack_from("<I", raw, 148)[0], struct.unpack_from("<I", raw, 172)[0]
    lines = ctypes.create_string_buffer(count * size)
    addresses = (ctypes.c_uint64 * count)()
    # nr_line_info, line_info, jited_line_info, nr_jited_line_info, line_info_rec_size, jited_line_info_rec_size
    raw = info([(148, 4, count), (152, 8, ctypes.addressof(lines)), (160, 8, ctypes.addressof(addresses)),
                (168, 4, count), (172, 4, size), (176, 4, 8)])
    btf = L.btf__load_from_kernel_by_id(struct.unpack_from("<I", raw, 128)[0])  # btf_id
    if not btf:
        raise OSError(ctypes.get_errno(), "cannot load the program's BTF")
    try:
        out = []
        for i in range(count):
            # struct bpf_line_info: insn_off, file_name_off, line_off, line_col (line << 10 | column)
            _, file_off, line_off, line_col = struct.unpack_from("<IIII", lines.raw, i * size)
            out.append((addresses[i], "%s:%d %s" % (os.path.basename(L.btf__name_by_offset(btf, file_off).decode()),
                                                    line_col >> 10, L.btf__name_by_offset(btf, line_off).decode().strip())))
        return sorted(out)
    finally:
        L.btf__free(btf)


def run_stats(L, prog):
    """(run_time_ns, run_cnt) the kernel has counted for a loaded program (while BPF stats are on)."""
    with open("/proc/self/fdinfo/%d" % L.bpf_program__fd(prog)) as f:
        info = dict(line.split(":", 1) for line in f if ":" in line)
    return int(info["run_time_ns"]), int(info["run_cnt"])


def probe_costs(source, work, rounds, alone=False):
    """{program: [ns/event, one per round]} of the programs in bench/<source> while work() runs, or {}
    (with the reason printed) when they cannot be built or loaded. alone: each program attached by
    itself for its own run of work(), so that no probe warms the caches or TLB for another; otherwise
    all at once, in the order of the file."""
    loaded = load(source)
    if not loaded:
        return {}
    L, obj, progs = loaded
    links, costs = {}, {}
    stats_fd = L.bpf_enable_stats(0)  # BPF_STATS_RUN_TIME, until the fd is closed

    def read(names):
        return {name: run_stats(L, programs[name]) for name in names}

    def attach(p):
        link = L.bpf_program__attach(p)
        if not link:
            print("cannot attach %s" % L.bpf_program__name(p).decode())
        return link

    def measure(names):
        before = read(names)
        work()
        after = read(names)
        for name in names:
            n = after[name][1] - before[name][1]
            if n:
                costs.setdefault(name, []).append((after[name][0] - before[name][0]) / n)

    try:
        programs = dict(progs)
        for _ in range(rounds):
            if alone:
                for name, p in progs:
                    link = attach(p)
                    if link:
                        try:
                            measure([name])
                        finally:
                            L.bpf_link__destroy(link)
            else:
                for name, p in progs:
                    link = attach(p)
                    if link:
                        links[name] = link
                try:
                    measure(list(links))
                finally:
                    for link in links.values():
                        L.bpf_link__destroy(link)
                    links.clear()
    finally:
        if stats_fd >= 0:
            os.close(stats_fd)
        L.bpf_object__close(obj)
    return costs
