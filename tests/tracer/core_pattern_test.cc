// Finding the kernel's core file from core_pattern, with made-up core files
// in a scratch directory: the pattern is passed in, so the system's own
// /proc/sys/kernel/core_pattern (shared by everyone on the machine) is never
// touched.
#include "tracer/core_pattern.h"

#include <doctest/doctest.h>
#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <utime.h>

#include <cstring>
#include <ctime>
#include <filesystem>
#include <string>

#include "tests/tracer/test_files.h"

using namespace pat::tracer;
using pat::tracer::testing::read_file;
using pat::tracer::testing::temp_dir;
using pat::tracer::testing::write_file;

namespace {

// The smallest file core_file_process() accepts: an x86-64 ELF core whose
// one PT_NOTE holds an NT_PRPSINFO naming `pid`.
std::string core_of(pid_t pid) {
  Elf64_Ehdr ehdr{};
  std::memcpy(ehdr.e_ident, ELFMAG, SELFMAG);
  ehdr.e_ident[EI_CLASS] = ELFCLASS64;
  ehdr.e_ident[EI_DATA] = ELFDATA2LSB;
  ehdr.e_ident[EI_VERSION] = EV_CURRENT;
  ehdr.e_type = ET_CORE;
  ehdr.e_machine = EM_X86_64;
  ehdr.e_version = EV_CURRENT;
  ehdr.e_phoff = sizeof(ehdr);
  ehdr.e_ehsize = sizeof(ehdr);
  ehdr.e_phentsize = sizeof(Elf64_Phdr);
  ehdr.e_phnum = 1;
  char prpsinfo[136] = {};
  std::memcpy(prpsinfo + 24, &pid, sizeof(pid));
  Elf64_Nhdr nhdr{5, sizeof(prpsinfo), NT_PRPSINFO};
  std::string note(reinterpret_cast<const char*>(&nhdr), sizeof(nhdr));
  note.append("CORE\0\0\0\0", 8);
  note.append(prpsinfo, sizeof(prpsinfo));
  Elf64_Phdr phdr{PT_NOTE, 0, sizeof(ehdr) + sizeof(Elf64_Phdr), 0, 0, note.size(), 0, 4};
  return std::string(reinterpret_cast<const char*>(&ehdr), sizeof(ehdr)) +
         std::string(reinterpret_cast<const char*>(&phdr), sizeof(phdr)) + note;
}

DumpedProcess dumped(pid_t pid) {
  DumpedProcess p;
  p.pid = pid;
  p.comm = "crasher";
  p.signal = 11;
  p.uid = 1000;
  p.gid = 100;
  p.core_limit = 1234;
  p.kernel_exe = "/usr/libexec/pat/pat-host";
  p.program = "/opt/app/bin/crasher";
  return p;
}

struct Scratch {
  std::string dir = temp_dir();
  pat::UniqueFd fd{::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC)};
  ~Scratch() { std::filesystem::remove_all(dir); }
  std::string write(const std::string& name, const std::string& bytes) const {
    write_file(dir + "/" + name, bytes, 0600);
    return dir + "/" + name;
  }
};

}  // namespace

TEST_CASE("core_file_process reads pr_pid from NT_PRPSINFO, and refuses what is not an ELF core") {
  Scratch scratch;
  pat::UniqueFd core(::open(scratch.write("core", core_of(4242)).c_str(), O_RDONLY | O_CLOEXEC));
  CHECK(core_file_process(core.get()) == 4242);
  pat::UniqueFd text(::open(scratch.write("text", "not a core at all").c_str(), O_RDONLY | O_CLOEXEC));
  CHECK_FALSE(core_file_process(text.get()).has_value());
}

TEST_CASE("\"core\" with core_uses_pid: core.PID in the member's directory") {
  Scratch scratch;
  scratch.write("core.77", core_of(77));
  auto found = find_kernel_core(CorePattern{"core", true}, dumped(77), scratch.fd.get());
  REQUIRE(found);
  CHECK(found->kernel_name == "core.77");
  CHECK(found->member_name == "core.77");
  CHECK(found->member_path() == scratch.dir + "/core.77");
  CHECK(core_file_process(found->kernel_core.get()) == 77);
}

TEST_CASE("a file of that name that is another process's core is not taken") {
  Scratch scratch;
  scratch.write("core", core_of(78));
  auto found = find_kernel_core(CorePattern{"core", false}, dumped(77), scratch.fd.get());
  REQUIRE_FALSE(found);
  CHECK(found.error().code == ENOENT);
}

TEST_CASE("specifiers known afterwards are expanded; %t and %e are matched; the newest core of the pid wins") {
  Scratch scratch;
  // core.%u.%g.%s.%c.%e.%p.%t: the second of the dump and the dumping
  // thread's name are not known for sure afterwards.
  scratch.write("core.1000.100.11.1234.crasher.77.1700000000", core_of(77));
  scratch.write("core.1000.100.11.1234.crasher.77.1700000005", core_of(77));
  scratch.write("core.1000.100.11.1234.crasher.77.1700000009", core_of(76));  // another process's
  struct timespec times[2] = {{0, UTIME_OMIT}, {::time(nullptr) + 100, 0}};  // the newest: written last
  REQUIRE(::utimensat(AT_FDCWD, (scratch.dir + "/core.1000.100.11.1234.crasher.77.1700000000").c_str(), times, 0) == 0);
  auto found = find_kernel_core(CorePattern{"core.%u.%g.%s.%c.%e.%p.%t", true}, dumped(77), scratch.fd.get());
  REQUIRE(found);
  CHECK(found->kernel_name == "core.1000.100.11.1234.crasher.77.1700000000");  // newest mtime
  CHECK(found->member_name == found->kernel_name);
}

TEST_CASE("%E and %f name pat-host for the kernel; the member's core is named for its program") {
  Scratch scratch;
  scratch.write("core.!usr!libexec!pat!pat-host.pat-host.77", core_of(77));
  auto found = find_kernel_core(CorePattern{"core.%E.%f.%p", false}, dumped(77), scratch.fd.get());
  REQUIRE(found);
  CHECK(found->kernel_name == "core.!usr!libexec!pat!pat-host.pat-host.77");
  CHECK(found->member_name == "core.!opt!app!bin!crasher.crasher.77");
  // With a wildcard in the name, too.
  scratch.write("core.pat-host.77.1700000000", core_of(77));
  auto matched = find_kernel_core(CorePattern{"core.%f.%p.%t", false}, dumped(77), scratch.fd.get());
  REQUIRE(matched);
  CHECK(matched->member_name == "core.crasher.77.1700000000");
}

TEST_CASE("absolute patterns ignore the member's directory; %% and unknown specifiers as the kernel does") {
  Scratch scratch;
  Scratch other;
  std::filesystem::create_directory(scratch.dir + "/cores");
  scratch.write("cores/100%-77", core_of(77));
  auto found = find_kernel_core(CorePattern{scratch.dir + "/cores/100%%-%q%p", true}, dumped(77), other.fd.get());
  REQUIRE(found);
  CHECK(found->member_path() == scratch.dir + "/cores/100%-77");
}

TEST_CASE("pipes, sockets and wildcards in a directory name are not files pat can find") {
  Scratch scratch;
  for (const char* pattern : {"|/usr/lib/systemd/systemd-coredump %P", "@/run/coredump.socket"}) {
    auto found = find_kernel_core(CorePattern{pattern, false}, dumped(77), scratch.fd.get());
    REQUIRE_FALSE(found);
    CHECK(found.error().code == ENOTSUP);
  }
  auto found = find_kernel_core(CorePattern{"%t/core", false}, dumped(77), scratch.fd.get());
  REQUIRE_FALSE(found);
  CHECK(found.error().code == ENOTSUP);
}
