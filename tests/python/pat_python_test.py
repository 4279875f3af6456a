"""pat-python against the real /usr/bin/python3.11.

Most checks run the same command under both interpreters, from the same cwd
and environment, and compare exit status, stdout and stderr, so a difference
in either direction fails. The few checks that cannot be compared (where
pat-python must differ: sys.executable, `import pat`) say why.

Run by CTest (tests/python/CMakeLists.txt), one CTest test per TestCase class:
  /usr/bin/python3.11 -I pat_python_test.py --pat-python BIN --build-dir DIR \
      --cmake CMAKE [unittest arguments, e.g. a class name]
"""

import argparse
import json
import os
import pathlib
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

DEBIAN_PYTHON = "/usr/bin/python3.11"
DEBIAN_LIBPYTHON = "/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0"
TIMEOUT = 120

# Set from the command line in main().
PAT_PYTHON = ""
BUILD_DIR = ""
CMAKE = ""

# Prints what decides where Python looks for code. Everything here must be
# identical under both interpreters; sys.executable is left out on purpose.
STATE_PROBE = textwrap.dedent("""\
    import json, site, sys, sysconfig
    print(json.dumps({
        "path": sys.path,
        "prefix": sys.prefix,
        "exec_prefix": sys.exec_prefix,
        "base_prefix": sys.base_prefix,
        "base_exec_prefix": sys.base_exec_prefix,
        "platlibdir": sys.platlibdir,
        "stdlib_dir": sys._stdlib_dir,
        "flags": list(sys.flags),
        "argv": sys.argv,
        "orig_argv_after_0": sys.orig_argv[1:],
        "site_packages": site.getsitepackages() if hasattr(site, "getsitepackages") else None,
        "user_site": site.ENABLE_USER_SITE,
        "sysconfig_paths": sysconfig.get_paths(),
        "modules": sorted(sys.modules),
        "version": sys.version,
    }, indent=1))
    """)


def base_env(**extra):
    """The caller's environment without PYTHON* variables: they would change
    both interpreters alike, but PYTHONHOME or PYTHONPATH could also break
    both, hiding what is tested. No bytecode: tests must not write into the
    build tree."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


def run(executable, args, *, argv0=None, input=None, env=None, cwd=None):
    return subprocess.run([argv0 or executable, *args], executable=executable, input=input,
                          capture_output=True, text=True, env=base_env() if env is None else env,
                          cwd=cwd or tempfile.gettempdir(), timeout=TIMEOUT)


def normalise(text, *executables):
    """Makes the two interpreters' output comparable: their own paths (in
    usage messages, fatal-error dumps) and thread addresses differ."""
    for executable in sorted(executables, key=len, reverse=True):
        text = text.replace(executable, "<python>")
    return re.sub(r"0x[0-9a-f]{6,}", "0x<address>", text)


def realpath_is_under(path, directory):
    return os.path.realpath(path).startswith(os.path.realpath(directory) + os.sep)


class PatPythonTestCase(unittest.TestCase):
    def setUp(self):
        self.tmp = pathlib.Path(tempfile.mkdtemp(prefix="pat-python-test-"))
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.package_root = os.path.join(BUILD_DIR, "lib", "pat", "python")

    def run_both(self, args, *, pat_python=None, python=DEBIAN_PYTHON, **kwargs):
        """Runs args under pat-python and python3.11, asserts that exit status,
        stdout and stderr agree, and returns pat-python's result."""
        pat_python = pat_python or PAT_PYTHON
        ours = run(pat_python, args, **kwargs)
        theirs = run(python, args, **kwargs)
        where = f"args={args!r}"
        self.assertEqual(normalise(ours.stderr, pat_python, python),
                         normalise(theirs.stderr, pat_python, python), where)
        self.assertEqual(normalise(ours.stdout, pat_python, python),
                         normalise(theirs.stdout, pat_python, python), where)
        self.assertEqual(ours.returncode, theirs.returncode, where)
        return ours

    def probe_both(self, extra_args=(), **kwargs):
        """The STATE_PROBE under both interpreters, compared; returns the state."""
        result = self.run_both([*extra_args, "-c", STATE_PROBE, "arg1"], **kwargs)
        self.assertEqual(result.returncode, 0, result.stderr)
        return json.loads(result.stdout)

    def write(self, name, text, mode=0o644):
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        path.chmod(mode)
        return path

    def assert_pat_is_ours(self, executable, package_root, same_path_as=DEBIAN_PYTHON, **kwargs):
        """`import pat` works, comes from package_root, and sys.path (identical
        to that of same_path_as, unless None) holds no entry leading there."""
        code = "import json, sys, pat; print(json.dumps([pat.__file__, pat.__version__, sys.path]))"
        # -B: env may be empty, and no bytecode may land in the build tree.
        ours = run(executable, ["-B", "-c", code], **kwargs)
        self.assertEqual(ours.returncode, 0, ours.stderr)
        pat_file, version, path = json.loads(ours.stdout)
        self.assertEqual(pat_file, os.path.join(package_root, "pat", "__init__.py"))
        self.assertEqual(version, "0.1.0")
        for entry in path:
            self.assertFalse(realpath_is_under(entry or ".", package_root), entry)
        if same_path_as:
            theirs = run(same_path_as, ["-B", "-c", "import json, sys; print(json.dumps(sys.path))"], **kwargs)
            self.assertEqual(path, json.loads(theirs.stdout))


class SysPaths(PatPythonTestCase):
    def test_same_state_as_python311_from_the_build_tree(self):
        state = self.probe_both()
        self.assertEqual(state["prefix"], "/usr")
        self.assertIn("/usr/lib/python3/dist-packages", state["path"])

    def test_same_state_for_a_script_and_another_cwd(self):
        script = self.write("probe.py", STATE_PROBE)
        result = self.run_both([str(script), "a", "b c"], cwd="/")
        self.assertEqual(json.loads(result.stdout)["path"][0], str(self.tmp))

    def test_prefix_search_landmarks_next_to_pat_python_are_ignored(self):
        # CPython finds its prefix by searching up from the executable for
        # lib/python3.11/os.py. Plant one beside a copy of pat-python: the
        # result must still be Debian's /usr, as for python3.11.
        prefix = self.tmp / "decoy"
        (prefix / "bin").mkdir(parents=True)
        (prefix / "lib/python3.11/lib-dynload").mkdir(parents=True)
        (prefix / "lib/python3.11/os.py").write_text("raise SystemExit('decoy stdlib used')\n")
        copy = prefix / "bin" / "pat-python"
        shutil.copy2(PAT_PYTHON, copy)
        state = self.probe_both(pat_python=str(copy))
        self.assertEqual(state["prefix"], "/usr")

    def test_same_state_through_a_symlink_in_another_directory(self):
        # As /usr/local/bin/pat-python -> <prefix>/bin/pat-python would be.
        link = self.tmp / "bin" / "pat-python"
        link.parent.mkdir()
        link.symlink_to(PAT_PYTHON)
        self.probe_both(pat_python=str(link))

    def test_is_a_pie_linked_to_debians_libpython(self):
        with open(PAT_PYTHON, "rb") as elf:
            header = elf.read(64)
        self.assertEqual(header[:4], b"\x7fELF")
        self.assertEqual(int.from_bytes(header[16:18], "little"), 3, "e_type must be ET_DYN")  # <elf.h>
        result = run(PAT_PYTHON, ["-c", "print(open('/proc/self/maps').read())"])
        mapped = {line.split()[-1] for line in result.stdout.splitlines()
                  if "libpython" in line and "/" in line}
        self.assertEqual({os.path.realpath(p) for p in mapped}, {os.path.realpath(DEBIAN_LIBPYTHON)})


class CommandLine(PatPythonTestCase):
    def test_dash_c_with_arguments(self):
        self.run_both(["-c", "import sys; print(sys.argv, __name__)", "x", "-y"])

    def test_dash_m_json_tool(self):
        result = self.run_both(["-m", "json.tool", "--sort-keys"], input='{"b": [1, 2], "a": null}')
        self.assertIn('"a": null', result.stdout)

    def test_script_with_arguments(self):
        script = self.write("script.py", """\
            import sys
            print(sys.argv, __file__, __name__, sys.path[0])
            """)
        self.run_both([str(script), "one", "--two"])

    def test_script_on_stdin(self):
        source = "import sys\nprint('from stdin', sys.argv, sys.path[0] == '')\n"
        self.assertIn("from stdin", self.run_both(["-"], input=source).stdout)
        self.assertIn("from stdin", self.run_both(["-", "arg"], input=source).stdout)
        self.assertIn("from stdin", self.run_both([], input=source).stdout)

    def test_interactive_after_command_reads_stdin(self):
        result = self.run_both(["-i", "-c", "x = 41"], input="print(x + 1)\n")
        self.assertIn("42", result.stdout)

    def test_exit_status_of_sys_exit(self):
        self.assertEqual(self.run_both(["-c", "import sys; sys.exit(3)"]).returncode, 3)
        self.assertEqual(self.run_both(["-c", "raise SystemExit('bye')"]).returncode, 1)

    def test_uncaught_exception_exits_with_1_and_a_traceback(self):
        result = self.run_both(["-c", "def f():\n    raise ValueError('boom')\nf()"])
        self.assertEqual(result.returncode, 1)
        self.assertIn("ValueError: boom", result.stderr)

    def test_unhandled_keyboard_interrupt_kills_with_sigint(self):
        result = self.run_both(["-c", "raise KeyboardInterrupt"])
        self.assertEqual(result.returncode, -signal.SIGINT)

    def test_version_help_and_bad_option(self):
        self.run_both(["--version"])
        self.run_both(["-VV"])
        self.run_both(["-h"])
        self.assertEqual(self.run_both(["-Z"]).returncode, 2)

    def test_numpy_from_python3_numpy_imports(self):
        result = self.run_both(["-c", "import numpy; print(numpy.__file__, numpy.__version__, numpy.arange(10).sum())"])
        self.assertIn("/usr/lib/python3/dist-packages/numpy/", result.stdout)


class Package(PatPythonTestCase):
    def test_import_pat_with_no_environment_at_all(self):
        self.assert_pat_is_ours(PAT_PYTHON, self.package_root, env={}, cwd="/")

    def test_python311_does_not_see_this_package(self):
        # Guards the test above: if the package leaked onto python3.11's path
        # too, "works without adding to sys.path" would prove nothing.
        code = "import importlib.util as u; s = u.find_spec('pat'); print(s and s.origin)"
        origin = run(DEBIAN_PYTHON, ["-c", code]).stdout.strip()
        self.assertFalse(origin != "None" and realpath_is_under(origin, self.package_root), origin)

    def test_pat_on_sys_path_does_not_shadow_the_package(self):
        self.write("pat.py", "raise SystemExit('shadowing pat.py imported')\n")
        script = self.write("uses_pat.py", "import pat; print(pat.__file__)\n")
        result = run(PAT_PYTHON, [str(script)])
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), os.path.join(self.package_root, "pat", "__init__.py"))

    def test_finder_resolves_only_pat_and_underscore_pat_names(self):
        prefix = self.tmp / "prefix"
        (prefix / "bin").mkdir(parents=True)
        shutil.copy2(PAT_PYTHON, prefix / "bin" / "pat-python")
        root = prefix / "lib" / "pat" / "python"
        (root / "pat").mkdir(parents=True)
        (root / "pat" / "__init__.py").write_text("__version__ = 'copy'\n")
        (root / "pat" / "submodule.py").write_text("NAME = 'submodule'\n")
        (root / "_pat_native_stub.py").write_text("NAME = '_pat_native_stub'\n")
        (root / "not_pat.py").write_text("NAME = 'not_pat'\n")
        code = textwrap.dedent("""\
            import json
            import pat.submodule, _pat_native_stub
            try:
                import not_pat
                not_pat_found = True
            except ModuleNotFoundError:
                not_pat_found = False
            print(json.dumps([pat.__file__, pat.submodule.__file__, _pat_native_stub.__file__, not_pat_found]))
            """)
        result = run(str(prefix / "bin" / "pat-python"), ["-c", code], env={})
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(json.loads(result.stdout), [
            str(root / "pat" / "__init__.py"), str(root / "pat" / "submodule.py"),
            str(root / "_pat_native_stub.py"), False])


class Executable(PatPythonTestCase):
    def sys_executable(self, executable, **kwargs):
        result = run(executable, ["-c", "import sys; print(sys.executable)"], **kwargs)
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout.strip()

    def test_invoked_by_absolute_relative_and_path_lookup(self):
        bin_dir = os.path.dirname(PAT_PYTHON)
        name = os.path.basename(PAT_PYTHON)
        self.assertEqual(self.sys_executable(PAT_PYTHON), PAT_PYTHON)
        self.assertEqual(self.sys_executable(PAT_PYTHON, argv0="./" + name, cwd=bin_dir), PAT_PYTHON)
        path_lookup = shutil.which(name, path=bin_dir)
        self.assertEqual(self.sys_executable(path_lookup, argv0=name), PAT_PYTHON)

    def test_misleading_argv0_does_not_matter(self):
        # python3.11 trusts argv[0]; pat-python asks the kernel (AT_EXECFN),
        # because inside a pat group the launcher chooses argv[0].
        self.assertEqual(self.sys_executable(PAT_PYTHON, argv0="not-a-python"), PAT_PYTHON)

    def test_symlink_name_is_kept_like_python311_does(self):
        ours, theirs = self.tmp / "pat-link", self.tmp / "python-link"
        ours.symlink_to(PAT_PYTHON)
        theirs.symlink_to(DEBIAN_PYTHON)
        self.assertEqual(self.sys_executable(str(theirs)), str(theirs))
        self.assertEqual(self.sys_executable(str(ours)), str(ours))
        self.assert_pat_is_ours(str(ours), self.package_root)

    def test_shebang_script(self):
        # For a #! script AT_EXECFN names the script, not its interpreter.
        script = self.write("tool", f"""\
            #!{PAT_PYTHON}
            import json, sys, pat
            print(json.dumps([sys.executable, sys.argv, pat.__file__]))
            """, mode=0o755)
        result = subprocess.run([str(script), "arg"], capture_output=True, text=True, env=base_env(),
                                timeout=TIMEOUT)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(json.loads(result.stdout), [
            PAT_PYTHON, [str(script), "arg"], os.path.join(self.package_root, "pat", "__init__.py")])

    def test_venv_made_by_pat_python_works_like_python311s(self):
        states = {}
        for label, executable in ("ours", PAT_PYTHON), ("theirs", DEBIAN_PYTHON):
            venv = self.tmp / label
            made = run(executable, ["-m", "venv", "--without-pip", str(venv)])
            self.assertEqual(made.returncode, 0, made.stderr)
            result = run(str(venv / "bin" / "python"), ["-c", STATE_PROBE])
            self.assertEqual(result.returncode, 0, result.stderr)
            states[label] = json.loads(result.stdout.replace(str(venv), "<venv>"))
        self.assertEqual(states["ours"]["prefix"], "<venv>")
        self.assertEqual(states["ours"], states["theirs"])
        # sys.path was compared above, modulo the venv's own directory.
        self.assert_pat_is_ours(str(self.tmp / "ours" / "bin" / "python"), self.package_root, same_path_as=None)


class Multiprocessing(PatPythonTestCase):
    SCRIPT = """\
        import json, multiprocessing, os, sys

        def describe_worker(n):
            try:
                import pat
                pat_file = pat.__file__
            except ImportError:
                pat_file = None
            return [n * n, sys.executable, os.path.realpath("/proc/self/exe"), pat_file, os.getpid()]

        if __name__ == "__main__":
            multiprocessing.set_start_method("spawn")
            with multiprocessing.Pool(2) as pool:
                print(json.dumps([os.getpid(), pool.map(describe_worker, range(4))]))
        """

    def run_pool(self, executable):
        script = self.write("pool.py", self.SCRIPT)
        result = run(executable, [str(script)])
        self.assertEqual(result.returncode, 0, result.stderr)
        parent, workers = json.loads(result.stdout)
        for worker in workers:
            self.assertNotEqual(worker[4], parent, "spawn must run workers in new processes")
        return [w[:4] for w in workers]

    def test_spawn_start_method_reruns_pat_python(self):
        ours = self.run_pool(PAT_PYTHON)
        theirs = self.run_pool(DEBIAN_PYTHON)
        self.assertEqual([w[0] for w in ours], [w[0] for w in theirs])
        pat_file = os.path.join(self.package_root, "pat", "__init__.py")
        for square, executable, exe_link, worker_pat_file in ours:
            self.assertEqual(executable, PAT_PYTHON)
            self.assertEqual(exe_link, os.path.realpath(PAT_PYTHON))
            self.assertEqual(worker_pat_file, pat_file)
        for square, executable, exe_link, worker_pat_file in theirs:
            self.assertEqual(exe_link, os.path.realpath(DEBIAN_PYTHON))

    def test_subprocess_of_sys_executable_is_pat_python(self):
        code = ("import subprocess, sys; subprocess.run([sys.executable, '-c', "
                "'import os, pat; print(os.path.realpath(\"/proc/self/exe\"))'], check=True)")
        result = run(PAT_PYTHON, ["-c", code])
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), os.path.realpath(PAT_PYTHON))


class HomeAndIsolation(PatPythonTestCase):
    def fake_home(self):
        """A PYTHONHOME that works and differs from /usr: its stdlib links to
        Debian's."""
        home = self.tmp / "home"
        (home / "lib").mkdir(parents=True)
        (home / "lib" / "python3.11").symlink_to("/usr/lib/python3.11")
        return str(home)

    def test_unusable_pythonhome_fails_alike(self):
        result = self.run_both(["-c", "pass"], env=base_env(PYTHONHOME="/nonexistent"))
        self.assertEqual(result.returncode, 1)
        self.assertIn("No module named 'encodings'", result.stderr)

    def test_pythonhome_sets_the_prefix_alike(self):
        home = self.fake_home()
        self.assertEqual(self.probe_both(env=base_env(PYTHONHOME=home))["prefix"], home)
        state = self.probe_both(env=base_env(PYTHONHOME=f"{home}:/usr"))
        self.assertEqual([state["prefix"], state["exec_prefix"]], [home, "/usr"])

    def test_dash_E_and_dash_I_ignore_pythonhome_and_pythonpath(self):
        env = base_env(PYTHONHOME="/nonexistent", PYTHONPATH=str(self.tmp))
        for option in "-E", "-I", "-EsS":
            state = self.probe_both([option], env=env)
            self.assertEqual(state["prefix"], "/usr", option)
            self.assertNotIn(str(self.tmp), state["path"], option)

    def test_pythonpath_and_no_site_alike(self):
        state = self.probe_both(env=base_env(PYTHONPATH=f"{self.tmp}/a:{self.tmp}/b"))
        self.assertEqual(state["path"][1:3], [f"{self.tmp}/a", f"{self.tmp}/b"])
        self.probe_both(["-S"])
        self.probe_both(["-s"])
        self.probe_both(env=base_env(PYTHONNOUSERSITE="1", PYTHONSAFEPATH="1"))

    def test_isolated_mode_still_finds_pat(self):
        # pat belongs to the interpreter like its stdlib, so -I keeps it.
        result = run(PAT_PYTHON, ["-I", "-c", "import pat, sys; print(sys.flags.isolated, pat.__version__)"])
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.split(), ["1", "0.1.0"])


class InstalledCopy(PatPythonTestCase):
    def test_installed_copy_keeps_sys_path_and_finds_its_own_pat(self):
        prefix = self.tmp / "prefix"
        install = subprocess.run([CMAKE, "--install", BUILD_DIR, "--prefix", str(prefix), "--component", "pat-python"],
                                 capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(install.returncode, 0, install.stdout + install.stderr)
        installed = str(prefix / "bin" / "pat-python")
        state = self.probe_both(pat_python=installed)
        self.assertEqual(state["prefix"], "/usr")
        self.assert_pat_is_ours(installed, str(prefix / "lib" / "pat" / "python"), env={})


class Repl(PatPythonTestCase):
    def converse(self, executable, lines):
        """Runs the interactive REPL on a pseudo-terminal, typing each line
        after the prompt appears; returns the whole transcript."""
        controller, terminal = pty.openpty()
        process = subprocess.Popen([executable], stdin=terminal, stdout=terminal, stderr=terminal,
                                   env=base_env(TERM="dumb"), cwd=self.tmp, start_new_session=True)
        os.close(terminal)
        transcript = b""
        pending = list(lines)
        deadline = time.monotonic() + TIMEOUT
        try:
            while time.monotonic() < deadline:
                ready, _, _ = select.select([controller], [], [], 1)
                if ready:
                    try:
                        chunk = os.read(controller, 4096)
                    except OSError:  # EIO: the terminal's other end is closed
                        break
                    if not chunk:
                        break
                    transcript += chunk
                if pending and transcript.endswith(b">>> "):
                    os.write(controller, pending.pop(0).encode() + b"\n")
        finally:
            os.close(controller)
            process.wait(timeout=TIMEOUT)
        self.assertEqual(process.returncode, 0, transcript)
        return transcript.decode(errors="replace")

    def test_repl_on_a_terminal(self):
        lines = ["print(6 * 7)", "import sys; sys.flags.interactive, sys.ps1", "exit()"]
        ours = self.converse(PAT_PYTHON, lines)
        theirs = self.converse(DEBIAN_PYTHON, lines)
        self.assertIn("42", ours)
        self.assertEqual(ours.splitlines()[0], theirs.splitlines()[0], "banner")
        self.assertEqual(normalise(ours, PAT_PYTHON, DEBIAN_PYTHON), normalise(theirs, PAT_PYTHON, DEBIAN_PYTHON))


def main():
    global PAT_PYTHON, BUILD_DIR, CMAKE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pat-python", required=True)
    parser.add_argument("--build-dir", required=True)
    parser.add_argument("--cmake", default="cmake")
    options, unittest_args = parser.parse_known_args()
    PAT_PYTHON = os.path.abspath(options.pat_python)
    BUILD_DIR = os.path.abspath(options.build_dir)
    CMAKE = options.cmake
    unittest.main(argv=[sys.argv[0], *unittest_args], verbosity=2)


if __name__ == "__main__":
    main()
