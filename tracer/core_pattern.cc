#include "tracer/core_pattern.h"

#include <dirent.h>
#include <limits.h>
#include <elf.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <vector>

namespace pat::tracer {
namespace {

// One piece of an expanded pattern: text known for sure (as the kernel wrote
// it, and as pat names the member's file), or a value that is not known
// afterwards and is matched as a wildcard.
struct Piece {
  std::string kernel;
  std::string member;
  bool wildcard = false;
};

// fs/coredump.c cn_esc_printf(): '/' in a value becomes '!', and a value
// that would be a "." or ".." path component gets a '!' for its first dot.
std::string escaped(std::string value) {
  for (char& c : value)
    if (c == '/') c = '!';
  if (value == "." || value == "..") value[0] = '!';
  return value;
}

std::string base_name(const std::string& path) { return path.substr(path.rfind('/') + 1); }

std::vector<Piece> expand(const CorePattern& core, const DumpedProcess& dumped) {
  std::vector<Piece> pieces;
  auto known = [&pieces](const std::string& kernel, const std::string& member) { pieces.push_back({kernel, member}); };
  auto same = [&known](const std::string& text) { known(text, text); };
  bool pid_in_pattern = false;
  const std::string& p = core.pattern;
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (p[i] != '%') {
      same(std::string(1, p[i]));
      continue;
    }
    if (++i == p.size()) break;  // a single % at the end is dropped
    switch (p[i]) {
      case '%': same("%"); break;
      case 'p':
        pid_in_pattern = true;
        same(std::to_string(dumped.pid));
        break;
      case 'P': same(std::to_string(dumped.pid)); break;  // one pid namespace: the host's and its members'
      case 'u': same(std::to_string(dumped.uid)); break;
      case 'g': same(std::to_string(dumped.gid)); break;
      case 's': same(std::to_string(dumped.signal)); break;
      case 'c': same(std::to_string(dumped.core_limit)); break;
      case 'h': {
        struct utsname names {};
        ::uname(&names);
        same(escaped(names.nodename));
        break;
      }
      case 'E': known(escaped(dumped.kernel_exe), escaped(dumped.program)); break;
      case 'f': known(escaped(base_name(dumped.kernel_exe)), escaped(base_name(dumped.program))); break;
      // The second of the dump, its CPU, the dumping thread and its name,
      // the dump mode: not known for sure once the process is gone.
      case 't': case 'C': case 'i': case 'I': case 'e': case 'd': pieces.push_back({"", "", true}); break;
      default: break;  // unknown specifiers are dropped, as the kernel does
    }
  }
  if (!pid_in_pattern && core.uses_pid) same(std::string(".").append(std::to_string(dumped.pid)));
  return pieces;
}

std::string fnmatch_escaped(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '*' || c == '?' || c == '[' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

std::string replaced_all(std::string text, const std::string& from, const std::string& to) {
  if (from.empty() || from == to) return text;
  for (std::size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
  return text;
}

// Whether the file `name` in `dir` is a core of `pid`; its mtime if so.
std::optional<timespec> core_of(int dir, const std::string& name, pid_t pid, UniqueFd& opened) {
  UniqueFd fd(::openat(dir, name.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC));
  struct stat st {};
  if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  if (core_file_process(fd.get()) != pid) return std::nullopt;
  opened = std::move(fd);
  return st.st_mtim;
}

}  // namespace

std::string CoreLocation::member_path() const {
  return directory_path == "/" ? "/" + member_name : directory_path + "/" + member_name;
}

Result<CorePattern> CorePattern::of_this_system() {
  CorePattern core;
  std::ifstream pattern("/proc/sys/kernel/core_pattern");
  if (!std::getline(pattern, core.pattern)) return SysError{EIO, "reading /proc/sys/kernel/core_pattern"};
  std::ifstream uses_pid("/proc/sys/kernel/core_uses_pid");
  int value = 0;
  uses_pid >> value;
  core.uses_pid = value != 0;
  return core;
}

Result<CoreLocation> find_kernel_core(const CorePattern& core, const DumpedProcess& dumped, int cwd_fd) {
  if (!core.is_file()) return SysError{ENOTSUP, "core_pattern sends cores to " + core.pattern};
  std::vector<Piece> pieces = expand(core, dumped);
  // The directory is the known text up to the last '/'; wildcards only in the name.
  std::string kernel_name, member_name, glob;
  bool wildcards = false;
  std::string directory;
  for (const Piece& piece : pieces) {
    if (!piece.wildcard && piece.kernel.find('/') != std::string::npos) {
      if (wildcards) return SysError{ENOTSUP, "core_pattern has %t, %C, %i, %I, %e or %d in a directory name"};
      std::size_t slash = piece.kernel.rfind('/');
      directory += kernel_name + piece.kernel.substr(0, slash + 1);
      kernel_name = member_name = glob = piece.kernel.substr(slash + 1);
      continue;
    }
    kernel_name += piece.kernel;
    member_name += piece.member;
    glob += piece.wildcard ? "*" : fnmatch_escaped(piece.kernel);
    wildcards = wildcards || piece.wildcard;
  }
  if (directory.empty()) directory = ".";
  UniqueFd dir(::openat(cwd_fd, directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) return last_error("opening the core directory " + directory);

  CoreLocation found;
  // The member's name: the kernel's, with what %E and %f said of pat-host
  // said of the member's program instead.
  auto place = [&](const std::string& name) {
    found.kernel_name = name;
    found.member_name = member_name;
    if (wildcards) {
      found.member_name = name;
      for (const Piece& piece : pieces) found.member_name = replaced_all(found.member_name, piece.kernel, piece.member);
    }
    char path[PATH_MAX];
    ssize_t n = ::readlink(("/proc/self/fd/" + std::to_string(dir.get())).c_str(), path, sizeof(path));
    found.directory_path = n > 0 ? std::string(path, static_cast<std::size_t>(n)) : directory;
    found.directory = std::move(dir);
  };
  if (!wildcards) {
    if (!core_of(dir.get(), kernel_name, dumped.pid, found.kernel_core))
      return SysError{ENOENT, "no core of process " + std::to_string(dumped.pid) + " at " + directory + kernel_name};
    place(kernel_name);
    return found;
  }
  // Wildcards: the newest matching file that is a core of this pid.
  DIR* listing = ::fdopendir(::dup(dir.get()));
  if (listing == nullptr) return last_error("listing " + directory);
  std::optional<timespec> newest;
  std::string newest_name;
  while (dirent* entry = ::readdir(listing)) {
    if (::fnmatch(glob.c_str(), entry->d_name, FNM_PERIOD) != 0) continue;
    UniqueFd candidate;
    auto mtime = core_of(dir.get(), entry->d_name, dumped.pid, candidate);
    if (!mtime) continue;
    if (!newest || mtime->tv_sec > newest->tv_sec ||
        (mtime->tv_sec == newest->tv_sec && mtime->tv_nsec > newest->tv_nsec)) {
      newest = mtime;
      newest_name = entry->d_name;
      found.kernel_core = std::move(candidate);
    }
  }
  ::closedir(listing);
  if (!newest) return SysError{ENOENT, "no core of process " + std::to_string(dumped.pid) + " matching " + directory + glob};
  place(newest_name);
  return found;
}

std::optional<pid_t> core_file_process(int fd) {
  Elf64_Ehdr ehdr{};
  if (::pread(fd, &ehdr, sizeof(ehdr), 0) != sizeof(ehdr)) return std::nullopt;
  if (std::string_view(reinterpret_cast<const char*>(ehdr.e_ident), SELFMAG) != ELFMAG ||
      ehdr.e_ident[EI_CLASS] != ELFCLASS64 || ehdr.e_type != ET_CORE || ehdr.e_machine != EM_X86_64 ||
      ehdr.e_phentsize != sizeof(Elf64_Phdr) || ehdr.e_phnum == 0) {
    return std::nullopt;
  }
  // The kernel writes PT_NOTE first (fs/binfmt_elf.c elf_core_dump()).
  Elf64_Phdr note{};
  if (::pread(fd, &note, sizeof(note), static_cast<off_t>(ehdr.e_phoff)) != sizeof(note) || note.p_type != PT_NOTE)
    return std::nullopt;
  constexpr std::size_t kLimit = 1 << 16;  // NT_PRPSINFO comes right after the first thread's NT_PRSTATUS
  std::vector<char> notes(std::min<std::size_t>(note.p_filesz, kLimit));
  ssize_t got = ::pread(fd, notes.data(), notes.size(), static_cast<off_t>(note.p_offset));
  if (got <= 0) return std::nullopt;
  for (std::size_t at = 0; at + sizeof(Elf64_Nhdr) <= static_cast<std::size_t>(got);) {
    Elf64_Nhdr header;
    std::memcpy(&header, notes.data() + at, sizeof(header));
    std::size_t desc = at + sizeof(header) + ((header.n_namesz + 3) & ~3u);
    if (header.n_type == NT_PRPSINFO && desc + 28 <= static_cast<std::size_t>(got)) {
      std::int32_t pid;
      std::memcpy(&pid, notes.data() + desc + 24, sizeof(pid));  // struct elf_prpsinfo: pr_pid
      return pid;
    }
    at = desc + ((header.n_descsz + 3) & ~3u);
  }
  return std::nullopt;
}

}  // namespace pat::tracer
