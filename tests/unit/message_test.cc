// Parsing calls and replies: every malformed shape gets a precise error.
#include "proto/errors.h"
#include "proto/interface.h"
#include "proto/message.h"
#include "proto/params.h"

#include "tests/support/expect_invalid_parameter.h"

#include <doctest/doctest.h>

#include <string>

using namespace pat::proto;

namespace {
std::string strip_nul(std::string frame) {
  REQUIRE(!frame.empty());
  REQUIRE(frame.back() == '\0');
  frame.pop_back();
  return frame;
}

Error parse_call_error(std::string_view text) {
  auto parsed = parse_call(text);
  REQUIRE(std::holds_alternative<Error>(parsed));
  return std::get<Error>(parsed);
}
}  // namespace

TEST_CASE("a call round-trips through encode and parse") {
  Call call{"io.pat.Group.Create", {{"name", "g1"}}, true, false};
  auto parsed = parse_call(strip_nul(encode(call)));
  REQUIRE(std::holds_alternative<Call>(parsed));
  const auto& back = std::get<Call>(parsed);
  CHECK(back.method == "io.pat.Group.Create");
  CHECK(back.interface_name() == "io.pat.Group");
  CHECK(back.parameters["name"] == "g1");
  CHECK(back.more);
  CHECK_FALSE(back.oneway);
}

TEST_CASE("parameters may be absent or null") {
  auto a = parse_call(R"({"method":"io.pat.Group.List"})");
  REQUIRE(std::holds_alternative<Call>(a));
  CHECK(std::get<Call>(a).parameters.is_object());
  auto b = parse_call(R"({"method":"io.pat.Group.List","parameters":null})");
  REQUIRE(std::holds_alternative<Call>(b));
}

TEST_CASE("malformed calls are InvalidMessage with a reason") {
  struct Case {
    const char* text;
    const char* reason_fragment;
  };
  const Case cases[] = {
      {"", "not valid JSON"},
      {"{", "not valid JSON"},
      {"\xff\xfe", "not valid JSON"},
      {"[1,2]", "not a JSON object"},
      {"42", "not a JSON object"},
      {"{}", "\"method\""},
      {R"({"method":7})", "\"method\""},
      {R"({"method":"List"})", "fully qualified"},
      {R"({"method":"io.pat."})", "fully qualified"},
      {R"({"method":"io.pat.Group.List","parameters":[]})", "\"parameters\""},
      {R"({"method":"io.pat.Group.List","more":"yes"})", "\"more\""},
      {R"({"method":"io.pat.Group.List","oneway":1})", "\"oneway\""},
      {R"({"method":"io.pat.Group.List","more":true,"oneway":true})", "exclude"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.text);
    auto error = parse_call_error(c.text);
    CHECK(error.is(ErrorCode::InvalidMessage));
    CHECK(error.message().find(c.reason_fragment) != std::string::npos);
    CHECK(error.exit_code() == kExitPatError);
  }
}

TEST_CASE("replies: plain, streaming and error") {
  auto plain = parse_reply(strip_nul(encode(Reply{{{"x", 1}}, false, std::nullopt})));
  REQUIRE(std::holds_alternative<Reply>(plain));
  CHECK(std::get<Reply>(plain).parameters["x"] == 1);
  CHECK_FALSE(std::get<Reply>(plain).continues);

  auto streaming = parse_reply(strip_nul(encode(Reply{{}, true, std::nullopt})));
  REQUIRE(std::holds_alternative<Reply>(streaming));
  CHECK(std::get<Reply>(streaming).continues);

  auto error_frame = encode_error(Error::make(ErrorCode::GroupNotFound, "no group \"g\"", {{"name", "g"}}));
  auto error = parse_reply(strip_nul(error_frame));
  REQUIRE(std::holds_alternative<Reply>(error));
  const auto& reply = std::get<Reply>(error);
  REQUIRE(reply.error.has_value());
  CHECK(reply.error->is(ErrorCode::GroupNotFound));
  CHECK(reply.error->message() == "no group \"g\"");
  CHECK(reply.error->parameters["name"] == "g");
  CHECK(reply.error->exit_code() == kExitRefused);
}

TEST_CASE("malformed replies are reported, not thrown") {
  for (const char* text : {"nope", "[]", R"({"error":5})", R"({"parameters":"x"})", R"({"continues":"x"})"}) {
    CAPTURE(text);
    auto parsed = parse_reply(text);
    REQUIRE(std::holds_alternative<Error>(parsed));
    CHECK(std::get<Error>(parsed).is(ErrorCode::InvalidMessage));
  }
}

TEST_CASE("invalid UTF-8 in a value never makes encoding throw") {
  Reply reply{{{"argv", {std::string("\xff\xfe bad")}}}, false, std::nullopt};
  std::string frame;
  CHECK_NOTHROW(frame = encode(reply));
  CHECK(frame.back() == '\0');
}

TEST_CASE("error names map to exit codes in one table") {
  CHECK(error_info(ErrorCode::ProgramNotFound).exit_code == 127);
  CHECK(error_info(ErrorCode::ProgramNotExecutable).exit_code == 126);
  CHECK(error_info(ErrorCode::AddressConflict).exit_code == 126);
  CHECK(error_info(ErrorCode::PermissionDenied).exit_code == 1);
  CHECK(error_info(ErrorCode::MethodNotFound).name == "org.varlink.service.MethodNotFound");
  CHECK(error_code_from_name("io.pat.GroupBusy") == ErrorCode::GroupBusy);
  CHECK_FALSE(error_code_from_name("io.pat.NoSuchThing").has_value());
  Error unknown{"com.example.Weird", {}};
  CHECK(unknown.exit_code() == kExitRefused);
  CHECK(unknown.message() == "com.example.Weird");
}

TEST_CASE("ParamReader names the parameter and the expected type") {
  nlohmann::json params = {{"name", "g"},     {"count", 3},          {"flag", true},
                           {"argv", {"a", "b"}}, {"bad_argv", {"a", 1}}, {"big", 18446744073709551615ull}};
  ParamReader reader(params);
  CHECK(reader.string("name") == "g");
  CHECK(reader.integer("count", 0, 10) == 3);
  CHECK(reader.boolean("flag", false));
  CHECK(reader.boolean("absent", true));
  CHECK(reader.string_array("argv") == std::vector<std::string>{"a", "b"});
  CHECK_FALSE(reader.optional_string("absent").has_value());

  auto expect_invalid = [](auto&& fn, const char* parameter) { pat::testing::expect_invalid_parameter(fn, parameter); };
  expect_invalid([&] { (void)reader.string("missing"); }, "missing");
  expect_invalid([&] { (void)reader.string("count"); }, "count");
  expect_invalid([&] { (void)reader.integer("name", 0, 10); }, "name");
  expect_invalid([&] { (void)reader.integer("count", 5, 10); }, "count");
  expect_invalid([&] { (void)reader.integer("big", 0, 1000); }, "big");
  expect_invalid([&] { (void)reader.boolean("name", false); }, "name");
  expect_invalid([&] { (void)reader.string_array("bad_argv"); }, "bad_argv");
  expect_invalid([&] { (void)reader.optional_object("name"); }, "name");
}

TEST_CASE("interfaces: lookup and declared methods") {
  auto group = find_interface(daemon_interfaces(), "io.pat.Group");
  REQUIRE(group.has_value());
  CHECK(interface_declares_method(*group, "Create"));
  CHECK(interface_declares_method(*group, "Destroy"));
  CHECK_FALSE(interface_declares_method(*group, "Explode"));
  CHECK_FALSE(find_interface(daemon_interfaces(), "io.pat.Host").has_value());
  CHECK(find_interface(host_interfaces(), "io.pat.Host").has_value());
  // Every public method constant is declared by its interface's IDL.
  for (auto name : {method::kDaemonStatus, method::kGroupCreate, method::kGroupList, method::kGroupShow,
                    method::kGroupDestroy, method::kMemberRun, method::kMemberSignal}) {
    auto dot = name.rfind('.');
    auto interface = find_interface(daemon_interfaces(), name.substr(0, dot));
    REQUIRE(interface.has_value());
    CHECK(interface_declares_method(*interface, name.substr(dot + 1)));
  }
}
