#include "daemon/host/group_host.h"

#include "base/log.h"
#include "proto/errors.h"
#include "proto/group_object.h"

#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <csignal>

namespace pat::host {

using proto::ErrorCode;
using proto::ErrorReply;
using nlohmann::json;

namespace {

// How long an ephemeral host waits for its first spawn before giving up.
constexpr std::chrono::seconds kEphemeralIdleLimit{60};
// How long a shutdown waits for attached members' stubs to end like their
// members, and how often it looks (their ends come through the supervisor's
// dispatch on this same thread).
constexpr std::chrono::milliseconds kStubEndWait{2'000};
constexpr std::chrono::milliseconds kStubEndPoll{5};

// glibc malloc defaults for members, unless the caller set GLIBC_TUNABLES
// itself (even to nothing). top_pad keeps up to 64 MiB of freed heap mapped
// instead of trimming and re-growing it: every trim and growth is a rerouted
// brk and mprotect, and the pages come back through page faults, which one
// shared address space serializes across members. docs/memory.md has the
// measurements (bench/member_memory.py) and the cost: up to 64 MiB of freed
// memory stays resident per member.
constexpr const char* kMemberMallocTunables = "glibc.malloc.top_pad=67108864";

void apply_allocator_defaults(tracer::LaunchSpec& spec) {
  for (const auto& entry : spec.env) {
    if (entry.rfind("GLIBC_TUNABLES=", 0) == 0) return;
  }
  spec.extra_env.emplace("GLIBC_TUNABLES", kMemberMallocTunables);
}

tracer::AttachOptions attach_options(const HostConfig& config) {
  tracer::AttachOptions options;
  options.stub_path = config.attach_stub;
  return options;
}

}  // namespace

GroupHost::GroupHost(asio::io_context& io, HostConfig config, std::function<void()> request_exit)
    : io_(io),
      config_(std::move(config)),
      request_exit_(std::move(request_exit)),
      debugger_table_(config_.group),
      supervisor_(config_.allow_cross_mapping, *this, tracer::MemberCores::PerMember),
      attacher_(attach_options(config_)),
      arena_(io, config_.group, supervisor_),
      description_(config_, members_, supervisor_, arena_),
      supervisor_events_(io, ::dup(supervisor_.event_fd())) {
  supervisor_.space().on_refusal = [this](const tracer::MappingRefusal& refusal) {
    spdlog::warn("event=mapping.refused group={} pid={} syscall={} start={} end={} other_pid={} other_kind={}",
                 config_.group, refusal.pid, refusal.syscall, hex_address(refusal.range.start), hex_address(refusal.range.end),
                 refusal.other_pid, refusal.other_owner == tracer::kNoOwner ? "host" : tracer::to_string(refusal.other_kind));
  };
  watch_supervisor();
  if (config_.ephemeral) {
    auto timer = std::make_shared<asio::steady_timer>(io_, kEphemeralIdleLimit);
    timer->async_wait([this, timer](boost::system::error_code ec) {
      if (!ec && !spawned_any_) {
        spdlog::info("event=host.idle_exit group={}", config_.group);
        request_exit_();
      }
    });
  }
}

void GroupHost::watch_supervisor() {
  supervisor_events_.async_wait(asio::posix::stream_descriptor::wait_read, [this](boost::system::error_code ec) {
    if (ec) return;
    supervisor_.dispatch();
    if (ephemeral_exit_waits_for_stubs_) exit_if_ephemeral_and_idle();
    watch_supervisor();
  });
}

// The member whose launch mapped what an AddressConflict ran into, if any.
std::optional<ConflictHolder> GroupHost::conflict_holder(const tracer::LaunchError& error) const {
  if (error.kind != tracer::LaunchError::Kind::AddressConflict) return std::nullopt;
  tracer::Range wanted{error.conflict_start, error.conflict_end};
  for (const auto& [pid, member] : members_) {
    if (!member->launched().layout) continue;
    for (const auto& range : member->launched().layout->ranges()) {
      if (range.overlaps(wanted)) return ConflictHolder{pid, member->launched().argv};
    }
  }
  return std::nullopt;
}

std::shared_ptr<Member> GroupHost::spawn(proto::RunRequest request, const std::array<int, 3>& stdio) {
  if (shutting_down_) {
    throw ErrorReply(ErrorCode::GroupBusy, "group " + config_.group + " is shutting down",
                     {{"name", config_.group}, {"members", members_.size()}});
  }
  spawned_any_ = true;
  double requested = proto::unix_now();
  const LaunchRequestFacts facts{request.program, request.cwd};
  // Opened here, as the owner; the launcher checks it may be entered.
  UniqueFd cwd(::open(request.cwd.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!cwd) {
    throw launch_refusal(tracer::LaunchError::setup_failed(request.program, tracer::ChildStep::WorkingDirectory, errno),
                         facts);
  }
  tracer::LaunchSpec spec;
  spec.path = request.program;
  spec.argv = std::move(request.arguments.argv);
  spec.env = std::move(request.arguments.env);
  spec.cwd_fd = cwd.get();
  spec.umask = request.umask;
  spec.rlimits = std::move(request.rlimits);
  spec.stopped = request.stopped;
  spec.stdio = stdio;
  for (auto& [name, value] : member_environment()) spec.extra_env[name] = std::move(value);
  apply_allocator_defaults(spec);
  // Recorded in the data plane and for debuggers before the member can look.
  auto launched = supervisor_.launch(spec, [this](const tracer::SupervisedMember& process) {
    arena_.member_started(process);
    const auto& launched = process.launched();
    debugger_table_.add({process.pid(), launched.exe_path, launched.program_bias, launched.interpreter_base});
  });
  if (auto* error = std::get_if<tracer::LaunchError>(&launched)) {
    spdlog::info("event=member.refused group={} program={} reason={}", config_.group, log_quote(spec.path),
                 log_quote(error->message));
    throw launch_refusal(*error, facts, conflict_holder(*error));
  }
  auto member = add_member(std::move(std::get<std::shared_ptr<tracer::SupervisedMember>>(launched)), requested);
  member->detached = request.detach;
  spdlog::info("event=member.start group={} pid={} program={} argc={}", config_.group, member->pid(),
               log_quote(member->launched().exe_path), member->launched().argv.size());
  note_stale_build(*member);
  publish("member.start", *member);
  return member;
}

std::map<std::string, std::string> GroupHost::member_environment() const {
  std::map<std::string, std::string> environment{{"PAT_GROUP", config_.group}};
  if (auto arena = arena_.environment()) environment.insert(*arena);
  return environment;
}

std::shared_ptr<Member> GroupHost::add_member(std::shared_ptr<tracer::SupervisedMember> process, double requested) {
  auto member = std::make_shared<Member>(io_.get_executor(), std::move(process));
  member->started = requested;
  members_[member->pid()] = member;
  return member;
}

std::optional<ConflictHolder> GroupHost::attach_conflict_holder(const tracer::AttachError& error) const {
  if (error.conflict_owner == 0) return std::nullopt;
  auto member = find(error.conflict_owner);
  if (!member) return std::nullopt;
  return ConflictHolder{member->pid(), member->launched().argv};
}

std::vector<std::pair<std::shared_ptr<Member>, proto::AttachEntry>> GroupHost::attach(const std::vector<pid_t>& pids) {
  if (shutting_down_) {
    throw ErrorReply(ErrorCode::GroupBusy, "group " + config_.group + " is shutting down",
                     {{"name", config_.group}, {"members", members_.size()}});
  }
  // All or none, as far as can be known before touching any of them.
  for (pid_t pid : pids) {
    if (auto refusal = tracer::check_attachable(pid, attacher_.options().owner, ::getpid())) {
      spdlog::info("event=member.attach_refused group={} pid={} reason={} message={}", config_.group, pid,
                   tracer::to_string(refusal->reason), log_quote(refusal->message));
      throw attach_refusal(pid, tracer::AttachError::refused(tracer::AttachStep::Inspect, *refusal));
    }
  }
  std::vector<std::pair<std::shared_ptr<Member>, proto::AttachEntry>> attached;
  for (pid_t pid : pids) {
    double requested = proto::unix_now();
    auto result = supervisor_.attach(attacher_, pid, [this](const tracer::SupervisedMember& process) {
      arena_.member_started(process);
    });
    if (auto* error = std::get_if<tracer::AttachError>(&result)) {
      spdlog::info("event=member.attach_refused group={} pid={} step={} reason={} message={}", config_.group, pid,
                   tracer::to_string(error->step), tracer::to_string(error->refusal), log_quote(error->message));
      auto reply = attach_refusal(pid, *error, attach_conflict_holder(*error));
      if (attached.empty()) throw reply;
      proto::Error partial = reply.error();
      std::string done;
      for (const auto& [member, entry] : attached) done += (done.empty() ? "" : ", ") + std::to_string(entry.original_pid);
      partial.parameters["message"] = partial.message() + " (attached before it: " + done + ")";
      throw ErrorReply(std::move(partial));
    }
    // An ephemeral group lives from now on as long as its members (the
    // new_group attach of pat.join()).
    spawned_any_ = true;
    auto member = add_member(std::move(std::get<std::shared_ptr<tracer::SupervisedMember>>(result)), requested);
    const tracer::AttachStats& stats = *member->process->attach_stats();
    proto::AttachEntry entry{
        .pid = member->pid(),
        .original_pid = pid,
        .stopped_seconds = std::chrono::duration<double>(stats.stopped).count(),
        .total_seconds = std::chrono::duration<double>(stats.total).count(),
        .bytes_copied = stats.bytes_precopied + stats.bytes_copied_stopped,
        .bytes_copied_stopped = stats.bytes_copied_stopped,
        .threads = stats.threads,
        .fds = stats.fds};
    spdlog::info("event=member.attach group={} pid={} original_pid={} program={} stopped_us={} total_us={} "
                 "bytes_copied={} bytes_copied_stopped={} threads={}",
                 config_.group, member->pid(), pid, log_quote(member->launched().exe_path), stats.stopped.count(),
                 stats.total.count(), entry.bytes_copied, entry.bytes_copied_stopped, stats.threads);
    publish("member.attach", *member, std::nullopt, entry);
    attached.emplace_back(std::move(member), entry);
  }
  return attached;
}

// A member that runs the slower position-independent program because its
// non-PIC build is stale: said once per build in the log, and for as long as
// the host lives in the group's description (patctl group show, status).
void GroupHost::note_stale_build(const Member& member) {
  const auto& stale = member.launched().stale_build;
  if (!stale || !description_.record_stale_build({stale->build, stale->reason, std::nullopt})) return;
  spdlog::warn("event=member.stale_build group={} pid={} build={} reason={}", config_.group, member.pid(),
               log_quote(stale->build), log_quote(stale->reason));
}

std::shared_ptr<Member> GroupHost::find(pid_t pid) const {
  auto it = members_.find(pid);
  if (it != members_.end()) return it->second;
  if (auto process = supervisor_.find_attached(pid)) {
    it = members_.find(process->pid());
    if (it != members_.end()) return it->second;
  }
  return nullptr;
}

void GroupHost::signal(pid_t pid, int signal) const {
  auto member = find(pid);
  if (!member) {
    throw ErrorReply(ErrorCode::MemberNotFound, "process " + std::to_string(pid) + " is not a member of group " +
                                                    config_.group,
                     {{"pid", pid}});
  }
  auto sent = supervisor_.signal(*member->process, signal);
  if (!sent && sent.error().code != ESRCH) {
    throw ErrorReply(ErrorCode::InternalError, sent.error().message(), {{"reason", sent.error().message()}});
  }
}

// The supervisor's news, on the event loop's thread.

// Under the group lock: the arena first, since releasing the member's
// references may unpin External buffers it made, whose pages then go back
// to it and are unmapped with the rest; pages still pinned by others stay.
// Its program leaves the debuggers' table with its memory.
void GroupHost::releasing(const tracer::SupervisedMember& process) {
  arena_.member_ended(process);
  debugger_table_.remove(process.pid());
}

void GroupHost::member_execed(const tracer::SupervisedMember& process) {
  auto it = members_.find(process.pid());
  if (it == members_.end()) return;
  spdlog::info("event=member.exec group={} pid={}", config_.group, process.pid());
  publish("member.exec", *it->second);
}

void GroupHost::core_completed(const tracer::SupervisedMember& process, const Result<tracer::MemberCore>& core,
                               double seconds) {
  if (!core.ok()) {
    spdlog::warn("event=member.core_failed group={} pid={} reason={}", config_.group, process.pid(),
                 log_quote(core.error().message()));
    return;
  }
  spdlog::info("event=member.core group={} pid={} path={} bytes={} threads={} truncated={} seconds={:.3f}",
               config_.group, process.pid(), log_quote(core.value().path), core.value().bytes, core.value().threads,
               core.value().truncated, seconds);
}

void GroupHost::member_exited(const tracer::SupervisedMember& process) {
  auto it = members_.find(process.pid());
  if (it == members_.end()) return;
  auto member = it->second;
  members_.erase(it);
  member->ended = proto::unix_now();
  const auto& end = process.end();
  std::optional<proto::ExitEntry> exit;
  if (end.ok()) {
    exit = member->exit_entry(end.value());
    description_.record_exit(*exit);
    spdlog::info("event=member.exit group={} pid={} {}", config_.group, member->pid(), end.value().log_field());
  } else {
    // Gone, but how is unknown: no recent_exits entry, which must say.
    spdlog::error("event=member.exit group={} pid={} status=unknown error={}", config_.group, member->pid(),
                  log_quote(end.error().message()));
  }
  publish("member.exit", *member, exit);
  member->exited.set();
  exit_if_ephemeral_and_idle();
}

// An attached member's stub is ended after its member, asynchronously (it
// is interrupted and made to exit the same way): the host waits for that
// (watch_supervisor() asks again after each dispatch), or its exit would
// SIGKILL the stub (PTRACE_O_EXITKILL) and the original parent would see
// that instead of the member's status (pat.join() into a new group).
void GroupHost::exit_if_ephemeral_and_idle() {
  if (config_.ephemeral && members_.empty() && !shutting_down_) {
    ephemeral_exit_waits_for_stubs_ = !supervisor_.stubs_ended();
    if (ephemeral_exit_waits_for_stubs_) return;
    spdlog::info("event=host.ephemeral_exit group={}", config_.group);
    shutting_down_ = true;
    // Posted, not called: the spawn call waiting for this member resumes from
    // handlers already queued, and its final reply must be queued before the
    // sessions flush and close.
    asio::post(io_, request_exit_);
  }
}

void GroupHost::publish(const char* event, const Member& member, std::optional<proto::ExitEntry> exit,
                        std::optional<proto::AttachEntry> attach) {
  if (events_.empty()) return;
  events_.publish(
      proto::MemberEvent{event, member.entry(), std::move(exit), describe(Detail::Summary), std::move(attach)});
}

void GroupHost::check_shutdown_allowed(bool force) const {
  if (!force && !members_.empty()) {
    throw ErrorReply(ErrorCode::GroupBusy,
                     "group " + config_.group + " has " + std::to_string(members_.size()) +
                         " running member(s); use --force to terminate them",
                     {{"name", config_.group}, {"members", members_.size()}});
  }
}

asio::awaitable<void> GroupHost::shut_down(std::chrono::milliseconds grace) {
  shutting_down_ = true;
  spdlog::info("event=host.shutdown group={} members={} grace_ms={}", config_.group, members_.size(), grace.count());
  auto members = members_;
  for (auto& [pid, member] : members) supervisor_.signal_process_group(*member->process, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + grace;
  for (auto& [pid, member] : members) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    co_await member->exited.wait(std::max(left, std::chrono::milliseconds(0)));
  }
  for (auto& [pid, member] : members) {
    if (member->alive()) supervisor_.signal_process_group(*member->process, SIGKILL);
  }
  for (auto& [pid, member] : members) co_await member->exited.wait(std::chrono::milliseconds(5'000));
  // Attached members' stubs end after them (exit_if_ephemeral_and_idle()):
  // their parents should see how the member ended, not the host's exit.
  asio::steady_timer poll(io_);
  for (auto waited = std::chrono::milliseconds(0); !supervisor_.stubs_ended() && waited < kStubEndWait;
       waited += kStubEndPoll) {
    poll.expires_after(kStubEndPoll);
    co_await poll.async_wait(asio::use_awaitable);
  }
  // Posted, as in exit_if_ephemeral_and_idle: members that ended together
  // woke their spawn calls from handlers queued behind this coroutine's
  // resumption, and waits on an event already set do not suspend. Called
  // directly, the sessions closed before those calls queued the final
  // status, and `patctl run` said "host not answering" instead of 143
  // (issue 13, 1.8: 7 of 80 runs).
  asio::post(io_, request_exit_);
}

}  // namespace pat::host
