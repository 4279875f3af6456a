// A caller's hard resource limits bound its group's host and its members
// (issue 13, 1.3). The probe's caller had hard limits of 256 files, 300
// processes and 64 KiB of locked memory, and its members got patd's own
// (20000, 96362, 8 MiB) by leaving out or raising "rlimits" in
// io.pat.Member.Run. Here an unprivileged user with exactly those limits
// (prlimit(1), then setpriv(1)) speaks the protocol itself.
#include "tests/support/patd_instance.h"

#include <doctest/doctest.h>

#include <map>
#include <sstream>

using namespace pat::testing;
using nlohmann::json;

namespace {

const std::string kUser = "pat-test";

// Creates group GROUP, then runs `cat /proc/self/limits` twice as a member,
// once without "rlimits" and once asking for patd's limits, its stdio being
// this script's; prints the create reply as one JSON line, then the members'
// output.
const char* kClient = R"PY(
import json, socket, sys
sock_path, group = sys.argv[1], sys.argv[2]
def call(message, fds=None):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock_path)
    data = json.dumps(message).encode() + b"\0"
    if fds:
        socket.send_fds(s, [data], fds)
    else:
        s.sendall(data)
    replies, buffer = [], b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        buffer += chunk
        while b"\0" in buffer:
            frame, buffer = buffer.split(b"\0", 1)
            replies.append(json.loads(frame))
            if not replies[-1].get("continues"):
                return replies
    return replies
created = call({"method": "io.pat.Group.Create", "parameters": {"name": group}})[-1]
print(json.dumps(created), flush=True)
run = {"group": group, "program": "/bin/cat", "argv": ["cat", "/proc/self/limits"]}
for rlimits in (None, {"NOFILE": [20000, 20000], "NPROC": [96362, 96362], "MEMLOCK": [8388608, 8388608]}):
    params = dict(run, rlimits=rlimits) if rlimits else run
    replies = call({"method": "io.pat.Member.Run", "parameters": params, "more": True}, [0, 1, 2])
    print("--- run", json.dumps(replies[-1]), flush=True)
)PY";

// "Max open files  256  256  files" -> {"Max open files": {soft, hard}}.
std::map<std::string, std::pair<std::string, std::string>> parse_limits(const std::string& text) {
  std::map<std::string, std::pair<std::string, std::string>> limits;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("Max ", 0) != 0 || line.size() < 46) continue;
    std::string name = line.substr(0, 26);
    name.erase(name.find_last_not_of(' ') + 1);
    std::istringstream values(line.substr(26));
    std::string soft, hard;
    values >> soft >> hard;
    limits[name] = {soft, hard};
  }
  return limits;
}

void check_within_probe_limits(const std::string& limits_text) {
  auto limits = parse_limits(limits_text);
  INFO(limits_text);
  REQUIRE(limits.contains("Max open files"));
  CHECK(limits["Max open files"].second == "256");
  CHECK(limits["Max processes"].second == "300");
  CHECK(limits["Max locked memory"].second == "65536");
}

}  // namespace

TEST_CASE("members and the host get at most the caller's hard limits, whatever the request says") {
  ensure_test_user(kUser);
  PatdInstance patd;
  auto result = run({"prlimit", "--nofile=256:256", "--nproc=300:300", "--memlock=65536:65536", "setpriv",
                     "--reuid=" + kUser, "--regid=" + kUser, "--init-groups", "/usr/bin/python3.11", "-c", kClient,
                     patd.socket(), "limited"});
  INFO("client stdout:\n", result.out, "\nstderr:\n", result.err, "\npatd:\n", patd.log());
  REQUIRE(result.exit_code == 0);

  std::istringstream out(result.out);
  std::string first;
  REQUIRE(std::getline(out, first));
  auto created = json::parse(first);
  REQUIRE(created.contains("parameters"));
  pid_t host = created["parameters"]["group"]["host_pid"].get<pid_t>();
  SUBCASE("the host runs with the owner's limits, not patd's") {
    check_within_probe_limits(read_file("/proc/" + std::to_string(host) + "/limits"));
  }
  SUBCASE("a member, with rlimits left out and with rlimits raised") {
    std::string rest((std::istreambuf_iterator<char>(out)), std::istreambuf_iterator<char>());
    auto second_run = rest.find("--- run");
    REQUIRE(second_run != std::string::npos);
    auto end = rest.find("--- run", second_run + 1);
    REQUIRE(end != std::string::npos);
    check_within_probe_limits(rest.substr(0, second_run));
    check_within_probe_limits(rest.substr(second_run, end - second_run));
    CHECK(rest.find("\"exit_code\": 0") != std::string::npos);
  }
  CHECK(patd.patctl({"group", "destroy", "limited"}).exit_code == 0);
}
