# gdb support for pat members: loaded by gdb next to pat-host (its auto-load
# script, "pat-host-gdb.py"), or by `patctl debug`. docs/debugging.md.
#
# gdb attached to a member reads /proc/PID/exe and /proc/PID/auxv, which the
# kernel keeps per address space: it finds pat-host, relocates pat-host and
# lists pat-host's libraries, so every frame of the member is `??`. The host
# publishes each member's program and load bias in its own memory
# (tracer/debugger_interface.h, symbol pat_debugger_interface), which every
# member shares. Once gdb has attached, this script reads that table through
# pat-host's symbol, and makes the member's program gdb's executable at its
# load bias (`exec-file` + `symbol-file -o`). gdb's own SVR4 support then
# finds the member's link map through the program's DT_DEBUG, so `bt`,
# `info sharedlibrary`, breakpoints and libthread_db see the member.
#
# pat-python's fixed-address builds link Debian's static libpython3.11.a,
# which carries no debug information, so CPython's gdb extension (py-bt)
# finds neither CPython's types nor the `frame` variable of
# _PyEval_EvalFrameDefault. For those the script borrows the types from the
# debug file of Debian's libpython3.11.so (python3.11-dbg), placed at
# addresses no process can use, and gives py-bt each evaluation loop's frame
# from the thread's chain of _PyCFrame records instead.
import os
import struct

import gdb

_MAGIC = b"patdbg1\0"
_HEADER = struct.Struct("<8sIIQIIQ")     # pat_debugger_interface_v1
_ENTRY = struct.Struct("<iIQQQ")         # pat_debug_member, its first fields
# Where borrowed debug information is placed: a non-canonical x86-64
# address, so no code address or memory read can ever fall into it.
_NOWHERE = 0x7F00000000000000


def _read_c_string(inferior, address, limit=4096):
    data = b""
    while len(data) < limit:
        chunk = inferior.read_memory(address + len(data), 256).tobytes()
        end = chunk.find(b"\0")
        if end >= 0:
            return (data + chunk[:end]).decode("utf-8", "surrogateescape")
        data += chunk
    return data.decode("utf-8", "surrogateescape")


class MemberTable:
    """The host's table of members (tracer/debugger_interface.h, version 1)."""

    def __init__(self, group, members):
        self.group = group
        self.members = members  # pid -> (program, load_bias, interpreter_base)

    @staticmethod
    def address():
        """Where pat_debugger_interface is, if the loaded program is pat-host."""
        try:
            return int(gdb.parse_and_eval("(unsigned long) &pat_debugger_interface"))
        except gdb.error:
            return None

    @staticmethod
    def read(inferior, address):
        """A consistent snapshot: the host changes the table while we read."""
        for _ in range(1000):
            magic, version, generation, members, count, entry_size, group = _HEADER.unpack(
                inferior.read_memory(address, _HEADER.size).tobytes())
            if magic != _MAGIC or version != 1:
                return None
            if generation & 1:
                continue
            try:
                raw = inferior.read_memory(members, count * entry_size).tobytes() if count else b""
                table = {}
                for i in range(count):
                    pid, _flags, program, bias, interpreter = _ENTRY.unpack_from(raw, i * entry_size)
                    table[pid] = (_read_c_string(inferior, program), bias, interpreter)
                group_name = _read_c_string(inferior, group)
            except gdb.MemoryError:
                continue  # freed under us: the generation has moved on
            again = _HEADER.unpack(inferior.read_memory(address, _HEADER.size).tobytes())[2]
            if again == generation:
                return MemberTable(group_name, table)
        return None


def _quoted(path):
    return '"' + path.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _elf_symbol(path, name):
    """The value of `name` in the ELF file's .symtab or .dynsym, or None."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        return None
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    wanted = name.encode()
    for kind in (2, 11):  # SHT_SYMTAB, then SHT_DYNSYM
        for section in sections:
            if section[1] != kind:
                continue
            strtab = sections[section[6]]
            for offset in range(section[4], section[4] + section[5], 24):
                st_name, _info, _other, _shndx, value, _size = struct.unpack_from("<IBBHQQ", data, offset)
                start = strtab[4] + st_name
                if data[start:start + len(wanted) + 1] == wanted + b"\0":
                    return value
    return None


def _interpreter_of(path):
    """The PT_INTERP of an ELF program (ld.so's path), or None."""
    with open(path, "rb") as f:
        header = f.read(64)
        phoff, = struct.unpack_from("<Q", header, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", header, 0x36)
        f.seek(phoff)
        phdrs = f.read(phentsize * phnum)
        for i in range(phnum):
            p_type, _flags, offset, _vaddr, _paddr, filesz = struct.unpack_from("<IIQQQQ", phdrs, i * phentsize)
            if p_type == 3:  # PT_INTERP
                f.seek(offset)
                return f.read(filesz).rstrip(b"\0").decode()
    return None


def _program_started(inferior, program, interpreter_base):
    """False while the member's ld.so has not run yet (patctl run --stopped).

    ld.so fills in its _r_debug (r_version) before the program's first
    library is mapped; until then there is no link map, no TLS and nothing
    for libthread_db to find.
    """
    interpreter = _interpreter_of(program) if interpreter_base else None
    r_debug = _elf_symbol(interpreter, "_r_debug") if interpreter else None
    if r_debug is None:
        return True
    version, = struct.unpack("<i", inferior.read_memory(interpreter_base + r_debug, 4).tobytes())
    return version != 0


class _FixedBuildPython:
    """py-bt for a CPython linked statically without debug information."""

    def __init__(self, program, bias):
        self.program = program
        self.bias = bias

    def libpython(self, version):
        for directory in ("/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib"):
            candidate = os.path.join(directory, "libpython%d.%d.so.1.0" % version)
            if os.path.exists(candidate):
                return os.path.realpath(candidate)
        return None

    @staticmethod
    def debug_file(path):
        """The separate debug file of `path`, found by its build-id as gdb would."""
        with open(path, "rb") as f:
            data = f.read()
        at = data.find(b"GNU\0")
        while at >= 12:
            namesz, descsz, kind = struct.unpack_from("<III", data, at - 12)
            if namesz == 4 and kind == 3 and 8 <= descsz <= 64:  # NT_GNU_BUILD_ID
                build_id = data[at + 4:at + 4 + descsz].hex()
                for directory in gdb.parameter("debug-file-directory").split(":"):
                    candidate = os.path.join(directory, ".build-id", build_id[:2], build_id[2:] + ".debug")
                    if os.path.exists(candidate):
                        return candidate
                return None
            at = data.find(b"GNU\0", at + 1)
        return None

    def set_up(self):
        runtime = _elf_symbol(self.program, "_PyRuntime")
        version_at = _elf_symbol(self.program, "Py_Version")
        if runtime is None or version_at is None:
            return False  # not CPython
        try:
            gdb.lookup_type("_PyInterpreterFrame")
            return False  # it has its own debug information: py-bt works as is
        except gdb.error:
            pass
        inferior = gdb.selected_inferior()
        hex_version, = struct.unpack("<Q", inferior.read_memory(version_at + self.bias, 8).tobytes())
        version = (hex_version >> 24, (hex_version >> 16) & 0xFF)
        library = self.libpython(version)
        debug = self.debug_file(library) if library else None
        extension = os.path.join(gdb.parameter("data-directory"), "auto-load",
                                 library.lstrip("/") + "-gdb.py") if library else None
        if not debug or not extension or not os.path.exists(extension):
            print("pat: %s is CPython %d.%d without debug information; for py-bt install python%d.%d-dbg"
                  % (self.program, version[0], version[1], version[0], version[1]))
            return False
        gdb.execute("add-symbol-file %s -o %#x" % (_quoted(debug), _NOWHERE), to_string=True)
        gdb.execute("source " + extension)  # the rest of the line is the file name: no quoting
        self._patch_py_bt(runtime + self.bias)
        print("pat: py-bt reads CPython's types from %s" % debug)
        return True

    @staticmethod
    def _patch_py_bt(runtime_address):
        import __main__
        frame_class = getattr(__main__, "Frame", None)
        frame_ptr = getattr(__main__, "PyFramePtr", None)
        if frame_class is None or frame_ptr is None or getattr(frame_class, "_pat_patched", False):
            return
        original = frame_class.get_pyop

        def get_pyop(self):
            found = original(self)
            if found is not None or not self.is_evalframe():
                return found
            interpreter_frame = _evaluation_frame(self._gdbframe, runtime_address)
            return frame_ptr(interpreter_frame) if interpreter_frame is not None else None

        frame_class.get_pyop = get_pyop
        frame_class._pat_patched = True


def _evaluation_frame(gdbframe, runtime_address):
    """The _PyInterpreterFrame that this _PyEval_EvalFrameDefault call runs.

    Each call of the evaluation loop pushes a _PyCFrame on its thread state
    (tstate->cframe, linked by ->previous) whose current_frame is the Python
    frame it executes; the n-th evaluation loop from the innermost has the
    n-th record. The thread state is the one whose thread_id is this
    thread's pthread_self(), i.e. its fs base on x86-64.
    """
    newer = 0
    frame = gdbframe.newer()
    while frame is not None:
        if frame.name() == "_PyEval_EvalFrameDefault":
            newer += 1
        frame = frame.newer()
    thread_id = int(gdb.parse_and_eval("$fs_base"))
    runtime = gdb.Value(runtime_address).cast(gdb.lookup_type("_PyRuntimeState").pointer())
    interpreter = runtime["interpreters"]["head"]
    while int(interpreter) != 0:
        tstate = interpreter["threads"]["head"]
        while int(tstate) != 0:
            if int(tstate["thread_id"]) == thread_id:
                cframe = tstate["cframe"]
                for _ in range(newer):
                    if int(cframe) == 0:
                        return None
                    cframe = cframe["previous"]
                return cframe["current_frame"] if int(cframe) != 0 else None
            tstate = tstate["next"]
        interpreter = interpreter["next"]
    return None


_viewed = {}         # inferior number -> pid whose member view is loaded (or found not to be a member)
_table_address = {}  # inferior number -> address of pat_debugger_interface
_start_checked = {}  # inferior number -> pid looked at by _on_new_objfile


def load_member_view(inferior, verbose=True):
    """Makes gdb see the member `inferior` is attached to. False if it is none."""
    address = MemberTable.address()
    if address is None:
        address = _table_address.get(inferior.num)  # pat-host's symbols may be gone by now
    if address is None:
        return False
    _table_address[inferior.num] = address
    table = MemberTable.read(inferior, address)
    if table is None or inferior.pid not in table.members:
        return False
    program, bias, _interpreter = table.members[inferior.pid]
    confirm = gdb.parameter("confirm")
    gdb.execute("set confirm off")
    try:
        gdb.execute("exec-file %s" % _quoted(program), to_string=True)
        if bias:
            gdb.execute("symbol-file -o %#x %s" % (bias, _quoted(program)), to_string=True)
        else:
            gdb.execute("symbol-file %s" % _quoted(program), to_string=True)
    finally:
        gdb.execute("set confirm %s" % ("on" if confirm else "off"))
    _viewed[inferior.num] = inferior.pid
    if verbose:
        print("pat: process %d is a member of group %s; its program: %s (load bias %#x)"
              % (inferior.pid, table.group, program, bias))
    _FixedBuildPython(program, bias).set_up()
    return True


def _look_at_current_inferior():
    inferior = gdb.selected_inferior()
    if inferior.pid == 0 or _viewed.get(inferior.num) == inferior.pid:
        return
    _viewed[inferior.num] = inferior.pid  # look once per attach, member or not
    if load_member_view(inferior):
        gdb.execute("frame")


def _on_new_objfile(event):
    """Attaching to a member that has not started its program yet.

    gdb attaches with pat-host's objfiles and loads libthread_db for
    pat-host's libc; in a member stopped before its first instruction there
    is no thread pointer yet, and libthread_db's errors stop gdb from
    resuming it. So for such a member thread debugging stays off, and
    SIGSTOP (which keeps it stopped) is not passed on when it is resumed.
    """
    inferior = gdb.selected_inferior()
    if inferior.pid == 0 or _start_checked.get(inferior.num) == inferior.pid:
        return
    # The program's own objfile comes first, before gdb relocates it: look
    # at the first library's (libthread_db is tried when libc comes).
    if event.new_objfile.filename == gdb.current_progspace().filename:
        return
    _start_checked[inferior.num] = inferior.pid
    address = MemberTable.address()
    if address is None:
        return
    table = MemberTable.read(inferior, address)
    if table is None or inferior.pid not in table.members:
        return
    _table_address[inferior.num] = address
    program, _bias, interpreter_base = table.members[inferior.pid]
    if _program_started(inferior, program, interpreter_base):
        return
    gdb.execute("set libthread-db-search-path /nonexistent/pat-member-not-started", to_string=True)
    gdb.execute("handle SIGSTOP nostop noprint nopass", to_string=True)
    print("pat: process %d has not started its program yet (patctl run --stopped): thread debugging is off "
          "for this session, and SIGSTOP is not passed on; set breakpoints, then `continue`" % inferior.pid)


def _on_stop(_event):
    _look_at_current_inferior()


def _on_before_prompt():
    _look_at_current_inferior()


def _core_program(path):
    """The program of a member's core (as pat writes them) and its load bias.

    NT_AUXV's AT_ENTRY lies in the program, and NT_FILE names the file
    mapped there; AT_ENTRY minus the file's own entry point is its bias.
    """
    with open(path, "rb") as f:
        header = f.read(64)
        if header[:4] != b"\x7fELF" or struct.unpack_from("<H", header, 16)[0] != 4:  # ET_CORE
            raise gdb.GdbError("pat-core: %s is not an ELF core file" % path)
        phoff, = struct.unpack_from("<Q", header, 0x20)
        phnum, = struct.unpack_from("<H", header, 0x38)
        f.seek(phoff)
        phdrs = f.read(phnum * 56)
        notes = b""
        for i in range(phnum):
            p_type, _flags, offset, _vaddr, _paddr, filesz = struct.unpack_from("<IIQQQQ", phdrs, i * 56)
            if p_type == 4:  # PT_NOTE
                f.seek(offset)
                notes = f.read(filesz)
                break
    auxv, files, at = {}, [], 0
    while at + 12 <= len(notes):
        namesz, descsz, kind = struct.unpack_from("<III", notes, at)
        desc = at + 12 + ((namesz + 3) & ~3)
        body = notes[desc:desc + descsz]
        if kind == 6:  # NT_AUXV
            auxv = dict(struct.iter_unpack("<QQ", body))
        elif kind == 0x46494C45:  # NT_FILE
            count, _page = struct.unpack_from("<QQ", body)
            names = body[16 + count * 24:].split(b"\0")
            for i in range(count):
                start, end, _offset = struct.unpack_from("<QQQ", body, 16 + i * 24)
                files.append((start, end, names[i].decode("utf-8", "surrogateescape")))
        at = desc + ((descsz + 3) & ~3)
    entry = auxv.get(9)  # AT_ENTRY
    for start, end, name in files:
        if entry is not None and start <= entry < end:
            with open(name, "rb") as program:
                own_entry, = struct.unpack_from("<Q", program.read(64), 0x18)
            return name, entry - own_entry
    raise gdb.GdbError("pat-core: %s names no program (no NT_AUXV AT_ENTRY within NT_FILE)" % path)


class PatCoreCommand(gdb.Command):
    """Open a pat member's core file with its program: pat-core CORE.

pat names a member's core for its program, but that program may be a file
the user did not type (pat-python runs one of its fixed-address builds);
the core itself says which (NT_AUXV's entry point within NT_FILE). Also
sets up py-bt for a CPython without debug information."""

    def __init__(self):
        super().__init__("pat-core", gdb.COMMAND_FILES, gdb.COMPLETE_FILENAME)

    def invoke(self, argument, from_tty):
        path = os.path.expanduser(argument.strip())
        if not path:
            raise gdb.GdbError("usage: pat-core CORE")
        program, bias = _core_program(path)
        gdb.execute("file %s" % _quoted(program), to_string=True)
        gdb.execute("core-file " + path)  # the rest of the line is the file name: no quoting
        print("pat: %s is a core of %s" % (path, program))
        _FixedBuildPython(program, bias).set_up()


class PatMemberCommand(gdb.Command):
    """Load the program of the pat member this inferior is attached to.

Done by itself when gdb stops in a member it attached to, or at the first
prompt. Needed by hand in one case: `gdb -batch -p PID` with this file
auto-loaded next to pat-host, which gdb reads only after attaching and
right before running the -ex commands (use `-ex pat-member` first, or
`patctl debug PID`)."""

    def __init__(self):
        super().__init__("pat-member", gdb.COMMAND_FILES)

    def invoke(self, argument, from_tty):
        inferior = gdb.selected_inferior()
        if inferior.pid == 0:
            raise gdb.GdbError("pat-member: not attached to a process")
        if not load_member_view(inferior):
            raise gdb.GdbError("pat-member: process %d is not a member of a pat group" % inferior.pid)


if not getattr(gdb, "_pat_member_support", False):
    gdb._pat_member_support = True
    PatMemberCommand()
    PatCoreCommand()
    gdb.events.stop.connect(_on_stop)
    gdb.events.new_objfile.connect(_on_new_objfile)
    # When this file is auto-loaded for pat-host at start-up (gdb -p), gdb
    # reads it only after attaching, while it walks its list of objfiles,
    # where replacing them is not safe: then the first prompt does it.
    gdb.events.before_prompt.connect(_on_before_prompt)
