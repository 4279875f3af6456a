// Fuzz target: the program resolver (tracer/program_resolver.h) over file
// contents — `#!` lines parsed as fs/binfmt_script.c does, the env shortcut
// and its PATH search, chains of scripts, ELF headers and PT_INTERP — on
// real files, opened with execve's checks, exactly as the host resolves a
// member's program. Nothing is mapped or run.
//
// Input: one byte giving the number of files (1-4), then per file a type
// byte and a little-endian 16-bit length followed by its contents. The
// files are f0..f3 in a scratch directory; f0 is the program, looked up
// from that directory (so `#!f1` or `#!./f1` name the next file), with
// PATH=".:/usr/bin:/bin". Types: 0 regular 0755, 1 regular 0644, 2 a FIFO,
// 3 a symlink to the next file, 4 a directory, 5 a symlink to itself.
#include "tracer/kernel_abi.h"
#include "tracer/program_resolver.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace {

using namespace pat::tracer;

// f0 .. f3 (built from two chars: GCC 12's -Wrestrict misfires on
// "f" + std::to_string(i)).
std::string file_name(int index) { return std::string{'f', static_cast<char>('0' + index % 4)}; }

struct Scratch {
  std::string dir;
  pat::UniqueFd fd;
  Scratch() {
    char templ[] = "/tmp/pat-fuzz-resolver-XXXXXX";
    if (::mkdtemp(templ) == nullptr) std::abort();
    dir = templ;
    fd = pat::UniqueFd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!fd) std::abort();
  }
  void clear() const {
    for (int i = 0; i < 4; ++i) {
      std::string name = file_name(i);
      if (::unlinkat(fd.get(), name.c_str(), 0) != 0) ::unlinkat(fd.get(), name.c_str(), AT_REMOVEDIR);
    }
  }
  void make(int index, std::uint8_t type, std::string_view contents) const {
    std::string name = file_name(index);
    std::string next = file_name(index + 1);
    switch (type % 6) {
      case 0:
      case 1: {
        pat::UniqueFd file(::openat(fd.get(), name.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                                    type % 6 == 0 ? 0755 : 0644));
        if (!file) std::abort();
        if (!contents.empty() && ::write(file.get(), contents.data(), contents.size()) !=
                                     static_cast<ssize_t>(contents.size()))
          std::abort();
        ::fchmodat(fd.get(), name.c_str(), type % 6 == 0 ? 0755 : 0644, 0);  // whatever the umask
        break;
      }
      case 2: ::mkfifoat(fd.get(), name.c_str(), 0755); break;
      case 3: ::symlinkat(next.c_str(), fd.get(), name.c_str()); break;
      case 4: ::mkdirat(fd.get(), name.c_str(), 0755); break;
      case 5: ::symlinkat(name.c_str(), fd.get(), name.c_str()); break;
    }
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Scratch* scratch = new Scratch();
  if (size < 1) return 0;
  scratch->clear();
  int files = 1 + data[0] % 4;
  std::size_t at = 1;
  for (int i = 0; i < files; ++i) {
    std::uint8_t type = at < size ? data[at] : 0;
    std::size_t length = at + 2 < size ? data[at + 1] | (std::size_t{data[at + 2]} << 8) : 0;
    at = std::min(at + 3, size);
    length = std::min(length, size - at);
    scratch->make(i, type, std::string_view(reinterpret_cast<const char*>(data + at), length));
    at += length;
  }
  auto resolved = resolve_program(scratch->fd.get(), "f0", {"f0", "arg"}, ".:/usr/bin:/bin");
  if (auto* program = std::get_if<ResolvedProgram>(&resolved)) {
    if (!program->program.fd || program->argv.empty()) std::abort();
    // Each #! rewrite puts the script's path in argv; no more than the kernel allows.
    if (program->argv.size() > 2 + 2 * static_cast<std::size_t>(kernel::kMaxInterpreterRewrites)) std::abort();
    if (program->interpreter && program->interpreter->image.interpreter) std::abort();
  } else if (std::get<LaunchError>(resolved).message.empty()) {
    std::abort();
  }
  return 0;
}
