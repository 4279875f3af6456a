// proto::RunRequest: io.pat.Member.Run and io.pat.Host.Spawn parsed and
// written by one piece of code.
#include "proto/errors.h"
#include "proto/run_request.h"

#include <doctest/doctest.h>

using pat::proto::ErrorReply;
using pat::proto::RunRequest;
using nlohmann::json;

namespace {

json minimal() { return {{"program", "/bin/true"}, {"argv", {"true"}}}; }

std::string rejected_parameter(const json& params) {
  try {
    RunRequest::parse(params);
  } catch (const ErrorReply& e) {
    return e.error().parameters.value("parameter", "");
  }
  return "(accepted)";
}

}  // namespace

TEST_CASE("a minimal request gets the defaults") {
  auto request = RunRequest::parse(minimal());
  CHECK(request.program == "/bin/true");
  CHECK(request.arguments.argv == std::vector<std::string>{"true"});
  CHECK(request.arguments.env.empty());
  CHECK(request.cwd == pat::proto::kDefaultCwd);
  CHECK(request.umask == pat::proto::kDefaultUmask);
  CHECK(request.rlimits.empty());
  CHECK_FALSE(request.detach);
  CHECK_FALSE(request.group);
  CHECK_FALSE(request.new_group);
  CHECK(request.descriptor_count() == 3);
}

TEST_CASE("a full request survives to_json and parse, and the host's copy loses only where to run") {
  RunRequest request;
  request.program = "/usr/bin/env";
  request.arguments = {{"env", "-i"}, {"A=1", "B=2"}};
  request.cwd = "/tmp";
  request.umask = 077;
  request.rlimits = {{RLIMIT_NOFILE, {100, 200}}, {RLIMIT_CORE, {0, RLIM_INFINITY}}};
  request.detach = true;
  request.stopped = true;
  request.group.emplace(1, 'g');  // not = "g": GCC 12 warns -Wrestrict there (a known false positive)
  json wire = request.to_json();
  CHECK(wire["rlimits"] == json{{"NOFILE", {100, 200}}, {"CORE", {0, -1}}});
  CHECK(wire["stopped"] == true);
  auto back = RunRequest::parse(wire);
  CHECK(back.stopped);
  CHECK(back.to_json() == wire);
  json host = request.for_host().to_json();
  CHECK_FALSE(host.contains("group"));
  CHECK_FALSE(host.contains("new_group"));
  wire.erase("group");
  CHECK(host == wire);
}

TEST_CASE("arguments in a descriptor: none inline, a fourth fd, and read back from its text") {
  RunRequest request = RunRequest::parse(minimal());
  request.arguments = {{"echo", "big"}, {"K=V"}};
  std::string text = request.arguments_text();
  request.arguments_in_fd = true;
  json wire = request.to_json();
  CHECK_FALSE(wire.contains("argv"));
  CHECK_FALSE(wire.contains("env"));
  auto parsed = RunRequest::parse(wire);
  CHECK(parsed.arguments_in_fd);
  CHECK(parsed.descriptor_count() == 4);
  CHECK_NOTHROW(parsed.check_descriptors(4));
  CHECK_THROWS_AS(parsed.check_descriptors(3), ErrorReply);
  parsed.load_arguments(text);
  CHECK(parsed.arguments.argv == std::vector<std::string>{"echo", "big"});
  CHECK(parsed.arguments.env == std::vector<std::string>{"K=V"});
  CHECK_THROWS_AS(parsed.load_arguments("[1]"), ErrorReply);
  CHECK_THROWS_AS(parsed.load_arguments(R"({"argv": []})"), ErrorReply);
}

TEST_CASE("each malformed parameter is named") {
  auto with = [](const char* key, json value) {
    json params = minimal();
    params[key] = std::move(value);
    return params;
  };
  CHECK(rejected_parameter(with("program", "true")) == "program");
  CHECK(rejected_parameter(with("program", 3)) == "program");
  CHECK(rejected_parameter(with("argv", json::array())) == "argv");
  CHECK(rejected_parameter(with("argv", {1})) == "argv");
  CHECK(rejected_parameter(with("env", "A=1")) == "env");
  CHECK(rejected_parameter(with("cwd", "relative")) == "cwd");
  CHECK(rejected_parameter(with("umask", 01000)) == "umask");
  CHECK(rejected_parameter(with("rlimits", {{"NOPE", {1, 1}}})) == "rlimits");
  CHECK(rejected_parameter(with("detach", "yes")) == "detach");
  CHECK(rejected_parameter(with("group", 7)) == "group");
  CHECK(rejected_parameter(minimal()) == "(accepted)");
}
