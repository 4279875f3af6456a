// End-to-end: non-PIC programs moved by the loader (tracer/relocating_loader.h)
// run as members beside copies of themselves, and pat-python's non-PIC build
// is passed over, with the reason, when what it was linked from has changed.
#include <doctest/doctest.h>
#include <sys/mman.h>

#include <filesystem>
#include <fstream>

#include "tests/tracer/test_host.h"
#include "tests/tracer/test_files.h"
#include "tracer/relocating_loader.h"

using namespace pat::tracer;
using namespace pat::tracer::testing;
namespace fs = std::filesystem;

namespace {

const std::string kMovableOutput = "movable alpha epsilon 53824 42 7 79 gamma\n";

struct Started {
  HostedMember* member;
  Capture out;
};

// Launches `program` with stdout captured; the launch must succeed.
HostedMember* launch_captured(TestHost& host, LaunchSpec spec, Capture& out) {
  host.watch(out);
  spec.stdio[1] = out.write_end.get();
  auto launched = host.launch(spec);
  out.write_end.reset();
  if (auto* error = std::get_if<LaunchError>(&launched)) FAIL("launch failed: " << error->message);
  return std::get<HostedMember*>(launched);
}

Range image_of(const HostedMember* member) { return member->launched().layout->range_of(MemberLayout::Kind::ProgramImage); }

// The low 2 GiB where moved images go, reserved for as long as it lives.
class SlotsTaken {
 public:
  SlotsTaken() {
    void* p = ::mmap(reinterpret_cast<void*>(RelocatingLoader::kSlotsStart), kSize, PROT_NONE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
    REQUIRE(p == reinterpret_cast<void*>(RelocatingLoader::kSlotsStart));
  }
  ~SlotsTaken() { ::munmap(reinterpret_cast<void*>(RelocatingLoader::kSlotsStart), kSize); }

 private:
  static constexpr std::size_t kSize = RelocatingLoader::kSlotsEnd - RelocatingLoader::kSlotsStart;
};

// pat-python and its non-PIC build copied into a fresh prefix, laid out as
// installed, so the copy of the build can be altered.
struct PythonCopy {
  std::string dir = temp_dir();
  std::string launcher = dir + "/bin/pat-python";
  std::string build = dir + "/lib/pat/pat-python-nonpic";
  PythonCopy() {
    fs::create_directories(dir + "/bin");
    fs::create_directories(dir + "/lib/pat");
    fs::copy_file(PAT_PYTHON_LAUNCHER, launcher);
    fs::copy_file(PAT_PYTHON_NONPIC, build);
  }
  ~PythonCopy() { fs::remove_all(dir); }
};

}  // namespace

TEST_CASE("a non-PIC program runs at its own addresses, and copies of it beside it, moved below 2 GiB") {
  TestHost host;
  Capture out[3];
  HostedMember* members[3];
  for (int i = 0; i < 3; ++i) members[i] = launch_captured(host, spec_for(program("movable"), {"movable", "1500"}), out[i]);
  REQUIRE(host.run_until_all_done(std::chrono::seconds(60)));
  CHECK(image_of(members[0]).start == 0x20000000);
  for (int i = 0; i < 3; ++i) {
    CAPTURE(i);
    CHECK(members[i]->exit_code == 0);
    CHECK(out[i].data == kMovableOutput);
    CHECK(image_of(members[i]).end <= RelocatingLoader::kSlotsEnd);
    for (int j = 0; j < i; ++j) CHECK_FALSE(image_of(members[i]).overlaps(image_of(members[j])));
  }
}

TEST_CASE("without a free slot a non-PIC program is an AddressConflict, and without relocations it fits once") {
  TestHost host;
  Capture out;
  HostedMember* first = launch_captured(host, spec_for(program("movable_unrelocatable"), {"m", "1000"}), out);
  auto second = host.launch(spec_for(program("movable_unrelocatable"), {"m"}));
  REQUIRE(std::holds_alternative<LaunchError>(second));
  CHECK(std::get<LaunchError>(second).kind == LaunchError::Kind::AddressConflict);
  REQUIRE(host.run_until_all_done());
  CHECK(first->exit_code == 0);

  SlotsTaken taken;
  auto blocked = host.launch(spec_for(program("movable"), {"movable"}));
  REQUIRE(std::holds_alternative<LaunchError>(blocked));
  CHECK(std::get<LaunchError>(blocked).kind == LaunchError::Kind::AddressConflict);
}

#if defined(PAT_PYTHON_LAUNCHER)
TEST_CASE("pat-python runs its non-PIC build moved, and itself when no slot is free") {
  const std::string script = "import os, re; print(os.readlink('/proc/self/exe'), re.match(r'(?:ab?c)++', 'aca').span())";
  TestHost host;
  Capture held_out;
  HostedMember* held = launch_captured(host, spec_for(PAT_PYTHON_LAUNCHER, {"pat-python", "-c", "import time; time.sleep(2)"}), held_out);
  CHECK(held->launched().exe_path == real_path(PAT_PYTHON_NONPIC));
  RunResult moved = run_member(spec_for(PAT_PYTHON_LAUNCHER, {"pat-python", "-c", script}));
  CHECK(moved.out == real_path(PAT_PYTHON_NONPIC) + " (0, 2)\n");
  REQUIRE(host.run_until_all_done());

  SlotsTaken taken;
  RunResult fallback = run_member(spec_for(PAT_PYTHON_LAUNCHER, {"pat-python", "-c", script}));
  CHECK(fallback.exit_code == 0);
  CHECK(fallback.out == real_path(PAT_PYTHON_LAUNCHER) + " (0, 2)\n");
}

TEST_CASE("pat-python's non-PIC build is passed over, with the reason, once what it was linked from has changed") {
  PythonCopy copy;
  TestHost host;
  auto current = host.launch(spec_for(copy.launcher, {"pat-python", "-c", "pass"}));
  REQUIRE(std::holds_alternative<HostedMember*>(current));
  CHECK(std::get<HostedMember*>(current)->launched().exe_path == real_path(copy.build));
  CHECK_FALSE(std::get<HostedMember*>(current)->launched().stale_build.has_value());

  // Simulate an update: the note now records another digest for the checked
  // file (libpython3.11.so), as if that file had changed since the build.
  std::string bytes = read_file(copy.build);
  std::size_t at = bytes.find("\ncheck ");
  REQUIRE(at != std::string::npos);
  const std::size_t digest = at + 7, path = digest + 64 + 1;
  bytes[digest] = bytes[digest] == '0' ? '1' : '0';
  write_file(copy.build, bytes, 0755);
  const std::string changed = bytes.substr(path, bytes.find('\n', path) - path);

  Capture out;
  HostedMember* stale = launch_captured(host, spec_for(copy.launcher, {"pat-python", "-c", "print(6 * 7)"}), out);
  CHECK(stale->launched().exe_path == real_path(copy.launcher));
  REQUIRE(stale->launched().stale_build.has_value());
  CHECK(stale->launched().stale_build->build == real_path(copy.build));
  CHECK(stale->launched().stale_build->reason.rfind(changed + " has changed since this build was linked", 0) == 0);
  REQUIRE(host.run_until_all_done());
  CHECK(stale->exit_code == 0);
  CHECK(out.data == "42\n");
}
#endif
