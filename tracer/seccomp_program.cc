#include "tracer/seccomp_program.h"

#include <seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstring>
#include <memory>

#include "base/unique_fd.h"
#include "proto/hostcall.h"
#include "tracer/rerouted_syscalls.h"

namespace pat::tracer {
namespace {

struct ContextDeleter {
  void operator()(scmp_filter_ctx ctx) const { seccomp_release(ctx); }
};
using Context = std::unique_ptr<void, ContextDeleter>;

// libseccomp returns -errno.
SysError seccomp_error(int rc, std::string what) { return SysError{-rc, "libseccomp: " + std::move(what)}; }

Status add_rules(scmp_filter_ctx ctx) {
  for (const auto& rerouted : kReroutedSyscalls) {
    if (int rc = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, static_cast<int>(rerouted.nr), 0); rc < 0) {
      return seccomp_error(rc, "notify rule");
    }
  }
  // A member calling its host (proto/hostcall.h).
  if (int rc = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(prctl), 1,
                                SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffu, PAT_HOSTCALL));
      rc < 0) {
    return seccomp_error(rc, "hostcall rule");
  }
  // prctl's option is an int: the kernel looks at the low 32 bits only, so the
  // comparison must too, or garbage in the upper half would slip past.
  int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(prctl), 1,
                            SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffu, PR_SET_MM));
  if (rc < 0) return seccomp_error(rc, "prctl rule");
  return ok_status();
}

// libseccomp 2.5.4 has no seccomp_export_bpf_mem(): export into a memfd and
// read the instructions back.
Result<std::vector<sock_filter>> export_bpf(scmp_filter_ctx ctx) {
  UniqueFd memfd(::memfd_create("pat-seccomp-bpf", MFD_CLOEXEC));
  if (!memfd) return last_error("memfd_create");
  if (int rc = seccomp_export_bpf(ctx, memfd.get()); rc < 0) return seccomp_error(rc, "export");
  off_t size = ::lseek(memfd.get(), 0, SEEK_END);
  if (size <= 0 || size % sizeof(sock_filter) != 0) return SysError{EINVAL, "libseccomp: exported a malformed program"};
  std::vector<sock_filter> program(static_cast<std::size_t>(size) / sizeof(sock_filter));
  if (::pread(memfd.get(), program.data(), static_cast<std::size_t>(size), 0) != size) return last_error("reading the exported program");
  return program;
}

}  // namespace

Result<SeccompProgram> SeccompProgram::build() {
  Context ctx(seccomp_init(SCMP_ACT_ALLOW));
  if (!ctx) return SysError{ENOMEM, "libseccomp: seccomp_init"};
  if (int rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_ERRNO(ENOSYS)); rc < 0)
    return seccomp_error(rc, "bad-arch action");
  if (auto status = add_rules(ctx.get()); !status) return status.error();
  auto program = export_bpf(ctx.get());
  if (!program) return program.error();
  SeccompProgram result;
  result.instructions_ = std::move(program.value());
  return result;
}

}  // namespace pat::tracer
