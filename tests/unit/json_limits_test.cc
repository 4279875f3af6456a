// JSON nesting is bounded wherever pat reads JSON (issue 13, 1.1), and text
// handed to the kernel as a C string never holds a NUL (1.10).
#include "proto/json_text.h"
#include "proto/message.h"
#include "proto/params.h"
#include "proto/run_request.h"
#include "tests/support/expect_invalid_parameter.h"
#include "tests/support/nested_json.h"

#include <doctest/doctest.h>
#include <string>

using namespace pat::proto;
using pat::testing::expect_invalid_parameter;
using pat::testing::JsonShape;
using pat::testing::nested_json;
using pat::testing::name_of;

namespace {

// What the host does with the arguments' descriptor's contents.
void load_arguments(const std::string& text) {
  RunRequest request;
  request.load_arguments(text);
}

}  // namespace

TEST_CASE("nesting up to the limit parses; one level more is refused, not built") {
  for (JsonShape shape : {JsonShape::Arrays, JsonShape::Objects, JsonShape::Mixed}) {
    CAPTURE(name_of(shape));
    auto at_limit = parse_json_text(nested_json(shape, kMaxJsonDepth));
    CHECK(std::holds_alternative<nlohmann::json>(at_limit));
    auto over = parse_json_text(nested_json(shape, kMaxJsonDepth + 1));
    REQUIRE(std::holds_alternative<JsonRejection>(over));
    CHECK(std::get<JsonRejection>(over).why == JsonRejection::Why::TooDeep);
  }
  auto syntax = parse_json_text("[1,");
  REQUIRE(std::holds_alternative<JsonRejection>(syntax));
  CHECK(std::get<JsonRejection>(syntax).why == JsonRejection::Why::Syntax);
  // Strict: nothing may follow the value.
  CHECK(std::holds_alternative<JsonRejection>(parse_json_text("{} {}")));
  CHECK(std::holds_alternative<nlohmann::json>(parse_json_text(" {} \n")));
}

TEST_CASE("a call nested 150,000 deep, inside or outside parameters, is InvalidMessage") {
  // The shape that overflowed patd's stack: copying "parameters" recursed once per level.
  for (JsonShape shape : {JsonShape::Arrays, JsonShape::Objects, JsonShape::Mixed}) {
    CAPTURE(name_of(shape));
    std::string deep = nested_json(shape, 150'000);
    for (const std::string& text :
         {R"({"method":"io.pat.Daemon.Status","parameters":{"a":)" + deep + "}}",
          R"({"method":"io.pat.Daemon.Status","extra":)" + deep + "}", R"({"parameters":{"a":)" + deep + "}}"}) {
      auto call = parse_call(text);
      REQUIRE(std::holds_alternative<Error>(call));
      CHECK(std::get<Error>(call).is(ErrorCode::InvalidMessage));
      CHECK(std::get<Error>(call).message().find("nested deeper than") != std::string::npos);
      auto reply = parse_reply(text);
      REQUIRE(std::holds_alternative<Error>(reply));
      CHECK(std::get<Error>(reply).is(ErrorCode::InvalidMessage));
    }
  }
  // Just below the limit, a call is still a call (its value is copied safely).
  auto ok = parse_call(R"({"method":"io.pat.Daemon.Status","parameters":{"a":)" +
                       nested_json(JsonShape::Mixed, kMaxJsonDepth - 2) + "}}");
  CHECK(std::holds_alternative<Call>(ok));
}

TEST_CASE("the arguments descriptor: deep JSON is InvalidParameter naming fds") {
  for (JsonShape shape : {JsonShape::Arrays, JsonShape::Objects, JsonShape::Mixed}) {
    CAPTURE(name_of(shape));
    std::string in_argv = R"({"argv":)" + nested_json(shape, 100'000, "\"x\"") + "}";
    expect_invalid_parameter([&] { load_arguments(in_argv); }, "fds", "nested deeper");
    std::string at_top = nested_json(shape, 100'000);
    expect_invalid_parameter([&] { load_arguments(at_top); }, "fds", "nested deeper");
  }
  RunRequest request;
  request.load_arguments(R"({"argv":["true","a"],"env":["K=V"]})");
  CHECK(request.arguments.argv == std::vector<std::string>{"true", "a"});
  CHECK(request.arguments.env == std::vector<std::string>{"K=V"});
  expect_invalid_parameter([&] { load_arguments("{\"argv\":["); }, "fds", "not valid JSON");
}

TEST_CASE("a NUL inside argv, env or a path is refused, not cut off") {
  using nlohmann::json;
  std::string with_nul("/bin/sh\0junk", 12);
  const json run = {{"program", "/bin/sh"}, {"argv", {"sh"}}};
  auto with = [&](const char* key, json value) {
    json params = run;
    params[key] = std::move(value);
    return params;
  };
  expect_invalid_parameter([&] { (void)RunRequest::parse(with("argv", {"sh", with_nul})); }, "argv", "NUL");
  expect_invalid_parameter([&] { (void)RunRequest::parse(with("env", {with_nul})); }, "env", "NUL");
  expect_invalid_parameter([&] { (void)RunRequest::parse(with("program", with_nul)); }, "program", "NUL");
  expect_invalid_parameter([&] { (void)RunRequest::parse(with("cwd", with_nul)); }, "cwd", "NUL");
  CHECK(RunRequest::parse(run).program == "/bin/sh");
  json params = {{"program", with_nul}};
  CHECK(ParamReader(params).string("program") == with_nul);  // plain strings may hold anything
  expect_invalid_parameter([&] { load_arguments(json{{"argv", {with_nul}}}.dump()); }, "argv", "NUL");
}
