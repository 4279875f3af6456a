// JSON nesting is bounded wherever pat reads JSON (issue 13, 1.1), and text
// handed to the kernel as a C string never holds a NUL (1.10).
#include "base/unique_fd.h"
#include "proto/json_text.h"
#include "proto/message.h"
#include "proto/params.h"
#include "proto/run_arguments.h"
#include "tests/support/nested_json.h"

#include <doctest/doctest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <string>

using namespace pat::proto;
using pat::testing::JsonShape;
using pat::testing::nested_json;
using pat::testing::name_of;

namespace {

void expect_invalid_parameter(auto&& fn, const char* parameter, const char* fragment) {
  try {
    fn();
    FAIL("no error for ", parameter);
  } catch (const ErrorReply& e) {
    CHECK(e.error().is(ErrorCode::InvalidParameter));
    CHECK(e.error().parameters["parameter"] == parameter);
    CHECK(e.error().message().find(fragment) != std::string::npos);
  }
}

pat::UniqueFd memfd_holding(const std::string& text) {
  pat::UniqueFd fd(::memfd_create("json-limits-test", MFD_CLOEXEC));
  REQUIRE(fd);
  REQUIRE(::write(fd.get(), text.data(), text.size()) == static_cast<ssize_t>(text.size()));
  return fd;
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
    auto in_argv = memfd_holding(R"({"argv":)" + nested_json(shape, 100'000, "\"x\"") + "}");
    expect_invalid_parameter([&] { (void)read_run_arguments_descriptor(in_argv.get()); }, "fds", "nested deeper");
    auto at_top = memfd_holding(nested_json(shape, 100'000));
    expect_invalid_parameter([&] { (void)read_run_arguments_descriptor(at_top.get()); }, "fds", "nested deeper");
  }
  auto good = memfd_holding(R"({"argv":["true","a"],"env":["K=V"]})");
  auto arguments = read_run_arguments_descriptor(good.get());
  CHECK(arguments.argv == std::vector<std::string>{"true", "a"});
  CHECK(arguments.env == std::vector<std::string>{"K=V"});
  auto garbage = memfd_holding("{\"argv\":[");
  expect_invalid_parameter([&] { (void)read_run_arguments_descriptor(garbage.get()); }, "fds", "not valid JSON");
}

TEST_CASE("a NUL inside argv, env or a path is refused, not cut off") {
  using nlohmann::json;
  std::string with_nul("/bin/sh\0junk", 12);
  expect_invalid_parameter([&] { (void)read_run_arguments(json{{"argv", {"sh", with_nul}}}); }, "argv", "NUL");
  expect_invalid_parameter([&] { (void)read_run_arguments(json{{"argv", {"sh"}}, {"env", {with_nul}}}); }, "env",
                           "NUL");
  json params = {{"program", with_nul}, {"cwd", with_nul}, {"plain", "/bin/sh"}};
  ParamReader reader(params);
  expect_invalid_parameter([&] { (void)reader.c_string("program"); }, "program", "NUL");
  expect_invalid_parameter([&] { (void)reader.optional_c_string("cwd"); }, "cwd", "NUL");
  CHECK(reader.c_string("plain") == "/bin/sh");
  CHECK(reader.string("program") == with_nul);  // plain strings may hold anything
  auto in_descriptor = memfd_holding(json{{"argv", {with_nul}}}.dump());
  expect_invalid_parameter([&] { (void)read_run_arguments_descriptor(in_descriptor.get()); }, "argv", "NUL");
}
