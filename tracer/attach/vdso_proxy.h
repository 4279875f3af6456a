// The old [vdso] address must keep working after the move: glibc looked up
// clock_gettime & co. in the vdso at start-up and calls them through cached
// pointers, but the group's address space has its own vdso elsewhere (and
// [vvar], the data the vdso code reads, cannot be copied). As CRIU does, the
// old address gets a copy of the old vdso image in which every function's
// entry jumps to the same function of the group's vdso; the rest of the
// image (ELF headers, dynamic symbols, unwind tables) stays readable for
// dl_iterate_phdr and unwinders.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"

namespace pat::tracer {

// A jump through memory (`jmp *0(%rip)` followed by the absolute target):
// 14 bytes, any distance, no register touched.
inline constexpr std::size_t kVdsoTrampolineBytes = 14;

// Rewrites `image` (the old vdso's bytes, linked at 0 like every vdso) so
// that each function symbol jumps to the function of the same name in
// `group_vdso` (the group's vdso image, mapped at `group_base`). Fails if a
// function has no counterpart or is too close to the next symbol for a jump.
Status make_vdso_proxy(std::vector<std::uint8_t>& image, const std::uint8_t* group_vdso, std::size_t group_size,
                       std::uint64_t group_base);

// The function symbols (name, offset) of a vdso image, in order.
struct VdsoFunction {
  std::string name;
  std::uint64_t offset;
};
Result<std::vector<VdsoFunction>> vdso_functions(const std::uint8_t* image, std::size_t size);

}  // namespace pat::tracer
