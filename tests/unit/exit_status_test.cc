// proto::ExitStatus: exactly one of an exit code and a signal (with whether
// core was dumped, and the member's core), from waitid's siginfo and from the
// wire, and back.
#include "proto/exit_status.h"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <csignal>

using pat::proto::ExitStatus;
using nlohmann::json;

namespace {

siginfo_t child_info(int code, int status) {
  siginfo_t info{};
  info.si_pid = 4242;
  info.si_code = code;
  info.si_status = status;
  return info;
}

}  // namespace

TEST_CASE("waitid's siginfo: an exit, a kill, a core dump; stops and 'nothing yet' are not ends") {
  auto exited = ExitStatus::from_siginfo(child_info(CLD_EXITED, 3));
  REQUIRE(exited);
  CHECK(exited->is_exit());
  CHECK(exited->exit_code() == 3);
  CHECK(exited->shell_status() == 3);
  auto killed = ExitStatus::from_siginfo(child_info(CLD_KILLED, SIGKILL));
  REQUIRE(killed);
  CHECK(killed->is_signal());
  CHECK(killed->signal() == SIGKILL);
  CHECK(killed->shell_status() == 128 + SIGKILL);
  auto dumped = ExitStatus::from_siginfo(child_info(CLD_DUMPED, SIGSEGV));
  REQUIRE(dumped);
  CHECK(*dumped == ExitStatus::killed(SIGSEGV, pat::proto::CoreDump{}));
  CHECK_FALSE(*dumped == ExitStatus::killed(SIGSEGV));
  CHECK_FALSE(killed->core());
  for (int code : {CLD_STOPPED, CLD_TRAPPED, CLD_CONTINUED}) CHECK_FALSE(ExitStatus::from_siginfo(child_info(code, 5)));
  siginfo_t nothing{};  // WNOHANG with no child ready leaves si_pid 0
  CHECK_FALSE(ExitStatus::from_siginfo(nothing));
}

TEST_CASE("the wire form is exit_code xor signal, and reads back") {
  json object = {{"pid", 7}};
  ExitStatus::exited(0).write_json(object);
  CHECK(object == json{{"pid", 7}, {"exit_code", 0}});
  CHECK(ExitStatus::from_json(object) == ExitStatus::exited(0));
  json killed = json::object();
  ExitStatus::killed(15).write_json(killed);
  CHECK(killed == json{{"signal", 15}, {"core_dumped", false}});
  CHECK(ExitStatus::from_json(killed) == ExitStatus::killed(15));
  CHECK(ExitStatus::killed(15).log_field() == "signal=15");
  CHECK(ExitStatus::exited(2).log_field() == "exit_code=2");

  CHECK_FALSE(ExitStatus::from_json(json::object()));                          // neither
  CHECK_FALSE(ExitStatus::from_json({{"exit_code", 1}, {"signal", 9}}));       // both
  CHECK_FALSE(ExitStatus::from_json({{"exit_code", "1"}}));                    // not an integer
  CHECK_FALSE(ExitStatus::from_json({{"signal", -1}}));                        // out of range
  CHECK_FALSE(ExitStatus::from_json(json::array()));
  CHECK(ExitStatus::from_json({{"exit_code", nullptr}, {"signal", 9}}) == ExitStatus::killed(9));
}

TEST_CASE("a dumped core's fields travel with the signal and read back") {
  using pat::proto::CoreDump;
  auto status = ExitStatus::killed(SIGSEGV, CoreDump{});
  status.complete_core(CoreDump{.file = "/tmp/core.crash.42", .truncated = true, .error = std::nullopt});
  json object = json::object();
  status.write_json(object);
  CHECK(object == json{{"signal", SIGSEGV}, {"core_dumped", true}, {"core_file", "/tmp/core.crash.42"},
                       {"core_truncated", true}});
  CHECK(ExitStatus::from_json(object) == status);

  auto failed = ExitStatus::killed(SIGABRT, CoreDump{.file = std::nullopt, .truncated = false, .error = "no space"});
  json failed_json = json::object();
  failed.write_json(failed_json);
  CHECK(failed_json == json{{"signal", SIGABRT}, {"core_dumped", true}, {"core_error", "no space"}});
  CHECK(ExitStatus::from_json(failed_json) == failed);

  CHECK_FALSE(ExitStatus::from_json({{"signal", 11}, {"core_dumped", "yes"}}));
  CHECK_FALSE(ExitStatus::from_json({{"signal", 11}, {"core_dumped", true}, {"core_file", 3}}));
  CHECK_FALSE(ExitStatus::from_json({{"signal", 11}, {"core_dumped", true}, {"core_truncated", "no"}}));
  // Without core_dumped, stray core fields say nothing.
  CHECK(ExitStatus::from_json({{"signal", 11}, {"core_file", "/x"}}) == ExitStatus::killed(11));
  CHECK(ExitStatus::from_json({{"exit_code", 0}, {"core_dumped", true}}) == ExitStatus::exited(0));
}
