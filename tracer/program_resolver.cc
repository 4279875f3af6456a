#include "tracer/program_resolver.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "tracer/kernel_abi.h"
#include "tracer/shebang.h"

namespace pat::tracer {
namespace {

// A file we may execute, and its first bytes.
struct ExecutableFile {
  UniqueFd fd;
  std::uint64_t size = 0;
  std::string head;  // up to kernel::kBinprmBufSize bytes
};

// What may_open() would have refused, named for the message.
const char* file_type(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFIFO: return "a FIFO";
    case S_IFSOCK: return "a socket";
    case S_IFCHR: return "a character device";
    case S_IFBLK: return "a block device";
    default: return "a special file";
  }
}

LaunchError open_error(const std::string& path, int err) {
  switch (err) {
    case ENOENT:
    case ENOTDIR: return LaunchError::not_found(path, std::strerror(err));
    case EACCES:
    case EPERM:
    case ELOOP:
    case ENAMETOOLONG:
    case ETXTBSY: return LaunchError::not_executable(path, std::strerror(err));
    default: return LaunchError::internal(path + ": open: " + std::strerror(err));
  }
}

// The checks of fs/exec.c do_open_execat() and fs/namei.c may_open(), made
// without opening anything but a regular file. O_PATH resolves the name
// without opening the file itself, so nothing a path can point at blocks or
// stirs the host: a FIFO (whose open waits for a writer), a device (whose
// open may act: a tape rewinds), a socket (whose open fails with ENXIO). As
// may_open() does for MAY_EXEC, anything but a regular file is EACCES.
std::variant<ExecutableFile, LaunchError> open_executable(int cwd_fd, const std::string& path) {
  UniqueFd located(::openat(cwd_fd, path.c_str(), O_PATH | O_CLOEXEC));
  if (!located) return open_error(path, errno);
  struct stat st;
  if (::fstat(located.get(), &st) != 0) return LaunchError::internal(path + ": fstat: " + std::strerror(errno));
  if (S_ISDIR(st.st_mode)) return LaunchError::not_executable(path, "is a directory");
  if (!S_ISREG(st.st_mode)) {
    return LaunchError::not_executable(path, std::string("is ") + file_type(st.st_mode) + ", not a regular file");
  }
  // noexec first: access(X_OK) fails there too, but only says EACCES.
  struct statvfs vfs;
  if (::fstatvfs(located.get(), &vfs) != 0) return LaunchError::internal(path + ": fstatvfs: " + std::strerror(errno));
  if (vfs.f_flag & ST_NOEXEC) return LaunchError::not_executable(path, "on a filesystem mounted noexec");
  // AT_EACCESS: check with the effective ids, as execve does. On the fd
  // itself (faccessat2, AT_EMPTY_PATH) so a renamed path cannot swap files.
  if (::faccessat(located.get(), "", X_OK, AT_EMPTY_PATH | AT_EACCESS) != 0)
    return LaunchError::not_executable(path, std::strerror(errno));
  // Now open that very inode for reading, through its /proc magic link:
  // whatever happened to the name since, this is the regular file checked
  // above. The kernel checks read permission as for any open.
  std::string self_link = "/proc/self/fd/" + std::to_string(located.get());
  UniqueFd fd(::open(self_link.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (!fd) return open_error(path, errno);

  ExecutableFile file{std::move(fd), static_cast<std::uint64_t>(st.st_size), {}};
  file.head.resize(kernel::kBinprmBufSize);
  ssize_t n;
  do n = ::pread(file.fd.get(), file.head.data(), file.head.size(), 0);
  while (n < 0 && errno == EINTR);
  if (n < 0) return LaunchError::not_executable(path, std::string("read: ") + std::strerror(errno));
  file.head.resize(static_cast<std::size_t>(n));
  return file;
}

// What /proc/PID/exe will show for a file mapped from this fd.
std::string canonical_path(int fd, const std::string& fallback) {
  char buf[kernel::kPathMax];
  std::string link = "/proc/self/fd/" + std::to_string(fd);
  ssize_t n = ::readlink(link.c_str(), buf, sizeof(buf));
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : fallback;
}

std::variant<OpenedElf, LaunchError> to_elf(ExecutableFile file, const std::string& path) {
  auto parsed = read_elf_image(file.fd.get(), file.size);
  if (auto* rejection = std::get_if<ElfRejection>(&parsed))
    return LaunchError::not_executable(path, "not an ELF executable (" + rejection->reason + ")");
  std::string canonical = canonical_path(file.fd.get(), path);
  return OpenedElf{std::move(file.fd), std::move(canonical), std::move(std::get<ElfImage>(parsed))};
}

}  // namespace

std::variant<OpenedElf, LaunchError> open_elf(int cwd_fd, const std::string& path) {
  auto file = open_executable(cwd_fd, path);
  if (auto* error = std::get_if<LaunchError>(&file)) return *error;
  return to_elf(std::move(std::get<ExecutableFile>(file)), path);
}

namespace {

// PT_INTERP must itself be an ELF file (fs/binfmt_elf.c: no scripts, no
// second interpreter).
std::variant<OpenedElf, LaunchError> open_interpreter(int cwd_fd, const std::string& path, const std::string& program) {
  auto elf = open_elf(cwd_fd, path);
  if (auto* error = std::get_if<LaunchError>(&elf)) {
    error->message += " (ELF interpreter of " + program + ")";
    return *error;
  }
  if (auto* opened = std::get_if<OpenedElf>(&elf); opened && opened->image.interpreter)
    return LaunchError::not_executable(path, "ELF interpreter has an interpreter itself");
  return elf;
}

}  // namespace

std::optional<std::string> search_in_path(int cwd_fd, const std::string& name, const std::string& search_path) {
  if (name.find('/') != std::string::npos) return name;
  std::size_t from = 0;
  while (from <= search_path.size()) {
    std::size_t colon = search_path.find(':', from);
    if (colon == std::string::npos) colon = search_path.size();
    std::string dir = search_path.substr(from, colon - from);
    std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + name;  // empty entry: cwd
    struct stat st;
    if (::fstatat(cwd_fd, candidate.c_str(), &st, 0) == 0 && S_ISREG(st.st_mode) &&
        ::faccessat(cwd_fd, candidate.c_str(), X_OK, AT_EACCESS) == 0)
      return candidate;
    from = colon + 1;
  }
  return std::nullopt;
}

std::variant<ResolvedProgram, LaunchError> resolve_program(int cwd_fd, const std::string& path,
                                                           const std::vector<std::string>& argv,
                                                           const std::string& search_path) {
  std::string current = path;
  std::vector<std::string> current_argv = argv;
  // `rewrites` counts the `#!` rewrites that led to `current`. As in the
  // kernel, the file one rewrite too many leads to is opened (its open
  // errors come first) but never looked at.
  for (int rewrites = 0;; ++rewrites) {
    auto opened = open_executable(cwd_fd, current);
    if (auto* error = std::get_if<LaunchError>(&opened)) {
      if (rewrites > 0) error->message += " (interpreter of " + path + ")";
      return *error;
    }
    if (rewrites > kernel::kMaxInterpreterRewrites) {
      return LaunchError::not_executable(path, std::string("too many levels of #! interpreters (") +
                                                   std::strerror(ELOOP) + ")");
    }
    auto& file = std::get<ExecutableFile>(opened);
    if (!is_script(file.head)) {
      auto elf = to_elf(std::move(file), current);
      if (auto* error = std::get_if<LaunchError>(&elf)) return *error;
      ResolvedProgram resolved{std::move(std::get<OpenedElf>(elf)), std::nullopt, std::move(current_argv)};
      if (resolved.program.image.interpreter) {
        auto interp = open_interpreter(cwd_fd, *resolved.program.image.interpreter, resolved.program.path);
        if (auto* error = std::get_if<LaunchError>(&interp)) return *error;
        resolved.interpreter = std::move(std::get<OpenedElf>(interp));
      }
      return resolved;
    }
    auto shebang = parse_shebang(file.head);
    if (!shebang) return LaunchError::not_executable(current, "bad #! line (no interpreter, or one too long)");
    if (auto name = env_program_name(*shebang)) {
      auto found = search_in_path(cwd_fd, *name, search_path);
      if (!found) return LaunchError::not_found(*name, "not found in PATH (#!" + shebang->interpreter + " in " + current + ")");
      // What env would have exec'd: argv[0] is the name as written.
      current_argv = script_argv(Shebang{*name, std::nullopt}, current, current_argv);
      current = *found;
    } else {
      current_argv = script_argv(*shebang, current, current_argv);
      current = shebang->interpreter;
    }
  }
}

}  // namespace pat::tracer
