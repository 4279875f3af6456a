// proto::RunRequest: io.pat.Member.Run and io.pat.Host.Spawn parsed and
// written by one piece of code.
#include "proto/errors.h"
#include "proto/rlimits.h"
#include "proto/run_request.h"

#include <doctest/doctest.h>

#include <fstream>
#include <iterator>

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

TEST_CASE("within_limits: a request lowers the caller's limits, never raises them (issue 13, 1.3)") {
  using Limits = std::vector<std::pair<int, rlimit>>;
  const Limits caller = {{RLIMIT_NOFILE, {256, 256}}, {RLIMIT_NPROC, {100, 300}}, {RLIMIT_CORE, {0, RLIM_INFINITY}}};
  // Nothing requested: exactly the caller's.
  auto none = pat::proto::within_limits({}, caller);
  REQUIRE(none.size() == 3);
  CHECK(none[0].second.rlim_max == 256);
  CHECK(none[1].second.rlim_cur == 100);
  // Raised: cut to the caller's hard limit, soft never above hard.
  const Limits raised = {{RLIMIT_NOFILE, {20000, 20000}}, {RLIMIT_NPROC, {50, RLIM_INFINITY}},
                         {RLIMIT_CORE, {RLIM_INFINITY, RLIM_INFINITY}}};
  auto capped = pat::proto::within_limits(raised, caller);
  REQUIRE(capped.size() == 3);
  CHECK(capped[0].second.rlim_cur == 256);
  CHECK(capped[0].second.rlim_max == 256);
  CHECK(capped[1].second.rlim_cur == 50);   // lowering is allowed
  CHECK(capped[1].second.rlim_max == 300);
  CHECK(capped[2].second.rlim_cur == RLIM_INFINITY);  // the caller may have it
  // A resource the caller's limits do not name is not passed on.
  auto unknown = pat::proto::within_limits({{RLIMIT_AS, {1, 1}}}, {});
  CHECK(unknown.empty());
}

TEST_CASE("parse_proc_limits reads the kernel's /proc/self/limits as getrlimit reports it") {
  std::ifstream file("/proc/self/limits");
  std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  auto parsed = pat::proto::parse_proc_limits(text);
  REQUIRE(parsed);
  auto expected = pat::proto::current_rlimits();
  REQUIRE(parsed->size() == expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    INFO("resource ", expected[i].first);
    CHECK((*parsed)[i].first == expected[i].first);
    CHECK((*parsed)[i].second.rlim_cur == expected[i].second.rlim_cur);
    CHECK((*parsed)[i].second.rlim_max == expected[i].second.rlim_max);
  }
  SUBCASE("a missing, garbled or inverted row gives nothing") {
    auto without = [&](std::string_view row, std::string_view replacement) {
      std::string copy = text;
      auto at = copy.find(row);
      REQUIRE(at != std::string::npos);
      copy.replace(at, copy.find('\n', at) - at, replacement);
      return pat::proto::parse_proc_limits(copy);
    };
    CHECK_FALSE(without("Max open files", ""));
    CHECK_FALSE(without("Max open files", "Max open files            12x                  40                   files"));
    CHECK_FALSE(without("Max open files", "Max open files            50                   40                   files"));
    CHECK_FALSE(pat::proto::parse_proc_limits(""));
  }
}
