// A position-independent program's non-PIC build (proto/elf_note.h): the
// same program linked non-PIE, which runs faster (Debian's CPython: 15-25%),
// with its relocations kept so that the loader can move it. When such a
// program is launched into a group, ProgramMapper maps its non-PIC build
// instead, at the build's own addresses or moved to a free slot
// (relocating_loader.h), as long as the build is current (build_inputs.h).
// Otherwise, or when no slot is free, it maps the program itself.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <variant>

#include "tracer/build_inputs.h"
#include "tracer/elf_mapper.h"
#include "tracer/file_digest.h"
#include "tracer/launch_error.h"
#include "tracer/member_layout.h"
#include "tracer/program_resolver.h"
#include "tracer/relocating_loader.h"

namespace pat::tracer {

// A non-PIC build passed over because a package update changed what it was
// linked from. The host reports it (once in its log, and in the group's
// description), since members then run the slower position-independent build.
struct StaleBuild {
  std::string build;   // the build's path
  std::string reason;  // one line, names the changed file and the package
};

struct MappedProgram {
  MappedElf mapped;
  // The non-PIC build that was mapped instead of the program, if any. It then
  // stands for the program wherever the file matters (AT_PHDR,
  // /proc/self/exe); argv and AT_EXECFN still name what the user ran.
  std::optional<OpenedElf> build;
  std::optional<StaleBuild> stale;
};

// One per launcher (the host's): it remembers file digests and relocations
// between launches. Not thread-safe: launches happen on one thread.
class ProgramMapper {
 public:
  // Maps the program's current non-PIC build if it has one and it fits,
  // else the program itself. A build that cannot be used for another reason
  // (unreadable, not ET_EXEC) is logged and skipped: the program still runs.
  // brk_bytes and layout as for map_elf().
  std::variant<MappedProgram, LaunchError> map(const OpenedElf& program, std::uint64_t brk_bytes,
                                               MemberLayout& layout);

 private:
  // The build, opened and checked, or nothing (logged) if it cannot be used.
  std::optional<OpenedElf> open_build(const OpenedElf& program, std::optional<StaleBuild>& stale);

  void log_skipped(const OpenedElf& program, const std::string& build, const std::string& reason);

  RelocatingLoader loader_;
  FileDigests digests_;
  std::set<std::string> skips_logged_;
};

}  // namespace pat::tracer
