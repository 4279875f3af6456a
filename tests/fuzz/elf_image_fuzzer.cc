// Fuzz target: the ELF image parser (tracer/elf_image.h) over file contents:
// the input is a file (a memfd, read with pread as the loader reads
// programs), and what is accepted must keep the promises the mapper relies on.
#include "tests/fuzz/service_harness.h"
#include "tracer/elf_image.h"
#include "tracer/kernel_abi.h"

#include <cstdlib>

using namespace pat::tracer;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto fd = pat::fuzz::sealed_memfd(std::string_view(reinterpret_cast<const char*>(data), size));
  auto parsed = read_elf_image(fd.get(), size);
  auto* image = std::get_if<ElfImage>(&parsed);
  if (image == nullptr) {
    if (std::get<ElfRejection>(parsed).reason.empty()) std::abort();  // every refusal says why
    return 0;
  }
  if (image->segments.empty()) std::abort();
  for (const LoadSegment& segment : image->segments) {
    if (segment.filesz > segment.memsz) std::abort();
    if (segment.offset > size || segment.filesz > size - segment.offset) std::abort();
    if (segment.vaddr > kernel::kTaskSize || segment.memsz > kernel::kTaskSize - segment.vaddr) std::abort();
    if ((segment.vaddr - segment.offset) % kernel::kPageSize != 0) std::abort();
  }
  if (image->span_start() >= image->span_end()) std::abort();
  if (image->max_align < kernel::kPageSize || (image->max_align & (image->max_align - 1)) != 0) std::abort();
  if (image->interpreter && (image->interpreter->empty() || image->interpreter->find('\0') != std::string::npos))
    std::abort();
  return 0;
}
