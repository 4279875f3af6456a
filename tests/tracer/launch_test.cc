// End-to-end: real programs launched as members of the test process's
// address space, checked by exit status and output.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/tracer/test_host.h"
#include "tests/tracer/test_files.h"

using namespace pat::tracer;
using namespace pat::tracer::testing;

TEST_CASE("exit statuses come back: /bin/true, /bin/false, sh -c 'exit 7'") {
  CHECK(run_member(spec_for("/bin/true", {"true"})).exit_code == 0);
  CHECK(run_member(spec_for("/bin/false", {"false"})).exit_code == 1);
  RunResult sh = run_member(spec_for("/bin/sh", {"sh", "-c", "exit 7"}));
  CHECK(sh.exit_code == 7);
  CHECK(sh.signal == 0);
}

TEST_CASE("an empty argv becomes {\"\"}, as execve does since Linux 5.18") {
  RunResult r = run_member(spec_for(program("hello_static"), {}));
  CHECK(r.exit_code == 0);
  CHECK(r.out.rfind("hello argc=1 ", 0) == 0);
  CHECK(r.argv == std::vector<std::string>{""});
}

TEST_CASE("/bin/echo hello writes to the stdout it was given") {
  RunResult r = run_member(spec_for("/bin/echo", {"echo", "hello"}));
  CHECK(r.exit_code == 0);
  CHECK(r.out == "hello\n");
  CHECK(r.err == "");
}

TEST_CASE("cat copies a stdin pipe to stdout") {
  Capture in;
  const std::string text = "line one\nline two\n";
  REQUIRE(::write(in.write_end.get(), text.data(), text.size()) == static_cast<ssize_t>(text.size()));
  in.write_end.reset();
  LaunchSpec spec = spec_for("/bin/cat", {"cat"});
  spec.stdio[0] = in.read_end.get();
  RunResult r = run_member(spec);
  CHECK(r.exit_code == 0);
  CHECK(r.out == text);
}

TEST_CASE("environment, extra_env and cwd reach the member") {
  LaunchSpec spec = spec_for("/usr/bin/env", {"env"});
  spec.env = {"PATH=/usr/bin:/bin", "FOO=from-env", "PAT_GROUP=old"};
  spec.extra_env = {{"PAT_GROUP", "g1"}, {"EXTRA", "yes"}};
  RunResult r = run_member(spec);
  CHECK(r.exit_code == 0);
  CHECK(r.out == "PATH=/usr/bin:/bin\nFOO=from-env\nPAT_GROUP=g1\nEXTRA=yes\n");

  std::string dir = temp_dir();
  pat::UniqueFd cwd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  REQUIRE(cwd);
  LaunchSpec pwd = spec_for("/bin/pwd", {"pwd"});
  pwd.cwd_fd = cwd.get();
  RunResult p = run_member(pwd);
  CHECK(p.exit_code == 0);
  CHECK(p.out == dir + "\n");
  ::rmdir(dir.c_str());
}

TEST_CASE("umask and rlimits reach the member") {
  LaunchSpec spec = spec_for("/bin/sh", {"sh", "-c", "umask; ulimit -n; ulimit -s"});
  spec.umask = 027;
  spec.rlimits = {{RLIMIT_NOFILE, {200, 300}}, {RLIMIT_STACK, {4 << 20, RLIM_INFINITY}}};
  RunResult r = run_member(spec);
  CHECK(r.exit_code == 0);
  CHECK(r.out == "0027\n200\n4096\n");
}

TEST_CASE("static and static-pie programs start at their own entry") {
  for (const char* name : {"hello_static", "hello_static_pie"}) {
    CAPTURE(name);
    LaunchSpec spec = spec_for(program(name), {name, "a", "b c"});
    spec.env = {"PAT_TEST_VALUE=42"};
    RunResult r = run_member(spec);
    CHECK(r.exit_code == 0);
    CHECK(r.out == "hello argc=3 a b c value=42\n");
    CHECK(r.exe_path == program(name));
  }
}

TEST_CASE("a #! script runs under its interpreter with the kernel's argv") {
  std::string dir = temp_dir();
  std::string script = dir + "/script.sh";
  write_file(script, "#!/bin/sh -e\necho \"script $0 $1\"\n", 0755);
  RunResult r = run_member(spec_for(script, {"script.sh", "arg1"}));
  CHECK(r.exit_code == 0);
  CHECK(r.out == "script " + script + " arg1\n");
  CHECK(r.argv == std::vector<std::string>{"/bin/sh", "-e", script, "arg1"});
  CHECK(r.exe_path == real_path("/bin/sh"));
  ::unlink(script.c_str());
  ::rmdir(dir.c_str());
}

TEST_CASE("#!/usr/bin/env NAME loads NAME from PATH directly, not env") {
  std::string dir = temp_dir();
  std::string inner = dir + "/inner.sh";
  write_file(inner, "#!/usr/bin/env sh\necho \"via env $0 $1\"\n", 0755);
  std::string outer = dir + "/outer.sh";  // a chain: a script whose interpreter is that script
  write_file(outer, "#!" + inner + "\n", 0755);
  LaunchSpec spec = spec_for(inner, {"inner.sh", "x"});
  spec.env = {"PATH=/usr/bin:/bin"};
  RunResult r = run_member(spec);
  CHECK(r.exit_code == 0);
  CHECK(r.out == "via env " + inner + " x\n");
  CHECK(r.argv == std::vector<std::string>{"sh", inner, "x"});
  CHECK(r.exe_path == real_path("/usr/bin/sh"));  // dash, not env

  spec = spec_for(outer, {"outer.sh", "y"});
  spec.env = {"PATH=/usr/bin:/bin"};
  RunResult chained = run_member(spec);
  CHECK(chained.exit_code == 0);
  CHECK(chained.argv == std::vector<std::string>{"sh", inner, outer, "y"});
  CHECK(chained.out == "via env " + inner + " " + outer + "\n");
  for (const std::string& f : {inner, outer}) ::unlink(f.c_str());
  ::rmdir(dir.c_str());
}

TEST_CASE("readlink /proc/self/exe in a member names the member's own program") {
  RunResult r = run_member(spec_for("/bin/readlink", {"readlink", "/proc/self/exe"}));
  CHECK(r.exit_code == 0);
  CHECK(r.out == real_path("/bin/readlink") + "\n");
  CHECK(r.out != real_path("/proc/self/exe") + "\n");  // the test binary: what the kernel would say

}

TEST_CASE("a member that execs leaves the address space and is reported once") {
  TestHost host;
  Capture out;
  // dash tries execve along PATH: the failing attempts must not count.
  LaunchSpec spec = spec_for("/bin/sh", {"sh", "-c", "exec readlink /proc/self/exe"});
  spec.env = {"PATH=/nonexistent:/usr/local/bin:/usr/bin:/bin"};
  spec.stdio[1] = out.write_end.get();
  auto launched = host.launch(spec);
  out.write_end.reset();
  REQUIRE(std::holds_alternative<HostedMember*>(launched));
  HostedMember* m = std::get<HostedMember*>(launched);
  host.watch(out);
  REQUIRE(host.run_until_all_done());
  CHECK(m->exit_code == 0);
  CHECK(m->execs == 1);
  CHECK(out.data == real_path("/bin/readlink") + "\n");  // the kernel's answer, in its own mm now
}

TEST_CASE("the listener is served until the member's last fork child is gone") {
  TestHost host;
  // sh exits at once; its background child keeps the filter for 0.3 s more.
  auto launched = host.launch(spec_for("/bin/sh", {"sh", "-c", "/bin/sleep 0.3 & exit 3"}));
  REQUIRE(std::holds_alternative<HostedMember*>(launched));
  HostedMember* m = std::get<HostedMember*>(launched);
  REQUIRE(host.run_until([m] { return m->exited; }, std::chrono::seconds(10)));
  CHECK(m->exit_code == 3);
  CHECK_FALSE(m->listener_gone());  // sleep still runs under the filter
  REQUIRE(host.run_until([m] { return m->listener_gone(); }, std::chrono::seconds(10)));
}
