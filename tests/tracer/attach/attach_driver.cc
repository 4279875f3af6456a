// attach_driver: a minimal group host for the attach tests and benchmarks.
// Its own address space is the group's: it attaches processes into it with
// tracer/attach's Attacher, serves the members' rerouted syscalls
// (MemberSyscalls over one SharedAddressSpace), supervises their stubs, and
// reaps them, printing one line per event on stdout. Started as root with
// --uid/--gid it first becomes that user without capabilities, as pat-host
// runs, so the kernel's ptrace checks are the real ones.
//
//   attach_driver --stub PATH [--uid U --gid G] [--fail STEP] [--precopy auto|always|never]
//
// Commands on stdin, one per line:
//   attach PID [fail=STEP] [hold=STEP] [precopy=auto|always|never]
//                  -> "attached pid=P member=M stopped_us=.. total_us=.. ..."
//                     or "refused step=S reason=R owner=PID message=..." or "failed step=S message=..."
//                     hold=STEP prints "holding step=S" after that step and waits to be killed
//   quit           -> exits once every member and stub has ended
// Events: "member_end pid=P member=M status=...", "stub_end pid=P status=...".
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>

#include "tracer/attach/attacher.h"
#include "tracer/attach/tracee_wait.h"
#include "tracer/member_syscalls.h"
#include "tracer/shared_address_space.h"

using namespace pat::tracer;

namespace {

struct Hosted {
  AttachedMember attached;
  std::unique_ptr<MemberSyscalls> syscalls;
  OwnerId owner = 0;
  bool listener_gone = false;
  bool reported = false;
};

void say(const std::string& line) {
  std::cout << line << std::endl;  // flushed: the test reads line by line
}

AttachOptions::PreCopy precopy_named(const std::string& v) {
  return v == "always" ? AttachOptions::PreCopy::Always : v == "never" ? AttachOptions::PreCopy::Never : AttachOptions::PreCopy::Auto;
}

std::optional<AttachStep> step_named(const std::string& name) {
  for (int i = 1; i <= kAttachStepCount; ++i) {
    if (name == to_string(static_cast<AttachStep>(i))) return static_cast<AttachStep>(i);
  }
  return std::nullopt;
}

void drop_privileges(uid_t uid, gid_t gid) {
  if (::setgroups(0, nullptr) != 0 || ::setresgid(gid, gid, gid) != 0 || ::setresuid(uid, uid, uid) != 0) {
    std::perror("attach_driver: dropping privileges");
    std::exit(2);
  }
  // Changing credentials made us non-dumpable; pat-host execs after its
  // drop, which makes it dumpable again.
  ::prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
}

class Driver {
 public:
  explicit Driver(AttachOptions options) : attacher_(std::move(options)) {
    // hold=STEP: stop after that step's work and wait to be killed (a test
    // kills the host there to see what the process is left with).
    attacher_.options().on_step = [this](AttachStep step) {
      if (hold_at_ != step) return;
      say(std::string("holding step=") + to_string(step));
      for (;;) ::pause();
    };
    attacher_.options().owner_of = [this](Range range) -> std::optional<pid_t> {
      for (const auto& segment : space_.ledger().segments_in(range)) {
        auto it = pids_.find(segment.owner);
        return it != pids_.end() ? it->second : 0;
      }
      return std::nullopt;
    };
  }

  void attach(pid_t pid) {
    auto result = attacher_.attach(pid);
    if (auto* error = std::get_if<AttachError>(&result)) {
      std::ostringstream line;
      if (error->kind == AttachError::Kind::Refused)
        line << "refused step=" << to_string(error->step) << " reason=" << to_string(error->refusal)
             << " owner=" << error->conflict_owner << " message=" << error->message;
      else
        line << "failed step=" << to_string(error->step) << " message=" << error->message;
      say(line.str());
      return;
    }
    Hosted& h = hosted_.emplace_back();
    h.attached = std::move(std::get<AttachedMember>(result));
    h.owner = space_.add_member(h.attached.member.pid, *h.attached.member.layout);
    pids_[h.owner] = h.attached.member.pid;
    h.syscalls = std::make_unique<MemberSyscalls>(h.attached.member, space_, h.owner, group_lock_, reroute_stats_);
    const AttachStats& s = h.attached.stats;
    std::ostringstream line;
    line << "attached pid=" << pid << " member=" << h.attached.member.pid << " stopped_us=" << s.stopped.count()
         << " total_us=" << s.total.count() << " precopy_us=" << s.precopy.count() << " final_copy_us=" << s.final_copy.count()
         << " precopied=" << s.bytes_precopied << " copied_stopped=" << s.bytes_copied_stopped << " private=" << s.private_bytes
         << " threads=" << s.threads << " fds=" << s.fds;
    for (int i = 1; i <= kAttachStepCount; ++i) line << " " << to_string(static_cast<AttachStep>(i)) << "_us=" << s.step_time[i].count();
    say(line.str());
  }

  // Serves until stdin says quit and everything has ended.
  int run() {
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    ::sigprocmask(SIG_BLOCK, &chld, nullptr);
    pat::UniqueFd signals(::signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK));
    bool input_open = true;
    std::string pending;
    for (;;) {
      if (!input_open && hosted_.empty()) return 0;
      std::vector<pollfd> fds{{signals.get(), POLLIN, 0}};
      if (input_open) fds.push_back({0, POLLIN, 0});
      std::vector<Hosted*> serving;
      for (Hosted& h : hosted_) {
        if (h.listener_gone) continue;
        fds.push_back({h.attached.member.listener.get(), POLLIN, 0});
        serving.push_back(&h);
      }
      // A timeout as well: a SIGCHLD merged with another is not lost.
      if (::poll(fds.data(), fds.size(), 200) < 0 && errno != EINTR) return 1;
      if (fds[0].revents) {
        signalfd_siginfo info;
        while (::read(signals.get(), &info, sizeof(info)) > 0) {
        }
      }
      collect();
      std::size_t first_listener = input_open ? 2 : 1;
      if (input_open && fds[1].revents) input_open = read_commands(pending);
      for (std::size_t i = 0; i < serving.size(); ++i) {
        if (!fds[first_listener + i].revents) continue;
        if (serving[i]->syscalls->handle_one() == Outcome::ListenerGone) {
          serving[i]->listener_gone = true;
          serving[i]->attached.member.listener.reset();
        }
      }
    }
  }

 private:
  bool read_commands(std::string& pending) {
    char buf[512];
    ssize_t n = ::read(0, buf, sizeof(buf));
    if (n <= 0) return false;
    pending.append(buf, static_cast<std::size_t>(n));
    std::size_t nl;
    while ((nl = pending.find('\n')) != std::string::npos) {
      std::istringstream in(pending.substr(0, nl));
      pending.erase(0, nl + 1);
      std::string command;
      in >> command;
      if (command == "attach") {
        pid_t pid = 0;
        in >> pid;
        AttachOptions& options = attacher_.options();
        const AttachOptions defaults = options;
        std::string option;
        while (in >> option) {
          auto eq = option.find('=');
          std::string key = option.substr(0, eq), value = eq == std::string::npos ? "" : option.substr(eq + 1);
          if (key == "fail") options.fail_at = step_named(value);
          else if (key == "hold") hold_at_ = step_named(value);
          else if (key == "precopy") options.precopy = precopy_named(value);
        }
        attach(pid);
        options.fail_at = defaults.fail_at;
        options.precopy = defaults.precopy;
        hold_at_.reset();
      } else if (command == "quit") {
        return false;
      }
    }
    return true;
  }

  // Every state change of every member and stub, through tracee_wait.
  void collect() {
    for (auto it = hosted_.begin(); it != hosted_.end();) {
      Hosted& h = *it;
      StubSupervisor& stub = *h.attached.stub;
      for (;;) {
        auto got = stub.member_gone() ? pat::Result<std::optional<WaitStatus>>(std::optional<WaitStatus>{}) : poll_child(stub.member());
        if (!got || !got.value()) break;
        if (is_gone(*got.value())) {
          space_.reclaim(h.owner);
          say("member_end pid=" + std::to_string(stub.stub()) + " member=" + std::to_string(stub.member()) +
              " status=" + describe(*got.value()));
        }
        stub.on_member_status(*got.value());
      }
      while (stub.keeper() != 0) {
        auto got = poll_tracee(stub.keeper());
        if (!got || !got.value()) break;
        stub.on_keeper_status(*got.value());
      }
      for (;;) {
        auto got = stub.stub_gone() ? pat::Result<std::optional<WaitStatus>>(std::optional<WaitStatus>{}) : poll_tracee(stub.stub());
        if (!got || !got.value()) break;
        stub.on_stub_status(*got.value());
        if (stub.stub_gone()) say("stub_end pid=" + std::to_string(stub.stub()) + " status=" + describe(*stub.stub_end()));
      }
      if (stub.stub_gone() && stub.member_gone() && h.listener_gone) it = hosted_.erase(it);
      else ++it;
    }
  }

  std::optional<AttachStep> hold_at_;
  Attacher attacher_;
  SharedAddressSpace space_{false};
  std::mutex group_lock_;  // one thread serves here; MemberSyscalls takes it all the same
  RerouteStats reroute_stats_;  // recorded into, never read here
  std::list<Hosted> hosted_;
  std::map<OwnerId, pid_t> pids_;
};

}  // namespace

int main(int argc, char** argv) {
  AttachOptions options;
  long uid = -1, gid = -1;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (arg == "--stub") options.stub_path = value();
    else if (arg == "--uid") uid = std::strtol(value().c_str(), nullptr, 10);
    else if (arg == "--gid") gid = std::strtol(value().c_str(), nullptr, 10);
    else if (arg == "--fail") {
      std::string name = value();
      options.fail_at = step_named(name);
      if (!options.fail_at) {
        std::cerr << "attach_driver: no step " << name << "\n";
        return 2;
      }
    } else if (arg == "--precopy") {
      options.precopy = precopy_named(value());
    } else {
      std::cerr << "attach_driver: unknown argument " << arg << "\n";
      return 2;
    }
  }
  if (uid >= 0) drop_privileges(static_cast<uid_t>(uid), static_cast<gid_t>(gid >= 0 ? gid : uid));
  options.owner = OwnerCredentials::of_this_process();
  Driver driver(std::move(options));
  say("ready pid=" + std::to_string(::getpid()));
  return driver.run();
}
