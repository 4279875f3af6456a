// The wire protocol against the real daemon: precise errors for bad calls,
// varlink's service interface, and hostile input that must only ever cost
// the offending connection.
#include "tests/support/patd_instance.h"
#include "tests/support/raw_client.h"

#include <doctest/doctest.h>

#include <memory>
#include <unistd.h>

using namespace pat::testing;
using nlohmann::json;

namespace {

std::string frame(const json& value) { return value.dump() + std::string(1, '\0'); }

json call(RawClient& client, const std::string& bytes) {
  REQUIRE(client.write_all(bytes));
  auto reply = client.read_frame();
  REQUIRE(reply.has_value());
  return json::parse(*reply);
}

json call(const PatdInstance& patd, const json& request) {
  RawClient client(patd.socket());
  REQUIRE(client.connected());
  return call(client, frame(request));
}

}  // namespace

TEST_CASE("each kind of bad call gets its own precise error, and the connection stays usable") {
  PatdInstance patd;
  RawClient client(patd.socket());
  REQUIRE(client.connected());

  auto invalid_json = call(client, std::string("{not json") + '\0');
  CHECK(invalid_json["error"] == "io.pat.InvalidMessage");
  CHECK(invalid_json["parameters"]["message"].get<std::string>().find("not valid JSON") != std::string::npos);

  auto not_object = call(client, frame(json::array({1, 2})));
  CHECK(not_object["error"] == "io.pat.InvalidMessage");

  auto unknown_method = call(client, frame({{"method", "io.pat.Group.Explode"}}));
  CHECK(unknown_method["error"] == "org.varlink.service.MethodNotFound");
  CHECK(unknown_method["parameters"]["method"] == "io.pat.Group.Explode");

  auto unknown_interface = call(client, frame({{"method", "com.example.Thing.Do"}}));
  CHECK(unknown_interface["error"] == "org.varlink.service.InterfaceNotFound");
  CHECK(unknown_interface["parameters"]["interface"] == "com.example.Thing");

  auto host_only = call(client, frame({{"method", "io.pat.Host.Spawn"}}));
  CHECK(host_only["error"] == "org.varlink.service.InterfaceNotFound");

  auto missing = call(client, frame({{"method", "io.pat.Group.Create"}, {"parameters", json::object()}}));
  CHECK(missing["error"] == "org.varlink.service.InvalidParameter");
  CHECK(missing["parameters"]["parameter"] == "name");

  auto wrong_type = call(client, frame({{"method", "io.pat.Group.Create"}, {"parameters", {{"name", 42}}}}));
  CHECK(wrong_type["error"] == "org.varlink.service.InvalidParameter");
  CHECK(wrong_type["parameters"]["parameter"] == "name");

  auto bad_flag = call(client, frame({{"method", "io.pat.Group.List"}, {"more", "yes"}}));
  CHECK(bad_flag["error"] == "io.pat.InvalidMessage");

  auto run_without_fds = call(client, frame({{"method", "io.pat.Member.Run"},
                                             {"more", true},
                                             {"parameters", {{"group", "g"}, {"program", "/bin/true"},
                                                             {"argv", {"true"}}}}}));
  CHECK(run_without_fds["error"] == "org.varlink.service.InvalidParameter");
  CHECK(run_without_fds["parameters"]["parameter"] == "fds");

  // After all of that, the same connection still serves a good call.
  auto ok = call(client, frame({{"method", "io.pat.Group.List"}}));
  CHECK(ok["parameters"]["groups"] == json::array());
}

TEST_CASE("org.varlink.service: GetInfo and GetInterfaceDescription") {
  PatdInstance patd;
  auto info = call(patd, {{"method", "org.varlink.service.GetInfo"}});
  CHECK(info["parameters"]["product"] == "patd");
  auto interfaces = info["parameters"]["interfaces"];
  CHECK(std::find(interfaces.begin(), interfaces.end(), "io.pat.Group") != interfaces.end());
  CHECK(std::find(interfaces.begin(), interfaces.end(), "org.varlink.service") != interfaces.end());

  auto description = call(patd, {{"method", "org.varlink.service.GetInterfaceDescription"},
                                 {"parameters", {{"interface", "io.pat.Group"}}}});
  auto text = description["parameters"]["description"].get<std::string>();
  CHECK(text.find("interface io.pat.Group") != std::string::npos);
  CHECK(text.find("method Create(") != std::string::npos);

  auto unknown = call(patd, {{"method", "org.varlink.service.GetInterfaceDescription"},
                             {"parameters", {{"interface", "io.nope"}}}});
  CHECK(unknown["error"] == "org.varlink.service.InterfaceNotFound");
}

TEST_CASE("oneway calls get no reply; pipelined calls are answered in order") {
  PatdInstance patd;
  RawClient client(patd.socket());
  REQUIRE(client.write_all(frame({{"method", "io.pat.Group.Create"}, {"oneway", true},
                                  {"parameters", {{"name", "quiet"}}}}) +
                           frame({{"method", "io.pat.Daemon.Status"}}) +
                           frame({{"method", "io.pat.Group.List"}})));
  auto first = json::parse(client.read_frame().value());
  CHECK(first["parameters"].contains("uptime_seconds"));
  auto second = json::parse(client.read_frame().value());
  REQUIRE(second["parameters"]["groups"].size() == 1);
  CHECK(second["parameters"]["groups"][0]["name"] == "quiet");
}

TEST_CASE("garbage, a truncated frame and 10 MiB without a NUL cost only their own connection") {
  PatdInstance patd;
  {
    RawClient garbage(patd.socket());
    std::string noise;
    for (int i = 0; i < 4096; ++i) noise.push_back(static_cast<char>((i * 7919) % 251 + 1));
    noise.push_back('\0');
    REQUIRE(garbage.write_all(noise));
    auto reply = garbage.read_frame();
    REQUIRE(reply.has_value());
    CHECK(json::parse(*reply)["error"] == "io.pat.InvalidMessage");
  }
  {
    RawClient truncated(patd.socket());
    REQUIRE(truncated.write_all(R"({"method":"io.pat.Daemon.Sta)"));
  }  // closed mid-frame
  {
    RawClient flood(patd.socket());
    std::string mib(1 << 20, 'a');
    bool accepted_all = true;
    for (int i = 0; i < 10 && accepted_all; ++i) accepted_all = flood.write_all(mib);
    CHECK(flood.closed_by_peer());
  }
  CHECK(patd.answering());
  CHECK(patd.log().find("event=connection.dropped reason=\"frame exceeds the size limit\"") != std::string::npos);
}

TEST_CASE("200 simultaneous connections, and the daemon still answers") {
  PatdInstance patd;
  std::vector<std::unique_ptr<RawClient>> clients;
  for (int i = 0; i < 200; ++i) {
    clients.push_back(std::make_unique<RawClient>(patd.socket()));
    REQUIRE(clients.back()->connected());
  }
  // Half of them have a partial frame pending, the rest are silent.
  for (int i = 0; i < 100; ++i) REQUIRE(clients[i]->write_all(R"({"method":"io.pat.Da)"));
  CHECK(patd.answering());
  // Each of them can still be served.
  for (int i = 100; i < 200; i += 10) {
    auto reply = call(*clients[i], frame({{"method", "io.pat.Daemon.Status"}}));
    CHECK(reply["parameters"]["connections"].get<int>() >= 200);
  }
}

TEST_CASE("connections beyond the cap are refused politely; idle ones are closed") {
  PatdOptions options;
  options.extra_args = {"--socket-mode", "0666", "--max-connections", "4", "--idle-timeout-ms", "300"};
  PatdInstance patd(std::make_shared<RuntimeDirectory>(), options);
  std::vector<std::unique_ptr<RawClient>> held;
  for (int i = 0; i < 4; ++i) held.push_back(std::make_unique<RawClient>(patd.socket()));
  REQUIRE(eventually([&] {
    RawClient extra(patd.socket());
    auto reply = extra.read_frame(std::chrono::milliseconds(500));
    return reply && json::parse(*reply)["error"] == "io.pat.ResourceExhausted";
  }, std::chrono::milliseconds(200)));
  // The idle timeout frees the slots.
  for (auto& client : held) CHECK(client->closed_by_peer(std::chrono::milliseconds(5'000)));
  CHECK(patd.answering());
}

// Issue 13, 1.7: 1,024 idle connections of one user made root's `patctl
// status` fail with ResourceExhausted.
TEST_CASE("one user's connections are capped at its share, and root can still connect") {
  ensure_test_user("pat-test");
  PatdOptions options;
  options.extra_args = {"--socket-mode", "0666", "--max-connections", "40", "--max-connections-per-uid", "8"};
  PatdInstance patd(std::make_shared<RuntimeDirectory>(), options);
  // Holds its share, reports what the next connection got, then keeps
  // holding while root looks. (Its output files are root's: created here.)
  const char* hog = R"PY(
import json, socket, sys, time, os
path = sys.argv[1]
held = []
for _ in range(8):
    s = socket.socket(socket.AF_UNIX); s.connect(path); held.append(s)
s = socket.socket(socket.AF_UNIX); s.connect(path); s.settimeout(5)
reply = s.recv(65536).rstrip(b"\0")
print(json.loads(reply)["error"], json.loads(reply)["parameters"]["message"], flush=True)
s = held.pop(); s.sendall(b'{"method":"io.pat.Daemon.Status"}\0'); s.settimeout(5)
print("status" if b'"connections"' in s.recv(65536) else "no status", flush=True)
time.sleep(3)
)PY";
  Background user({"setpriv", "--reuid=pat-test", "--regid=pat-test", "--init-groups", "/usr/bin/python3.11", "-c",
                   hog, patd.socket()},
                  patd.dir().path() + "/hog.out", patd.dir().path() + "/hog.err");
  INFO("the user's client: ", read_file(patd.dir().path() + "/hog.out"), read_file(patd.dir().path() + "/hog.err"));
  std::string out = patd.dir().path() + "/hog.out";
  REQUIRE(eventually([&] { return read_file(out).find("status\n") != std::string::npos; }));
  auto status = patd.patctl({"status", "--json"});  // root, meanwhile
  CHECK(status.exit_code == 0);
  REQUIRE(user.wait(std::chrono::milliseconds(10'000)) == 0);
  CHECK(read_file(patd.dir().path() + "/hog.out") ==
        "io.pat.ResourceExhausted too many connections from this user\nstatus\n");
}
