#include "tracer/nonpic_build.h"

#include <fcntl.h>

#include <filesystem>

#include "base/log.h"

namespace pat::tracer {

// Once per build and reason: a broken install would otherwise say the same
// thing at every launch.
void ProgramMapper::log_skipped(const OpenedElf& program, const std::string& build, const std::string& reason) {
  if (!skips_logged_.insert(build + '\n' + reason).second) return;
  spdlog::warn("event=tracer.nonpic_build_skipped program={} build={} reason={}", log_quote(program.path),
               log_quote(build), log_quote(reason));
}

std::optional<OpenedElf> ProgramMapper::open_build(const OpenedElf& program, std::optional<StaleBuild>& stale) {
  if (!program.image.nonpic_build || program.image.fixed_address) return std::nullopt;
  // program.path is canonical, so the note's relative path is followed from
  // where the file really is, not from a symlink to it (a bin/ link).
  const std::string path =
      (std::filesystem::path(program.path).parent_path() / *program.image.nonpic_build).lexically_normal().string();
  // Opened with the member's credentials and execve's checks, like the
  // program itself: a build is just another executable the owner may run.
  auto opened = open_elf(AT_FDCWD, path);
  if (auto* error = std::get_if<LaunchError>(&opened)) {
    log_skipped(program, path, error->message);
    return std::nullopt;
  }
  OpenedElf& build = std::get<OpenedElf>(opened);
  if (!build.image.fixed_address || build.image.interpreter != program.image.interpreter) {
    log_skipped(program, path, "not ET_EXEC, or a different ELF interpreter");
    return std::nullopt;
  }
  if (!build.image.build_inputs) {
    log_skipped(program, path, "it does not say what it was linked from");
    return std::nullopt;
  }
  auto inputs = parse_build_inputs(*build.image.build_inputs);
  if (auto* problem = std::get_if<std::string>(&inputs)) {
    log_skipped(program, path, *problem);
    return std::nullopt;
  }
  if (auto reason = why_stale(std::get<BuildInputs>(inputs), digests_)) {
    stale = StaleBuild{build.path, *reason};
    return std::nullopt;
  }
  return std::move(build);
}

std::variant<MappedProgram, LaunchError> ProgramMapper::map(const OpenedElf& program, std::uint64_t brk_bytes,
                                                            MemberLayout& layout) {
  MappedProgram result;
  if (auto build = open_build(program, result.stale)) {
    MemberLayout attempt;  // of its own, so a failed attempt leaves nothing behind
    auto mapped = loader_.map(*build, MemberLayout::Kind::ProgramImage, brk_bytes, attempt);
    if (auto* image = std::get_if<MappedElf>(&mapped)) {
      for (const MemberLayout::Entry& entry : attempt.entries()) layout.add(entry.kind, entry.range);
      result.mapped = *image;
      result.build = std::move(build);
      return result;
    }
    attempt.release();
    const LaunchError& error = std::get<LaunchError>(mapped);
    if (error.kind != LaunchError::Kind::AddressConflict) {
      log_skipped(program, build->path, error.message);
    } else if (auto* rejection = std::get_if<ElfRejection>(&loader_.relocations_of(*build))) {
      // A stripped build (no relocations left) still runs, unmoved, for one member at a time.
      log_skipped(program, build->path, "cannot be moved: " + rejection->reason);
    }  // else every slot is taken: the normal case in a very busy group
  }
  // Any other program; an ET_EXEC that kept its relocations is moved too.
  auto mapped = loader_.map(program, MemberLayout::Kind::ProgramImage, brk_bytes, layout);
  if (auto* error = std::get_if<LaunchError>(&mapped)) return *error;
  result.mapped = std::get<MappedElf>(mapped);
  return result;
}

}  // namespace pat::tracer
