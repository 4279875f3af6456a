#!/usr/bin/python3.11
"""Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/).

Seeds are small, valid-looking inputs in each target's input format, so the
fuzzers start from every method, every parameter and every file kind instead
of finding the shapes by chance. The corpus is committed; run this again
after changing a format or adding a method:  /usr/bin/python3.11 tests/fuzz/make_seeds.py
"""
import json
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")


def write(target, name, data):
    directory = os.path.join(CORPUS, target)
    os.makedirs(directory, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


def dumps(value):
    return json.dumps(value, separators=(",", ":"))


def call(method, parameters=None, **flags):
    message = {"method": method}
    if parameters is not None:
        message["parameters"] = parameters
    message.update(flags)
    return dumps(message)


def nested(depth, core="0"):
    opening, closing = "", ""
    for i in range(depth):
        opening += "[" if i % 2 == 0 else '{"a":'
        closing = ("]" if i % 2 == 0 else "}") + closing
    return opening + core + closing


# --- dispatch input format (service_harness.h) ------------------------------

def dispatch(frame, root=True, fds=0, memfd=b""):
    code = {0: 0, 3: 1, 4: 2, 1: 3}[fds]
    flags = (1 if root else 0) | (code << 1)
    if isinstance(memfd, str):
        memfd = memfd.encode()
    return bytes([flags]) + struct.pack("<H", len(memfd)) + memfd + frame.encode()


RUN = {"group": "g", "program": "/bin/true", "argv": ["true"], "env": ["A=1"], "cwd": "/",
       "umask": 18, "rlimits": {"NOFILE": [1024, 4096], "STACK": [8388608, -1]}}
ARGUMENTS = dumps({"argv": ["sh", "-c", "exit 3"], "env": ["K=V", "PATH=/bin"]})


def control_api_seeds():
    t = "fuzz_control_api"
    seeds = {
        "status": call("io.pat.Daemon.Status"),
        "create": call("io.pat.Group.Create", {"name": "g", "allow_cross_mapping": True}),
        "create_bad_name": call("io.pat.Group.Create", {"name": "../x"}),
        "list": call("io.pat.Group.List"),
        "show": call("io.pat.Group.Show", {"name": "g"}),
        "destroy": call("io.pat.Group.Destroy", {"name": "g", "force": True, "grace_ms": 10}),
        "signal": call("io.pat.Member.Signal", {"group": "g", "pid": 42, "signal": 15}),
        "getinfo": call("org.varlink.service.GetInfo"),
        "describe": call("org.varlink.service.GetInterfaceDescription", {"interface": "io.pat.Member"}),
        "unknown_method": call("io.pat.Group.Explode"),
        "unknown_interface": call("com.example.X.Y"),
        "oneway": call("io.pat.Group.List", oneway=True),
        "deep": call("io.pat.Daemon.Status", {"a": json.loads(nested(120))}),
    }
    for name, frame in seeds.items():
        write(t, name, dispatch(frame))
    write(t, "status_user", dispatch(call("io.pat.Daemon.Status"), root=False))
    write(t, "run", dispatch(call("io.pat.Member.Run", RUN, more=True), fds=3))
    write(t, "run_detach_user", dispatch(call("io.pat.Member.Run", dict(RUN, detach=True)), root=False, fds=3))
    write(t, "run_new_group", dispatch(call("io.pat.Member.Run", dict(RUN, new_group=True), more=True), fds=3))
    run_fd = {k: v for k, v in RUN.items() if k not in ("argv", "env")}
    run_fd["arguments_in_fd"] = True
    write(t, "run_arguments_fd", dispatch(call("io.pat.Member.Run", run_fd, more=True), fds=4, memfd=ARGUMENTS))
    write(t, "run_no_fds", dispatch(call("io.pat.Member.Run", RUN, more=True)))


def host_api_seeds():
    t = "fuzz_host_api"
    spawn = {k: v for k, v in RUN.items() if k != "group"}
    seeds = {
        "describe": dispatch(call("io.pat.Host.Describe")),
        "watch": dispatch(call("io.pat.Host.Watch", more=True)),
        "spawn": dispatch(call("io.pat.Host.Spawn", spawn, more=True), fds=3),
        "spawn_detach": dispatch(call("io.pat.Host.Spawn", dict(spawn, detach=True)), fds=3),
        "spawn_fd": dispatch(call("io.pat.Host.Spawn", {"program": "/bin/sh", "arguments_in_fd": True}, more=True),
                             fds=4, memfd=ARGUMENTS),
        "spawn_bad_cwd": dispatch(call("io.pat.Host.Spawn", dict(spawn, cwd="/etc/passwd"), more=True), fds=3),
        "spawn_rlimits": dispatch(call("io.pat.Host.Spawn", dict(spawn, rlimits={"AS": [-1, -1], "NOPE": [1, 2]}),
                                       more=True), fds=3),
        "signal": dispatch(call("io.pat.Host.Signal", {"pid": 1, "signal": 9})),
        "shutdown": dispatch(call("io.pat.Host.Shutdown", {"force": False, "grace_ms": 0})),
        "getinfo": dispatch(call("org.varlink.service.GetInfo")),
        "interface": dispatch(call("org.varlink.service.GetInterfaceDescription", {"interface": "io.pat.Host"})),
    }
    for name, data in seeds.items():
        write(t, name, data)


def frames_seeds():
    t = "fuzz_frames"
    frames = [
        call("io.pat.Group.Create", {"name": "g"}, more=True),
        dumps({"parameters": {"pid": 4242, "group": "g"}, "continues": True}),
        dumps({"error": "io.pat.GroupNotFound", "parameters": {"name": "g", "message": "no group named g"}}),
        dumps({"parameters": {"groups": [{"name": "g", "members": [{"argv": ["a", "\u00e9"]}]}]}}),
        call("io.pat.Member.Run", RUN, more=True),
        call("io.pat.Daemon.Status", {"a": json.loads(nested(125))}),
        '{"method":"io.pat.Group.List","more":true,"oneway":true}',
        '{"method":"x"}', "[1,2]", "{not json", '"\\ud800"', '{"a":1e999}',
    ]
    for i, frame in enumerate(frames):
        write(t, "frame%02d" % i, bytes([i * 37 % 256]) + frame.encode() + b"\0" + frame.encode() + b"\0")
    write(t, "deep", bytes([255]) + (nested(129) + "\0").encode())
    write(t, "bad_utf8", bytes([3]) + b'{"method":"\xff\xfe"}\0')


def run_request_seeds():
    """Byte 0 even: the arguments' descriptor; odd: a call's parameters."""
    t = "fuzz_run_request"

    def descriptor(text):
        return b"\0" + text.encode()

    def parameters(value):
        return b"\1" + (value if isinstance(value, str) else dumps(value)).encode()

    write(t, "plain", descriptor(ARGUMENTS))
    write(t, "big_argv", descriptor(dumps({"argv": ["x"] * 300, "env": []})))
    write(t, "nul", descriptor(dumps({"argv": ["a\u0000b"]})))
    write(t, "empty_argv", descriptor(dumps({"argv": []})))
    write(t, "wrong_types", descriptor(dumps({"argv": [1, None], "env": "x"})))
    write(t, "deep", descriptor('{"argv":' + nested(130, '"x"') + "}"))
    write(t, "run", parameters(RUN))
    write(t, "run_new_group", parameters({**RUN, "new_group": True, "detach": True}))
    write(t, "run_fd", parameters({"program": "/bin/sh", "arguments_in_fd": True}))
    write(t, "run_nul_program", parameters({**RUN, "program": "/bin/sh\u0000junk"}))
    write(t, "run_relative_cwd", parameters({**RUN, "cwd": "tmp"}))
    write(t, "run_bad_rlimits", parameters({**RUN, "rlimits": {"NOFILE": [10, 5], "BOGUS": [1, 1]}}))
    write(t, "run_deep", parameters('{"program":"/bin/true","argv":["x"],"x":' + nested(130) + "}"))


# --- ELF files ----------------------------------------------------------------

PT_LOAD, PT_INTERP, PT_NOTE, PT_PHDR, PT_GNU_STACK = 1, 3, 4, 6, 0x6474E551


def elf(e_type=3, interpreter=None, note_dir=None, base=0):
    """A small x86-64 ELF executable: header, program headers, one PT_LOAD
    covering the whole file, optional PT_INTERP and pat fixed-builds note."""
    phdrs = []
    payload = b""
    offset_payload = 64 + 56 * 6
    extra = []
    if interpreter:
        path = interpreter.encode() + b"\0"
        extra.append((PT_INTERP, 4, offset_payload + len(payload), len(path), 1))
        payload += path
    if note_dir:
        desc = note_dir.encode() + b"\0"
        name = b"pat\0"
        pad = lambda b: b + b"\0" * (-len(b) % 4)
        note = struct.pack("<III", len(name), len(desc), 1) + pad(name) + pad(desc)
        while (offset_payload + len(payload)) % 4:
            payload += b"\0"
        extra.append((PT_NOTE, 4, offset_payload + len(payload), len(note), 4))
        payload += note
    size = offset_payload + len(payload) + 16
    vaddr = base
    phdrs.append(struct.pack("<IIQQQQQQ", PT_PHDR, 4, 64, vaddr + 64, vaddr + 64, 56 * 6, 56 * 6, 8))
    phdrs.append(struct.pack("<IIQQQQQQ", PT_LOAD, 5, 0, vaddr, vaddr, size, size + 8192, 4096))
    phdrs.append(struct.pack("<IIQQQQQQ", PT_GNU_STACK, 6, 0, 0, 0, 0, 0, 16))
    for kind, flags, off, length, align in extra:
        phdrs.append(struct.pack("<IIQQQQQQ", kind, flags, off, vaddr + off, vaddr + off, length, length, align))
    while len(phdrs) < 6:
        phdrs.append(struct.pack("<IIQQQQQQ", 0, 0, 0, 0, 0, 0, 0, 0))
    header = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8
    header += struct.pack("<HHIQQQIHHHHHH", e_type, 62, 1, vaddr + offset_payload + len(payload), 64, 0, 0, 64,
                          56, 6, 64, 0, 0)
    return header + b"".join(phdrs) + payload + b"\xc3" * 16


def elf_image_seeds():
    t = "fuzz_elf_image"
    write(t, "pie", elf())
    write(t, "pie_interp", elf(interpreter="/lib64/ld-linux-x86-64.so.2"))
    write(t, "exec", elf(e_type=2, base=0x400000))
    write(t, "note", elf(note_dir="../lib/pat/fixed"))
    write(t, "truncated", elf()[:100])
    write(t, "not_elf", b"#!/bin/sh\n")


def resolver_input(files):
    """files: list of (type, contents) for f0..f3."""
    out = bytes([len(files) - 1])
    for kind, contents in files:
        if isinstance(contents, str):
            contents = contents.encode()
        out += bytes([kind]) + struct.pack("<H", len(contents)) + contents
    return out


def program_resolver_seeds():
    t = "fuzz_program_resolver"
    write(t, "elf", resolver_input([(0, elf(interpreter="/lib64/ld-linux-x86-64.so.2"))]))
    write(t, "script_sh", resolver_input([(0, "#!/bin/sh -e\necho hi\n")]))
    write(t, "chain", resolver_input([(0, "#!./f1\n"), (0, "#!f2 -x\n"), (0, "#!./f3\n"), (0, elf())]))
    write(t, "env", resolver_input([(0, "#!/usr/bin/env f1\n"), (0, elf())]))
    write(t, "env_system", resolver_input([(0, "#!/usr/bin/env sh\n")]))
    write(t, "loop", resolver_input([(0, "#!./f0\n")]))
    write(t, "fifo", resolver_input([(0, "#!./f1\n"), (2, "")]))
    write(t, "symlink", resolver_input([(3, ""), (0, elf())]))
    write(t, "directory", resolver_input([(4, "")]))
    write(t, "self_link", resolver_input([(5, "")]))
    write(t, "not_executable", resolver_input([(1, elf())]))
    write(t, "interp_is_script", resolver_input([(0, elf(interpreter="./f1")), (0, "#!/bin/sh\n")]))


def proc_text_seeds():
    t = "fuzz_proc_text"
    write(t, "stat", b"\0" + b"4242 (pat-host) S 1 4242 4242 0 -1 4194560 1123 0 0 0 12 7 0 0 20 0 5 0 "
          b"123456 1234567 890 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 17 1 0 0 0 0 0\n")
    write(t, "stat_comm", b"\1" + b"7 (a) (b c)) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 9\n")
    write(t, "status", b"\3" + b"Name:\tpat-host\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t4242\nNgid:\t0\n"
          b"Pid:\t4242\nVmSize:\t  123456 kB\nVmRSS:\t    7890 kB\n")
    write(t, "smaps", b"\2" + b"7f0000000000-7fffffffffff ---p 00000000 00:00 0  [rollup]\nRss: 10 kB\nPss: 5 kB\n")


def mapping_ledger_seeds():
    t = "fuzz_mapping_ledger"
    ops = lambda *o: bytes([0]) + bytes(b for op in o for b in op)
    write(t, "assign_erase", ops((1, 0, 10, 0, 0), (1, 10, 20, 0, 0), (0, 5, 15, 0, 0), (1, 5, 15, 1, 3)))
    write(t, "merge", ops((1, 0, 4, 0, 1), (1, 8, 12, 0, 1), (1, 4, 8, 0, 1), (3, 0, 64, 1, 1)))
    write(t, "top", bytes([1]) + bytes([1, 60, 64, 2, 6, 0, 62, 63, 0, 0, 5, 63, 64, 1, 2]))


def main():
    shutil.rmtree(CORPUS, ignore_errors=True)
    control_api_seeds()
    host_api_seeds()
    frames_seeds()
    run_request_seeds()
    elf_image_seeds()
    program_resolver_seeds()
    proc_text_seeds()
    mapping_ledger_seeds()


if __name__ == "__main__":
    main()
