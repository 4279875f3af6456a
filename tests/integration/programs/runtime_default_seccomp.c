// Runs a command under the one part of the container runtimes' default
// seccomp profile that depends on a capability pat's sidecar is given: the
// profile Docker and containerd apply (moby's profiles/seccomp/default.json,
// Kubernetes' "RuntimeDefault") allows kcmp, pidfd_getfd and
// process_madvise only to containers whose capability set includes
// CAP_SYS_PTRACE, and fails them with EPERM otherwise. Like the runtime,
// this looks at the capability bounding set it is started with (the
// container's), so it must run after the bounding set is narrowed.
//
// usage: runtime_default_seccomp COMMAND [ARGS...]
#include <errno.h>
#include <linux/capability.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s COMMAND [ARGS...]\n", argv[0]);
    return 2;
  }
  int has_ptrace = prctl(PR_CAPBSET_READ, CAP_SYS_PTRACE, 0, 0, 0);
  if (has_ptrace < 0) {
    perror("PR_CAPBSET_READ");
    return 1;
  }
  if (!has_ptrace) {
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    const int denied[] = {SCMP_SYS(kcmp), SCMP_SYS(pidfd_getfd), SCMP_SYS(process_madvise)};
    for (size_t i = 0; ctx != NULL && i < sizeof(denied) / sizeof(denied[0]); ++i) {
      if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), denied[i], 0) != 0) return 1;
    }
    // no_new_privs, as the runtime sets for allowPrivilegeEscalation: false.
    if (ctx == NULL || seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1) != 0 || seccomp_load(ctx) != 0) {
      fprintf(stderr, "runtime_default_seccomp: cannot load the filter\n");
      return 1;
    }
    seccomp_release(ctx);
  }
  execvp(argv[1], argv + 1);
  fprintf(stderr, "runtime_default_seccomp: %s: %s\n", argv[1], strerror(errno));
  return 127;
}
