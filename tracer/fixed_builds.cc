#include "tracer/fixed_builds.h"

#include <fcntl.h>

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "base/log.h"

namespace pat::tracer {
namespace {

namespace fs = std::filesystem;

void log_skipped(const OpenedElf& program, const std::string& build, const std::string& reason) {
  spdlog::warn("event=tracer.fixed_build_skipped program={} build={} reason={}", log_quote(program.path),
               log_quote(build), log_quote(reason));
}

}  // namespace

std::vector<std::string> fixed_build_candidates(const OpenedElf& program) {
  std::vector<std::string> builds;
  if (!program.image.fixed_builds_dir || program.image.fixed_address) return builds;
  // program.path is canonical, so the note's relative directory is found
  // from where the file really is, not from a symlink to it (a bin/ link).
  fs::path dir = fs::path(program.path).parent_path() / *program.image.fixed_builds_dir;
  std::error_code error;
  for (fs::directory_iterator it(dir, error), end; !error && it != end; it.increment(error))
    if (it->is_regular_file(error)) builds.push_back(it->path().string());
  if (error && builds.empty()) log_skipped(program, dir.string(), error.message());
  std::sort(builds.begin(), builds.end());
  return builds;
}

std::variant<MappedProgram, LaunchError> map_program_or_fixed_build(const OpenedElf& program, std::uint64_t brk_bytes,
                                                                    MemberLayout& layout) {
  for (const std::string& path : fixed_build_candidates(program)) {
    // Opened with the member's credentials and execve's checks, like the
    // program itself: a build is just another executable the owner may run.
    auto opened = open_elf(AT_FDCWD, path);
    if (auto* error = std::get_if<LaunchError>(&opened)) {
      log_skipped(program, path, error->message);
      continue;
    }
    OpenedElf& build = std::get<OpenedElf>(opened);
    if (!build.image.fixed_address || build.image.interpreter != program.image.interpreter) {
      log_skipped(program, path, "not ET_EXEC, or a different ELF interpreter");
      continue;
    }
    // A layout of its own, so a failed attempt leaves nothing behind.
    MemberLayout attempt;
    auto mapped = map_elf(build, MemberLayout::Kind::ProgramImage, brk_bytes, attempt);
    if (auto* error = std::get_if<LaunchError>(&mapped)) {
      attempt.release();
      // Taken by another member: the normal case once the group is busy.
      if (error->kind != LaunchError::Kind::AddressConflict) log_skipped(program, path, error->message);
      continue;
    }
    for (const MemberLayout::Entry& entry : attempt.entries()) layout.add(entry.kind, entry.range);
    return MappedProgram{std::get<MappedElf>(mapped), std::move(build)};
  }
  auto mapped = map_elf(program, MemberLayout::Kind::ProgramImage, brk_bytes, layout);
  if (auto* error = std::get_if<LaunchError>(&mapped)) return *error;
  return MappedProgram{std::get<MappedElf>(mapped), std::nullopt};
}

}  // namespace pat::tracer
