// pat-python: Debian's CPython 3.11 as a position-independent executable, so
// that any number of interpreters fit in one pat group's address space
// (/usr/bin/python3.11 is ET_EXEC at 0x400000). It behaves like python3.11:
// the command line goes to CPython's own parser, and only sys.executable, the
// prefix and the `pat` package finder are set here.

// Python.h first: it sets feature-test macros the C library headers depend on.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <cstdio>
#include <filesystem>
#include <optional>
#include <system_error>

#include "python/launcher/own_executable.h"
#include "python/launcher/package_finder.h"
#include "proto/elf_note.h"

#define PAT_STRINGIFY_(x) #x
#define PAT_STRINGIFY(x) PAT_STRINGIFY_(x)

#if defined(PAT_PYTHON_NONPIC_BUILD_FROM_BIN)
// The position-independent pat-python names its non-PIC build
// (proto/elf_note.h): the same launcher linked non-PIE with Debian's static
// libpython3.11.a, its relocations kept. pat's loader maps it, moved to a
// free place, when pat-python runs in a group, and members then run CPython
// nearly as fast as /usr/bin/python3.11 does (docs/pat-python.md, "Speed").
asm(".pushsection .note.pat, \"a\", @note\n"
    ".balign 4\n"
    ".long 4\n"          // namesz: "pat" and its NUL
    ".long 2f - 1f\n"    // descsz
    ".long " PAT_STRINGIFY(PAT_NOTE_NONPIC_BUILD) "\n"
    ".asciz \"" PAT_NOTE_OWNER "\"\n"
    "1: .asciz \"" PAT_PYTHON_NONPIC_BUILD_FROM_BIN "\"\n"
    "2: .balign 4\n"
    ".popsection\n");
#endif

namespace {

// PyConfig holds heap strings; PyConfig_Clear frees them when the scope ends.
class PythonConfig {
 public:
  PythonConfig() { PyConfig_InitPythonConfig(&config_); }
  ~PythonConfig() { PyConfig_Clear(&config_); }
  PythonConfig(const PythonConfig&) = delete;
  PythonConfig& operator=(const PythonConfig&) = delete;

  PyConfig* operator->() { return &config_; }
  PyConfig* get() { return &config_; }

 private:
  PyConfig config_;
};

// As Programs/python.c does through pymain_main: an exit status (--version,
// -h, a bad option) exits with its code, an error prints and exits with 1.
void exit_if_failed(PyStatus status) {
  if (PyStatus_Exception(status)) Py_ExitStatusException(status);
}

void set_config_string(PythonConfig& config, wchar_t** field, const char* value) {
  exit_if_failed(PyConfig_SetBytesString(config.get(), field, value));
}

// Steps 2 to 4 of main(). The PyConfig is cleared on return: the interpreter
// has copied what it needs.
void initialise_python(int argc, char** argv, const std::optional<pat::python::OwnExecutable>& self) {
  // 2. Pre-initialise from argv exactly as pymain_init does: -E, -I, -X utf8
  //    and -X dev decide locale coercion and UTF-8 mode before anything else.
  PyPreConfig preconfig;
  PyPreConfig_InitPythonConfig(&preconfig);
  exit_if_failed(Py_PreInitializeFromBytesArgs(&preconfig, argc, argv));

  // 3. Configure. argv goes to CPython's own option parser: -c, -m, scripts,
  //    stdin, -i, -E, -I and the REPL behave as in python3.11 because they are
  //    python3.11's code.
  PythonConfig config;
  exit_if_failed(PyConfig_SetBytesArgv(config.get(), argc, argv));
  if (self) set_config_string(config, &config->executable, self->invoked_path.c_str());
  // CPython searches for its prefix upwards from the executable's directory;
  // from a build tree or an odd install prefix that finds the wrong tree (or
  // "/" through the merged-/usr symlink /lib). Giving prefix and exec_prefix
  // skips only that search: sys.path is still computed from them as
  // python3.11's is, and PYTHONHOME, honoured unless -E or -I, still overrides
  // both inside getpath, as in python3.11. Not `home`: that would disable
  // pyvenv.cfg detection and PYTHONHOME.
  set_config_string(config, &config->prefix, PAT_DEBIAN_PYTHON_PREFIX);
  set_config_string(config, &config->exec_prefix, PAT_DEBIAN_PYTHON_EXEC_PREFIX);

  // 4. Initialise. site (and with it .pth files and sitecustomize) runs here.
  exit_if_failed(Py_InitializeFromConfig(config.get()));
}

#if defined(PAT_PYTHON_LAUNCHER_FROM_NONPIC_BUILD)
// This is the non-PIC build. pat's loader maps it in place of pat-python
// with AT_EXECFN still naming pat-python, so normally we already found the
// launcher. But for a `#!` script AT_EXECFN is the script and the answer came
// from /proc/self/exe, which names this build (as it does if someone runs the
// build by hand). Report pat-python then: sys.executable must re-run the
// launcher, and the pat package is found from its bin/.
std::optional<pat::python::OwnExecutable> as_launcher(std::optional<pat::python::OwnExecutable> self) {
  namespace fs = std::filesystem;
  std::error_code error;
  if (!self || self->resolved_path != fs::canonical("/proc/self/exe", error)) return self;
  fs::path launcher = fs::canonical(self->resolved_path.parent_path() / PAT_PYTHON_LAUNCHER_FROM_NONPIC_BUILD, error);
  if (error) return self;
  return pat::python::OwnExecutable{launcher, launcher};
}
#else
std::optional<pat::python::OwnExecutable> as_launcher(std::optional<pat::python::OwnExecutable> self) { return self; }
#endif

}  // namespace

// CPython does not free everything at exit, by design; under PAT_SANITIZE
// LeakSanitizer would otherwise fail every run.
#if defined(__SANITIZE_ADDRESS__)
extern "C" const char* __asan_default_options() { return "detect_leaks=0"; }
#endif

int main(int argc, char** argv) {
  // The order, top to bottom:
  // 1. Locate ourselves while the cwd is still the one AT_EXECFN is relative to.
  const auto self = as_launcher(pat::python::locate_own_executable());
  if (!self) {
    std::fputs("pat-python: cannot locate its own executable; sys.executable falls back to argv[0] "
               "and `import pat` is unavailable\n",
               stderr);
  }

  // 2-4. Pre-initialise, configure and initialise CPython.
  initialise_python(argc, argv, self);

  // 5. Before any of the user's code runs.
  // resolved_path has no symlinks left, so dropping "bin/.." lexically is safe.
  if (self && !pat::python::install_pat_package_finder(
                  (self->resolved_path.parent_path() / PAT_PYTHON_PACKAGE_ROOT_FROM_BIN).lexically_normal())) {
    std::fputs("pat-python: cannot install the finder for the pat package\n", stderr);
    Py_FinalizeEx();
    return 1;
  }

  // 6. Run -c, -m, the script, stdin or the REPL (and -i after them), finalise,
  //    and turn the outcome into python3.11's exit status, including death by
  //    SIGINT after an unhandled KeyboardInterrupt.
  return Py_RunMain();
}
