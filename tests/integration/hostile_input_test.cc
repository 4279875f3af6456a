// What a hostile or careless caller can hand patd and the hosts (issue 13):
// JSON nested deep enough to overflow a stack (1.1), a NUL inside a path or
// an argument (1.10), programs that are FIFOs, sockets or devices (1.6,
// 1.10), and `#!` chains, each compared with what the kernel's own execve
// does with the same files.
#include "tests/support/patd_instance.h"
#include "tests/support/nested_json.h"
#include "tests/support/raw_client.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <fstream>

using namespace pat::testing;
using nlohmann::json;
using std::chrono::milliseconds;

namespace {

const RunOptions kPatctl{.timeout = milliseconds(30'000)};

std::string frame(const json& value) { return value.dump() + std::string(1, '\0'); }

json reply_to(RawClient& client, const std::string& bytes, const std::vector<int>& fds = {}) {
  REQUIRE(client.write_all(bytes, fds));
  auto reply = client.read_frame(milliseconds(30'000));
  REQUIRE(reply.has_value());
  return json::parse(*reply);
}

// The call's error name and the parameter it names ("" for none).
void check_error(const json& reply, const std::string& error, const std::string& parameter = "") {
  INFO(reply.dump());
  CHECK(reply.value("error", "") == error);
  if (!parameter.empty()) CHECK(reply["parameters"].value("parameter", "") == parameter);
}

pat::UniqueFd open_fd(const char* path, int flags) {
  pat::UniqueFd fd(::open(path, flags | O_CLOEXEC));
  REQUIRE(fd);
  return fd;
}

pat::UniqueFd sealed_memfd(const std::string& text) {
  pat::UniqueFd fd(::memfd_create("hostile-arguments", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  REQUIRE(fd);
  REQUIRE(::write(fd.get(), text.data(), text.size()) == static_cast<ssize_t>(text.size()));
  REQUIRE(::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) == 0);
  return fd;
}

// What execve itself does with `path`: the errno it failed with, or, when it
// ran, the program's exit code and what it printed.
struct NativeExec {
  int error = 0;
  int exit_code = -1;
  std::string out;
};
NativeExec native_exec(const std::string& path, const std::vector<std::string>& argv) {
  int status_pipe[2], out_pipe[2];
  REQUIRE(::pipe2(status_pipe, O_CLOEXEC) == 0);
  REQUIRE(::pipe2(out_pipe, O_CLOEXEC) == 0);
  std::vector<char*> args;
  for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(out_pipe[1], 1);
    ::execve(path.c_str(), args.data(), environ);
    int error = errno;
    (void)!::write(status_pipe[1], &error, sizeof(error));
    ::_exit(127);
  }
  ::close(status_pipe[1]);
  ::close(out_pipe[1]);
  NativeExec result;
  if (::read(status_pipe[0], &result.error, sizeof(result.error)) != sizeof(result.error)) result.error = 0;
  char buffer[4096];
  for (ssize_t n; (n = ::read(out_pipe[0], buffer, sizeof(buffer))) > 0;) result.out.append(buffer, n);
  ::close(status_pipe[0]);
  ::close(out_pipe[0]);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  if (result.error == 0 && WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  return result;
}

void write_script(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
  REQUIRE(::chmod(path.c_str(), 0755) == 0);
}

}  // namespace

TEST_CASE("JSON nested too deep, in any shape and place, costs one error; patd and running members carry on") {
  PatdInstance patd;
  REQUIRE(patd.patctl({"group", "create", "g"}).exit_code == 0);
  // An attached run of another client, which a crashed patd would end with 125 and SIGHUP.
  std::string out = patd.dir().path() + "/attached.out";
  Background attached({patctl_binary(), "--socket", patd.socket(), "run", "--group", "g", "--", "/bin/sh", "-c",
                       "sleep 2; echo survived"},
                      out, out + ".err");

  RawClient client(patd.socket());
  REQUIRE(client.connected());
  const std::string status = R"({"method":"io.pat.Daemon.Status","parameters":)";
  struct Case {
    const char* what;
    std::string text;
  };
  const Case cases[] = {
      // The issue's reproducer: 150,000 arrays inside "parameters".
      {"arrays in parameters", status + R"({"a":)" + nested_json(JsonShape::Arrays, 150'000, "") + "}}"},
      {"objects in parameters", status + R"({"a":)" + nested_json(JsonShape::Objects, 57'000) + "}}"},
      {"mixed in parameters", status + R"({"a":)" + nested_json(JsonShape::Mixed, 100'000) + "}}"},
      {"parameters itself", status + nested_json(JsonShape::Objects, 100'000) + "}"},
      {"outside parameters", R"({"method":"io.pat.Daemon.Status","x":)" + nested_json(JsonShape::Arrays, 150'000) + "}"},
      {"the whole message", nested_json(JsonShape::Arrays, 150'000)},
      {"one level over the limit", status + R"({"a":)" + nested_json(JsonShape::Mixed, 127) + "}}"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.what);
    REQUIRE(c.text.size() < (1u << 20));  // under the frame cap: the depth is what is refused
    auto reply = reply_to(client, c.text + std::string(1, '\0'));
    check_error(reply, "io.pat.InvalidMessage");
    CHECK(reply["parameters"]["message"].get<std::string>().find("nested deeper than 128") != std::string::npos);
  }
  // At the limit itself a call is served, and the same connection still works.
  auto at_limit = reply_to(client, status + R"({"a":)" + nested_json(JsonShape::Mixed, 126) + "}}" + std::string(1, '\0'));
  CHECK(at_limit["parameters"].contains("uptime_seconds"));
  CHECK(process_alive(patd.pid()));
  CHECK(attached.wait(milliseconds(30'000)) == 0);
  CHECK(read_file(out) == "survived\n");
}

TEST_CASE("the host refuses a deep or NUL-bearing arguments descriptor; the group runs on") {
  PatdInstance patd;
  auto group = patd.patctl_json({"group", "create", "g"});
  auto null = open_fd("/dev/null", O_RDWR);
  RawClient client(patd.socket());
  auto run_with_descriptor = [&](const std::string& arguments) {
    auto memfd = sealed_memfd(arguments);
    json call = {{"method", "io.pat.Member.Run"},
                 {"more", true},
                 {"parameters", {{"group", "g"}, {"program", "/bin/true"}, {"arguments_in_fd", true}}}};
    return reply_to(client, frame(call), {null.get(), null.get(), null.get(), memfd.get()});
  };
  for (JsonShape shape : {JsonShape::Arrays, JsonShape::Objects, JsonShape::Mixed}) {
    auto deep = run_with_descriptor(R"({"argv":)" + nested_json(shape, 200'000, R"("true")") + "}");
    check_error(deep, "org.varlink.service.InvalidParameter", "fds");
    CHECK(deep["parameters"]["message"].get<std::string>().find("nested deeper than") != std::string::npos);
  }
  check_error(run_with_descriptor(json{{"argv", {"true", std::string("a\0b", 3)}}}.dump()),
              "org.varlink.service.InvalidParameter", "argv");
  // The host is the same process and still launches.
  CHECK(patd.patctl_json({"group", "show", "g"})["host_pid"] == group["host_pid"]);
  CHECK(patd.patctl({"run", "--group", "g", "--", "/bin/true"}, kPatctl).exit_code == 0);
}

TEST_CASE("a NUL inside the program, argv, env or cwd is InvalidParameter at patd and at the host") {
  PatdInstance patd;
  REQUIRE(patd.patctl({"group", "create", "g"}).exit_code == 0);
  auto null = open_fd("/dev/null", O_RDWR);
  std::vector<int> stdio = {null.get(), null.get(), null.get()};
  const std::string nul_path("/bin/sh\0junk", 12);
  auto run_parameters = [](const json& change) {
    json parameters = {{"group", "g"}, {"program", "/bin/sh"}, {"argv", {"sh", "-c", "exit 3"}}};
    parameters.update(change);
    return parameters;
  };
  struct Case {
    const char* parameter;
    json parameters;
  };
  const Case cases[] = {
      {"program", run_parameters({{"program", nul_path}})},
      {"argv", run_parameters({{"argv", {"sh", "-c", std::string("exit 3\0junk", 11)}}})},
      {"env", run_parameters({{"env", {std::string("A=1\0B=2", 7)}}})},
      {"cwd", run_parameters({{"cwd", std::string("/tmp\0/etc", 9)}})},
  };
  RawClient client(patd.socket());
  RawClient host(patd.dir().path() + "/groups/g/host.sock");  // root may talk to it as patd does
  REQUIRE(host.connected());
  for (const auto& c : cases) {
    CAPTURE(c.parameter);
    check_error(reply_to(client, frame({{"method", "io.pat.Member.Run"}, {"more", true}, {"parameters", c.parameters}}),
                         stdio),
                "org.varlink.service.InvalidParameter", c.parameter);
    // The host checks for itself: patd is not its only line of defence.
    check_error(reply_to(host, frame({{"method", "io.pat.Host.Spawn"}, {"more", true}, {"parameters", c.parameters}}),
                         stdio),
                "org.varlink.service.InvalidParameter", c.parameter);
  }
  // Without the NULs the same call runs.
  auto ran = patd.patctl({"run", "--group", "g", "--", "/bin/sh", "-c", "exit 3"}, kPatctl);
  CHECK(ran.exit_code == 3);
}

TEST_CASE("a FIFO, a socket, a device or a directory as the program: 126 at once, as execve's EACCES") {
  PatdInstance patd;
  REQUIRE(patd.patctl({"group", "create", "g"}).exit_code == 0);
  const std::string dir = patd.dir().path();
  const std::string fifo = dir + "/fifo", socket_path = dir + "/socket";
  REQUIRE(::mkfifo(fifo.c_str(), 0755) == 0);
  pat::UniqueFd socket(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, socket_path.c_str(), socket_path.size() + 1);
  REQUIRE(::bind(socket.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
  REQUIRE(::chmod(socket_path.c_str(), 0755) == 0);

  for (const std::string& program : {fifo, socket_path, std::string("/dev/null"), std::string("/dev/zero"), dir}) {
    CAPTURE(program);
    CHECK(native_exec(program, {program}).error == EACCES);
    auto started = std::chrono::steady_clock::now();
    auto run = patd.patctl({"run", "--group", "g", "--", program}, kPatctl);
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(10));  // a FIFO wedged the host for 30 s
    CHECK(run.exit_code == 126);
    CHECK(run.err.find("io.pat.ProgramNotExecutable") != std::string::npos);
  }
  // Nothing is left waiting in the host: the group still shows and runs.
  CHECK(patd.patctl({"group", "show", "g"}, RunOptions{.timeout = milliseconds(5'000)}).exit_code == 0);
  CHECK(patd.patctl({"run", "--group", "g", "--", "/bin/true"}, kPatctl).exit_code == 0);
}

TEST_CASE("#! chains: pat runs exactly the chains the kernel runs, with the same argv") {
  PatdInstance patd;
  REQUIRE(patd.patctl({"group", "create", "g"}).exit_code == 0);
  const std::string dir = patd.dir().path();
  // level1 is run by /bin/sh; level N's interpreter is level N-1.
  write_script(dir + "/level1", "#!/bin/sh\necho \"$0\" \"$@\"\n");
  for (int level = 2; level <= 8; ++level) {
    write_script(dir + "/level" + std::to_string(level), "#!" + dir + "/level" + std::to_string(level - 1) + "\n");
  }
  int longest_native = 0;
  for (int level = 1; level <= 8; ++level) {
    CAPTURE(level);
    std::string script = dir + "/level" + std::to_string(level);
    auto native = native_exec(script, {script, "arg"});
    auto pat = patd.patctl({"run", "--group", "g", "--", script, "arg"}, kPatctl);
    if (native.error == 0) {
      longest_native = level;
      CHECK(pat.exit_code == native.exit_code);
      CHECK(pat.out == native.out);
    } else {
      CHECK(native.error == ELOOP);
      CHECK(pat.exit_code == 126);
      CHECK(pat.err.find("too many levels of #! interpreters") != std::string::npos);
    }
  }
  // Linux 6.x runs 5 levels (fs/exec.c, `depth > 5`); a failure here means
  // the kernel changed, and tracer/kernel_abi.h must follow it.
  CHECK(longest_native == 5);
}
