// End-to-end: launches that must fail, members that crash, and what the host
// must survive.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <linux/kcmp.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "tests/support/kcmp.h"
#include "tests/support/skip.h"
#include "tests/tracer/test_host.h"
#include "tests/tracer/test_files.h"
#include "base/pidfd.h"

using namespace pat::tracer;
using namespace pat::tracer::testing;
using pat::testing::Kcmp;
using pat::testing::kcmp;

namespace {

LaunchError launch_error_of(const std::string& path) {
  RunResult r = run_member(spec_for(path, {path}));
  REQUIRE(std::holds_alternative<LaunchError>(r.error));
  return std::get<LaunchError>(r.error);
}


}  // namespace

TEST_CASE("bad programs give the right LaunchError and leave the host unharmed") {
  const std::string dir = temp_dir();
  const std::string elf = read_file("/bin/true");
  REQUIRE(elf.size() > 4096);
  const int maps_before = mapping_count();

  SUBCASE("missing file") {
    LaunchError e = launch_error_of(dir + "/missing");
    CHECK(e.kind == LaunchError::Kind::NotFound);
    CHECK(e.message == dir + "/missing: No such file or directory");
  }
  SUBCASE("a directory") {
    LaunchError e = launch_error_of(dir);
    CHECK(e.kind == LaunchError::Kind::NotExecutable);
    CHECK(e.message == dir + ": is a directory");
  }
  SUBCASE("not executable (no x bit; even root needs one)") {
    write_file(dir + "/noexec", elf, 0644);
    LaunchError e = launch_error_of(dir + "/noexec");
    CHECK(e.kind == LaunchError::Kind::NotExecutable);
    CHECK(e.message == dir + "/noexec: Permission denied");
  }
  SUBCASE("corrupt ELF: bad magic, wrong machine, program headers out of the file") {
    write_file(dir + "/text", "just some text\n", 0755);
    LaunchError e = launch_error_of(dir + "/text");
    CHECK(e.kind == LaunchError::Kind::NotExecutable);
    CHECK(e.message == dir + "/text: not an ELF executable (bad ELF magic)");

    std::string arm = elf;
    arm[18] = static_cast<char>(183);  // e_machine = EM_AARCH64
    write_file(dir + "/arm", arm, 0755);
    CHECK(launch_error_of(dir + "/arm").message == dir + "/arm: not an ELF executable (built for another machine (e_machine=183))");

    std::string far = elf;
    far[32] = '\xff';  // e_phoff low byte: headers now past the end
    far[33] = '\xff';
    far[34] = '\xff';
    write_file(dir + "/far", far, 0755);
    CHECK(launch_error_of(dir + "/far").kind == LaunchError::Kind::NotExecutable);
  }
  SUBCASE("truncated ELF") {
    write_file(dir + "/short", elf.substr(0, elf.size() / 2), 0755);
    LaunchError e = launch_error_of(dir + "/short");
    CHECK(e.kind == LaunchError::Kind::NotExecutable);
    CHECK(e.message == dir + "/short: not an ELF executable (segment beyond the end of the file (truncated?))");
    write_file(dir + "/tiny", elf.substr(0, 40), 0755);
    CHECK(launch_error_of(dir + "/tiny").message == dir + "/tiny: not an ELF executable (truncated ELF header)");
  }
  SUBCASE("a script whose interpreter is missing") {
    write_file(dir + "/script", "#!/nonexistent/interp\n", 0755);
    LaunchError e = launch_error_of(dir + "/script");
    CHECK(e.kind == LaunchError::Kind::NotFound);
    CHECK(e.message == "/nonexistent/interp: No such file or directory (interpreter of " + dir + "/script)");
  }
  SUBCASE("a script that is its own interpreter loops until the kernel's depth limit") {
    write_file(dir + "/loop", "#!" + dir + "/loop\n", 0755);
    LaunchError e = launch_error_of(dir + "/loop");
    CHECK(e.kind == LaunchError::Kind::NotExecutable);
    CHECK(e.message == dir + "/loop: too many levels of #! interpreters");
  }

  // Nothing was left mapped, and the host can still launch.
  CHECK(mapping_count() == maps_before);
  CHECK(run_member(spec_for("/bin/true", {"true"})).exit_code == 0);
  for (const char* f : {"/noexec", "/text", "/arm", "/far", "/short", "/tiny", "/script", "/loop"}) ::unlink((dir + f).c_str());
  ::rmdir(dir.c_str());
}

TEST_CASE("a program on a noexec mount is not executable") {
  const std::string mnt = temp_dir();
  if (::mount("none", mnt.c_str(), "tmpfs", MS_NOEXEC, nullptr) != 0) {
    std::string why = std::strerror(errno);
    ::rmdir(mnt.c_str());
    PAT_SKIP("cannot mount a tmpfs here (" + why + ")");
  }
  write_file(mnt + "/true", read_file("/bin/true"), 0755);
  LaunchError e = launch_error_of(mnt + "/true");
  CHECK(e.kind == LaunchError::Kind::NotExecutable);
  CHECK(e.message == mnt + "/true: on a filesystem mounted noexec");
  ::umount2(mnt.c_str(), MNT_DETACH);
  ::rmdir(mnt.c_str());
}

TEST_CASE("a member shares the host's mm but not its fd table or signal handlers") {
  TestHost host;
  auto launched = host.launch(spec_for("/bin/sleep", {"sleep", "30"}));
  REQUIRE(std::holds_alternative<HostedMember*>(launched));
  HostedMember* m = std::get<HostedMember*>(launched);
  pid_t pid = m->launched().pid;
  CHECK(shares_my_address_space(pid));
  CHECK(kcmp(::getpid(), pid, KCMP_VM) == Kcmp::Same);
  CHECK(kcmp(::getpid(), pid, KCMP_FILES) == Kcmp::Different);
  CHECK(kcmp(::getpid(), pid, KCMP_SIGHAND) == Kcmp::Different);
  CHECK(kcmp(::getpid(), pid, KCMP_FS) == Kcmp::Different);
  // comm is the program's basename, as after execve.
  CHECK(read_file("/proc/" + std::to_string(pid) + "/comm") == "sleep\n");
  REQUIRE(host.supervisor().signal(*m->process, SIGKILL).ok());
  REQUIRE(host.run_until_all_done());
  CHECK(m->signal == SIGKILL);
}

TEST_CASE("a segfaulting member dies of SIGSEGV; a concurrent member runs on") {
  TestHost host;
  Capture out;
  host.watch(out);
  LaunchSpec churn = spec_for(program("malloc_churn"), {"malloc_churn", "10"});
  churn.stdio[1] = out.write_end.get();
  auto survivor = host.launch(churn);
  LaunchSpec crash = spec_for(program("segv"), {"segv"});
  crash.rlimits = {{RLIMIT_CORE, {0, 0}}};  // a core of the shared mm would hold the whole test process
  auto crasher = host.launch(crash);
  out.write_end.reset();
  REQUIRE(std::holds_alternative<HostedMember*>(survivor));
  REQUIRE(std::holds_alternative<HostedMember*>(crasher));
  REQUIRE(host.run_until([&] { return std::get<HostedMember*>(crasher)->exited; }, std::chrono::seconds(30)));
  CHECK(std::get<HostedMember*>(crasher)->signal == SIGSEGV);
  CHECK_FALSE(std::get<HostedMember*>(survivor)->exited);  // still working when the other one died
  REQUIRE(host.run_until_all_done());
  CHECK(std::get<HostedMember*>(survivor)->exit_code == 0);
  CHECK(out.data == "ok\n");
}

TEST_CASE("two members doing heavy malloc/free keep their heaps apart") {
  TestHost host;
  Capture out_a, out_b;
  host.watch(out_a);
  host.watch(out_b);
  LaunchSpec a = spec_for(program("malloc_churn"), {"malloc_churn", "30", "1"});
  a.stdio[1] = out_a.write_end.get();
  LaunchSpec b = spec_for(program("malloc_churn"), {"malloc_churn", "30", "2"});
  b.stdio[1] = out_b.write_end.get();
  auto ma = host.launch(a);
  auto mb = host.launch(b);
  out_a.write_end.reset();
  out_b.write_end.reset();
  REQUIRE(std::holds_alternative<HostedMember*>(ma));
  REQUIRE(std::holds_alternative<HostedMember*>(mb));
  REQUIRE(host.run_until_all_done(std::chrono::seconds(120)));
  CHECK(std::get<HostedMember*>(ma)->exit_code == 0);
  CHECK(std::get<HostedMember*>(mb)->exit_code == 0);
  CHECK(out_a.data == "ok\n");
  CHECK(out_b.data == "ok\n");
  // Each heap lived in its own reservation, and moved.
  Range heap = host.supervisor().brk_in_use(*std::get<HostedMember*>(ma)->process);
  CHECK(heap.end != heap.start);
}

TEST_CASE("the filter refuses 32-bit syscalls (ENOSYS) and prctl(PR_SET_MM) (EPERM) in BPF") {
  RunResult r = run_member(spec_for(program("filter_probe"), {"filter_probe"}));
  CHECK(r.exit_code == 0);
  CHECK(r.out == "int80=-38 prctl=-1/1\n");  // natively: "int80=pid prctl=0/0"
}

TEST_CASE("a set-up step failing in the child comes back as its step and errno, and nothing is left behind") {
  const int maps_before = mapping_count();
  // Searchable (it has x bits), so only the child's fchdir finds it is no directory.
  pat::UniqueFd not_a_dir(::open("/bin/true", O_PATH | O_CLOEXEC));
  REQUIRE(not_a_dir);
  LaunchSpec spec = spec_for("/bin/true", {"true"});
  spec.cwd_fd = not_a_dir.get();
  RunResult r = run_member(spec);
  REQUIRE(std::holds_alternative<LaunchError>(r.error));
  const LaunchError& e = std::get<LaunchError>(r.error);
  CHECK(e.kind == LaunchError::Kind::SetupFailed);
  CHECK(e.step == ChildStep::WorkingDirectory);
  CHECK(e.error == ENOTDIR);
  CHECK(e.message == "/bin/true: member set-up step fchdir(cwd) failed: Not a directory");
  CHECK(mapping_count() == maps_before);
  siginfo_t info{};
  CHECK(::waitid(P_ALL, 0, &info, WEXITED | WNOHANG) != 0);  // the child was reaped: no children at all
  CHECK(errno == ECHILD);
}

TEST_CASE("a working directory that may not be entered is refused before anything is mapped") {
  const int maps_before = mapping_count();
  // Not searchable, even by root: faccessat(X_OK) wants an x bit on a
  // non-directory, and that is what the launcher asks before mapping.
  const std::string dir = temp_dir();
  write_file(dir + "/plain", "", 0644);
  pat::UniqueFd unsearchable(::open((dir + "/plain").c_str(), O_PATH | O_CLOEXEC));
  REQUIRE(unsearchable);
  ::unlink((dir + "/plain").c_str());
  ::rmdir(dir.c_str());
  LaunchSpec spec = spec_for("/bin/true", {"true"});
  spec.cwd_fd = unsearchable.get();
  TestHost host;
  auto launched = host.launch(spec);
  REQUIRE(std::holds_alternative<LaunchError>(launched));
  const LaunchError& e = std::get<LaunchError>(launched);
  CHECK(e.kind == LaunchError::Kind::SetupFailed);
  CHECK(e.step == ChildStep::WorkingDirectory);
  CHECK(e.error == EACCES);
  CHECK(mapping_count() == maps_before);
  CHECK(host.supervisor().idle());  // no child was ever cloned
}
