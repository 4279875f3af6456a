"""A python3.11 update, simulated: pat-python's non-PIC build must stop
being used once the libpython it was built against changes, say so, and be
relinked by the next build, whatever mtime the changed library has.

dpkg is not run: a real update would change the machine's Python under
every other user. Instead a build tree of pat is configured against copies
of libpython3.11.a and libpython3.11.so in a temporary directory, and the
"update" rewrites those copies (new content, the old mtime put back, as
dpkg leaves an updated file older than the build's outputs). The group runs
in the real patd and pat-host of the build under test; members find the
copies through LD_LIBRARY_PATH, so the copy of libpython3.11.so stands for
the installed library: after the update every member must map the updated
copy, and never run the build's copy of the old core.

Run by CTest (tests/python/CMakeLists.txt):
  /usr/bin/python3.11 -I python_update_test.py --build-dir DIR --source-dir DIR --cmake CMAKE
"""

import argparse
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "support"))
import private_patd  # noqa: E402  (tests/support/private_patd.py)

LIBPYTHON_STATIC = "/usr/lib/python3.11/config-3.11-x86_64-linux-gnu/libpython3.11.a"
LIBPYTHON_SHARED = "/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0"
# The file the member runs from, and every libpython it maps.
EXE_PROBE = ("import os; maps = open('/proc/self/maps').read().split()\n"
             "print(os.readlink('/proc/self/exe'), ','.join(sorted({w for w in maps if 'libpython3.11' in w})))")
TIMEOUT = 600

# Set from the command line in main().
BUILD_DIR = SOURCE_DIR = CMAKE = ""


def sha256(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def cached_variable(build_dir, name):
    """A variable from a build tree's CMakeCache.txt, or None."""
    for line in (pathlib.Path(build_dir) / "CMakeCache.txt").read_text().splitlines():
        if line.startswith(name + ":"):
            return line.split("=", 1)[1]
    return None


def run(argv, **kwargs):
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=TIMEOUT, **kwargs)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, argv))}: exit {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


class SimulatedUpdate(unittest.TestCase):
    def setUp(self):
        self.tmp = pathlib.Path(tempfile.mkdtemp(prefix="pat-python-update-"))
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.libs = self.tmp / "lib"
        self.libs.mkdir()
        # copy2 keeps the mtimes, as the packages' files have them.
        self.static = pathlib.Path(shutil.copy2(LIBPYTHON_STATIC, self.libs / "libpython3.11.a"))
        self.shared = pathlib.Path(shutil.copy2(LIBPYTHON_SHARED, self.libs / "libpython3.11.so.1.0"))
        self.tree = self.tmp / "build"
        self.build = self.tree / "lib" / "pat" / "pat-python-nonpic"

    def configure_and_build(self):
        launchers = [f"-D{name}={value}" for name in ("CMAKE_C_COMPILER_LAUNCHER", "CMAKE_CXX_COMPILER_LAUNCHER")
                     if (value := cached_variable(BUILD_DIR, name))]
        run([CMAKE, "-S", SOURCE_DIR, "-B", self.tree, "-DCMAKE_BUILD_TYPE=Release", "-DBUILD_TESTING=OFF",
             f"-DPAT_DEBIAN_LIBPYTHON_STATIC={self.static}", f"-DPAT_DEBIAN_LIBPYTHON={self.shared}", *launchers])
        self.rebuild()
        # The position-independent pat-python of the build under test, beside
        # this tree's non-PIC build: its note finds ../lib/pat/pat-python-nonpic.
        shutil.copy2(pathlib.Path(BUILD_DIR) / "bin" / "pat-python", self.tree / "bin" / "pat-python")

    def rebuild(self):
        return run([CMAKE, "--build", self.tree, "--target", "pat-python-nonpic"])

    def update_libraries(self):
        """What an update does to the two files: new content, and a new
        inode (dpkg renames the new file over the old one), with the
        package's mtime, older than the build."""
        obj = self.tmp / "update.o"
        (self.tmp / "update.c").write_text("int pat_simulated_python_update = 1;\n")
        run(["cc", "-c", self.tmp / "update.c", "-o", obj])
        def append_zeros(path):
            with path.open("ab") as file:
                file.write(b"\0" * 16)

        for library, change in ((self.static, lambda path: run(["ar", "q", path, obj])), (self.shared, append_zeros)):
            stat = library.stat()
            updated = library.with_suffix(library.suffix + ".new")
            shutil.copyfile(library, updated)
            change(updated)
            os.utime(updated, ns=(stat.st_atime_ns, stat.st_mtime_ns))
            os.rename(updated, library)

    def member_run(self, patd):
        """(the file the member runs from, the libpython files it maps).
        LD_LIBRARY_PATH points pat-python at the copies, which stand for the
        installed library here."""
        result = patd.patctl("run", "--group", "g", "--env", f"LD_LIBRARY_PATH={self.libs}",
                             self.tree / "bin" / "pat-python", "-c", EXE_PROBE)
        exe, _, libraries = result.stdout.strip().partition(" ")
        return exe, libraries

    def note_check_digest(self):
        """The digest the build's note records for the checked library."""
        for line in self.build.read_bytes().split(b"\n"):
            if line.startswith(b"check "):
                return line.split(b" ")[1].decode()
        self.fail("no check line in the build's note")

    def test_update_makes_members_run_pat_python_until_the_build_is_relinked(self):
        self.configure_and_build()
        nonpic = str(self.build.resolve())
        launcher = str((self.tree / "bin" / "pat-python").resolve())
        self.assertEqual(self.note_check_digest(), sha256(self.shared))
        linked = self.build.stat().st_mtime_ns
        self.rebuild()
        self.assertEqual(self.build.stat().st_mtime_ns, linked, "relinked although nothing changed")

        with private_patd.PrivatePatd(pathlib.Path(BUILD_DIR) / "bin") as patd:
            patd.patctl("group", "create", "g")
            # The non-PIC build carries its own core: no libpython is mapped.
            self.assertEqual(self.member_run(patd), (nonpic, ""))

            self.update_libraries()
            self.assertLess(self.shared.stat().st_mtime_ns, linked, "the update must look older than the build")
            # Every member now runs the updated library, not the build's copy
            # of the old core.
            for _ in range(2):
                self.assertEqual(self.member_run(patd), (launcher, str(self.shared)))
            warnings = [line for line in patd.log().splitlines() if "event=member.stale_build" in line]
            self.assertEqual(len(warnings), 1, patd.log())
            self.assertIn(f"build={nonpic}", warnings[0])
            self.assertIn(f"{self.shared} has changed since this build was linked", warnings[0])

            stale = patd.show("g")["stale_builds"]
            self.assertEqual([entry["build"] for entry in stale], [nonpic])
            status = json.loads(patd.patctl("status", "--json").stdout)
            self.assertEqual([(entry["group"], entry["build"]) for entry in status["stale_builds"]], [("g", nonpic)])
            self.assertIn("stale build", patd.patctl("group", "show", "g").stdout)

            # The next build relinks, although the libraries look older than it.
            self.rebuild()
            self.assertGreater(self.build.stat().st_mtime_ns, linked)
            self.assertEqual(self.note_check_digest(), sha256(self.shared))
            self.assertEqual(self.member_run(patd), (nonpic, ""))


def main():
    global BUILD_DIR, SOURCE_DIR, CMAKE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", required=True)
    parser.add_argument("--source-dir", required=True)
    parser.add_argument("--cmake", default="cmake")
    options, unittest_args = parser.parse_known_args()
    BUILD_DIR = os.path.abspath(options.build_dir)
    SOURCE_DIR = os.path.abspath(options.source_dir)
    CMAKE = options.cmake
    unittest.main(argv=[sys.argv[0], *unittest_args], verbosity=2)


if __name__ == "__main__":
    main()
