// BuiltMember: the new member task of an attached process, from the clone to
// the moment it runs the program. build_member() prepares the restorer's
// plan from what was captured, starts it (attach/member_restorer.h) and
// waits until every thread is parked; load_registers() then seizes them and
// gives each its thread's registers, and fixes the TIDs glibc cached in
// memory; release() lets them go. Until released, destroying it kills the
// task and reaps it.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "tracer/attach/member_restorer.h"
#include "tracer/attach/process_capture.h"
#include "tracer/attach/seized_process.h"
#include "tracer/attach/thread_capture.h"
#include "tracer/seccomp_program.h"

namespace pat::tracer {

class BuiltMember {
 public:
  BuiltMember();
  BuiltMember(BuiltMember&&) noexcept;
  BuiltMember& operator=(BuiltMember&&) = delete;
  ~BuiltMember();

  pid_t pid() const { return pid_; }
  const std::vector<pid_t>& tids() const { return tids_; }  // the new TID of each captured thread, same order
  UniqueFd take_pidfd() { return std::move(pidfd_); }
  UniqueFd take_listener() { return std::move(listener_); }
  int pidfd() const { return pidfd_.get(); }

  // Seizes every thread and loads its registers, FPU state and mask;
  // updates glibc's cached TIDs (at fs_base + tid_offset, when known) and
  // the owners of robust mutexes each thread holds. Scheduling affinity and
  // nice value follow where allowed.
  Status load_registers(const std::vector<CapturedThread>& threads, std::optional<std::uint32_t> tid_offset, Deadline deadline);
  // The member runs from here on; nothing is killed at destruction.
  void release();

 private:
  friend std::variant<BuiltMember, std::string> build_member(const std::vector<CapturedThread>&, const CapturedProcess&,
                                                              const SeccompProgram&, Deadline);
  struct Plan;  // the restorer's plan and everything it points into
  void discard();

  pid_t pid_ = 0;
  UniqueFd pidfd_;
  UniqueFd listener_;
  std::vector<pid_t> tids_;
  std::unique_ptr<Plan> plan_;
  std::optional<SeizedProcess> seized_;
  bool released_ = false;
};

// Starts the member task and waits until its restorer is done; a reason on
// failure (the task is gone again).
std::variant<BuiltMember, std::string> build_member(const std::vector<CapturedThread>& threads, const CapturedProcess& process,
                                                    const SeccompProgram& seccomp, Deadline deadline);

}  // namespace pat::tracer
