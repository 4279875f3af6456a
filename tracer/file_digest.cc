#include "tracer/file_digest.h"

#include <fcntl.h>
#include <nettle/sha2.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>

#include "base/unique_fd.h"

namespace pat::tracer {
namespace {

std::string to_hex(const std::uint8_t* bytes, std::size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(size * 2);
  for (std::size_t i = 0; i < size; ++i) {
    hex += kDigits[bytes[i] >> 4];
    hex += kDigits[bytes[i] & 0xf];
  }
  return hex;
}

// Reads `fd` to its end through SHA-256 (nettle picks the CPU's SHA
// extensions where it has them). A small buffer on the stack: a large one
// from the heap would raise glibc's dynamic mmap threshold and leave freed
// memory resident in the group's address space.
std::variant<std::string, int> digest_of(int fd) {
  sha256_ctx context;
  sha256_init(&context);
  std::array<std::uint8_t, 64 * 1024> buffer;
  for (;;) {
    ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (n == 0) break;
    sha256_update(&context, static_cast<std::size_t>(n), buffer.data());
  }
  std::uint8_t digest[SHA256_DIGEST_SIZE];
  sha256_digest(&context, sizeof(digest), digest);
  return to_hex(digest, sizeof(digest));
}

}  // namespace

bool FileDigests::Version::operator==(const Version& other) const {
  return device == other.device && inode == other.inode && size == other.size &&
         modified.tv_sec == other.modified.tv_sec && modified.tv_nsec == other.modified.tv_nsec &&
         changed.tv_sec == other.changed.tv_sec && changed.tv_nsec == other.changed.tv_nsec;
}

std::variant<std::string, int> FileDigests::sha256_hex(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return errno;
  struct stat info;
  if (::fstat(fd.get(), &info) != 0) return errno;
  // The version of the file we opened, so the digest below is of these bytes.
  Version version{info.st_dev, info.st_ino, info.st_size, info.st_mtim, info.st_ctim};
  if (auto it = known_.find(path); it != known_.end() && it->second.version == version) return it->second.digest;
  auto digest = digest_of(fd.get());
  if (auto* text = std::get_if<std::string>(&digest)) known_[path] = Known{version, *text};
  return digest;
}

}  // namespace pat::tracer
