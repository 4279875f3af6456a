// MappedFile: a whole file mapped read-only for as long as it lives. For the
// host's large one-off reads (a build's relocations, a library's digest):
// reading them into the heap instead would leave glibc's dynamic mmap
// threshold raised and the freed megabytes in the heap, resident in the
// group's address space for the host's whole life.
#pragma once

#include <sys/mman.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstddef>
#include <optional>
#include <span>

namespace pat::tracer {

class MappedFile {
 public:
  // The file behind `fd` (any readable regular file, memfd included), or
  // nullopt with errno set. An empty file maps as an empty span.
  static std::optional<MappedFile> of(int fd) {
    struct stat info;
    if (::fstat(fd, &info) != 0) return std::nullopt;
    if (info.st_size == 0) return MappedFile(nullptr, 0);
    void* p = ::mmap(nullptr, static_cast<std::size_t>(info.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) return std::nullopt;
    return MappedFile(static_cast<const std::byte*>(p), static_cast<std::size_t>(info.st_size));
  }

  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  MappedFile(MappedFile&& other) noexcept : data_(other.data_), size_(other.size_) { other.data_ = nullptr; }
  MappedFile& operator=(MappedFile&&) = delete;
  ~MappedFile() {
    if (data_ != nullptr) ::munmap(const_cast<std::byte*>(data_), size_);
  }

  std::span<const std::byte> bytes() const { return {data_, size_}; }

 private:
  MappedFile(const std::byte* data, std::size_t size) : data_(data), size_(size) {}
  const std::byte* data_;
  std::size_t size_;
};

}  // namespace pat::tracer
