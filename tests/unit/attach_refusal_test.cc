// daemon/host/attach_refusal: how an attach that did not happen is told.
// A step that failed because the target exited is the target's doing
// (NotAttachable, not_running); any other failure is InternalError with the
// step. bench/fault_injection.py found targets killed mid-attach reported
// as InternalError (exit 125, "a daemon fault").
#include "daemon/host/attach_refusal.h"

#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

using pat::tracer::AttachError;
using pat::tracer::AttachStep;

TEST_CASE("a failed step is InternalError while the target lives, NotAttachable once it has exited") {
  auto failure = AttachError::failed(AttachStep::CaptureProcess, "No such process");

  auto alive = pat::host::attach_refusal(::getpid(), failure);
  CHECK(alive.error().name == "io.pat.InternalError");
  CHECK(alive.error().parameters["step"] == "capture_process");

  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) ::_exit(0);
  // A zombie until reaped: exited, its pid still taken.
  for (int i = 0; i < 500; ++i) {
    siginfo_t info{};
    if (::waitid(P_PID, child, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == child) break;
    ::usleep(2000);
  }
  auto zombie = pat::host::attach_refusal(child, failure);
  CHECK(zombie.error().name == "io.pat.NotAttachable");
  CHECK(zombie.error().parameters["reason"] == "not_running");
  CHECK(zombie.error().message().find("exited during the attach (at step capture_process)") != std::string::npos);

  ::waitpid(child, nullptr, 0);
  auto gone = pat::host::attach_refusal(child, failure);
  CHECK(gone.error().name == "io.pat.NotAttachable");
}
