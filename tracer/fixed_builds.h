// Fixed-address builds (proto/elf_note.h): a position-independent program may
// name a directory of non-PIE builds of itself, each linked at its own
// addresses. Non-PIE code runs faster, and distinct addresses let several
// copies share one address space. This picks the build to map for a new
// member: the first whose addresses are free in the group, else the program.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "tracer/elf_mapper.h"
#include "tracer/launch_error.h"
#include "tracer/member_layout.h"
#include "tracer/program_resolver.h"

namespace pat::tracer {

struct MappedProgram {
  MappedElf mapped;
  // The fixed-address build that was mapped instead of the program, if any.
  // It then stands for the program wherever the file matters (AT_PHDR,
  // /proc/self/exe); argv and AT_EXECFN still name what the user ran.
  std::optional<OpenedElf> build;
};

// The candidate builds of `program`, in the order they are tried (file name
// order); empty if it has no fixed-builds note, or is itself ET_EXEC.
std::vector<std::string> fixed_build_candidates(const OpenedElf& program);

// Maps the first usable fixed-address build of `program`, or `program` itself
// when it has none or none fits (a build that cannot be used for another
// reason, e.g. unreadable, is logged and skipped: the program still runs).
// brk_bytes, kind and layout as for map_elf().
std::variant<MappedProgram, LaunchError> map_program_or_fixed_build(const OpenedElf& program, std::uint64_t brk_bytes,
                                                                    MemberLayout& layout);

}  // namespace pat::tracer
