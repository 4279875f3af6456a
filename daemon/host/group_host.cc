#include "daemon/host/group_host.h"

#include "base/log.h"
#include "base/pidfd.h"
#include "pat/pat.hpp"
#include "proto/errors.h"
#include "proto/group_object.h"
#include "tracer/core_file.h"
#include "tracer/proc_stats.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <csignal>
#include <sstream>

namespace pat::host {

using proto::ErrorCode;
using proto::ErrorReply;
using nlohmann::json;

namespace {

constexpr std::size_t kRecentExits = 32;
// Members with at most this much resident memory get their core written on
// the event loop (GroupHost::complete_core): a few milliseconds.
constexpr std::size_t kInlineCoreBytes = std::size_t{32} << 20;
// How long an ephemeral host waits for its first spawn before giving up.
constexpr std::chrono::seconds kEphemeralIdleLimit{60};

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string hex(std::uintptr_t value) {
  std::ostringstream out;
  out << "0x" << std::hex << value;
  return out.str();
}

std::string joined(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& arg : argv) {
    if (!out.empty()) out += ' ';
    out += arg;
  }
  return out;
}

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

// On the core writer's thread (GroupHost::complete_core).
asio::awaitable<WrittenCore> write_core(tracer::MemberCoreSource source) {
  WrittenCore written;
  auto core = tracer::complete_member_core(source);
  if (core) {
    written.path = core->path;
    written.bytes = core->bytes;
    written.threads = core->threads;
    written.truncated = core->truncated;
  } else {
    written.error = core.error().message();
  }
  co_return written;
}

}  // namespace

GroupHost::GroupHost(asio::io_context& io, HostConfig config, std::function<void()> request_exit)
    : io_(io),
      config_(std::move(config)),
      request_exit_(std::move(request_exit)),
      created_(unix_now()),
      space_(config_.allow_cross_mapping),
      debugger_table_(config_.group),
      // The group's address space dumps no memory: each member's core is
      // completed from the kernel's by the host (tracer/core_file.h).
      member_core_filter_(tracer::exclude_memory_from_kernel_cores().value_or(tracer::dump_filter::kDefault)),
      arena_retry_(io),
      servers_(io, group_lock_) {
  space_.on_refusal = [this](const tracer::MappingRefusal& refusal) {
    spdlog::warn("event=mapping.refused group={} pid={} syscall={} start={} end={} other_pid={} other_kind={}",
                 config_.group, refusal.pid, refusal.syscall, hex(refusal.range.start), hex(refusal.range.end),
                 refusal.other_pid, refusal.other_owner == tracer::kNoOwner ? "host" : tracer::to_string(refusal.other_kind));
  };
  create_arena();
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

// With usage: per member its own CPU time and threads, and the memory it owns
// (from the ledger); per group RSS and PSS, which the kernel keeps per address
// space, so they are the group's, once. Usage costs /proc reads and mincore
// over every member's memory, so event streams go without it.
json GroupHost::describe(Detail detail) const {
  const bool usage = detail == Detail::WithUsage;
  json members = json::array();
  for (const auto& [pid, member] : members_) {
    json entry = member->to_json(usage);
    if (usage && member->state != Member::State::Execed) {
      std::lock_guard lock(group_lock_);
      const auto& brk = member->syscalls->brk();
      auto footprint = space_.footprint(member->syscalls->owner(), tracer::Range{brk.start(), brk.current()});
      entry["mapped_bytes"] = footprint.mapped_bytes;
      entry["resident_bytes"] = footprint.resident_bytes;
    }
    members.push_back(std::move(entry));
  }
  json exits = json::array();
  for (auto it = recent_exits_.rbegin(); it != recent_exits_.rend(); ++it) exits.push_back(*it);
  return {{"name", config_.group},
          {"owner_uid", ::getuid()},
          {"owner_gid", ::getgid()},
          {"host_pid", ::getpid()},
          {"created", proto::rfc3339_utc(created_)},
          {"ephemeral", config_.ephemeral},
          {"allow_cross_mapping", config_.allow_cross_mapping},
          {"members", members},
          {"recent_exits", exits},
          {"memory", usage ? address_space_json() : json::object()}};
}

json GroupHost::address_space_json() const {
  json memory;
  {
    std::lock_guard lock(group_lock_);
    memory = {{"pinned_regions", space_.pin_count()}};
  }
  if (arena_) {
    auto arena = arena_->stats();
    memory["arena"] = {{"size_bytes", arena.arena_bytes},
                       {"members", arena.members},
                       {"members_ending", arena.members_ending},
                       {"channels", arena.channels},
                       {"buffers", arena.buffers},
                       {"buffer_bytes", arena.buffer_bytes},
                       {"retained_free_bytes", arena.retained_free_bytes},
                       {"discarded_bytes", arena.discarded_bytes},
                       {"owed_frees", arena.owed_frees},
                       {"allocator_owner_deaths", arena.allocator_owner_deaths},
                       {"allocator_damaged", arena.allocator_damaged}};
  }
  if (auto stats = tracer::read_address_space_stats(::getpid())) {
    memory["size_bytes"] = stats->size_bytes;
    memory["rss_bytes"] = stats->rss_bytes;
    memory["pss_bytes"] = stats->pss_bytes;
  }
  return memory;
}

void GroupHost::throw_launch_error(const tracer::LaunchError& error, const tracer::LaunchSpec& spec) const {
  using Kind = tracer::LaunchError::Kind;
  switch (error.kind) {
    case Kind::NotFound:
      throw ErrorReply(ErrorCode::ProgramNotFound, error.message, {{"program", spec.path}});
    case Kind::NotExecutable:
      throw ErrorReply(ErrorCode::ProgramNotExecutable, error.message,
                       {{"program", spec.path}, {"reason", error.message}});
    case Kind::AddressConflict: {
      json params = {{"program", spec.path}, {"start", error.conflict_start}, {"end", error.conflict_end}};
      std::string holder = "something else in this group";
      tracer::Range wanted{error.conflict_start, error.conflict_end};
      for (const auto& [pid, member] : members_) {
        if (!member->launched.layout) continue;
        for (const auto& range : member->launched.layout->ranges()) {
          if (!range.overlaps(wanted)) continue;
          params["member_pid"] = pid;
          params["member_argv"] = member->launched.argv;
          holder = "member " + std::to_string(pid) + " (" + joined(member->launched.argv) + ")";
        }
      }
      throw ErrorReply(ErrorCode::AddressConflict,
                       spec.path + " is not position-independent and needs the fixed addresses " +
                           hex(error.conflict_start) + "-" + hex(error.conflict_end) + ", taken by " + holder +
                           "; only one copy fits in a group's address space (for Python, run pat-python)",
                       params);
    }
    case Kind::Internal:
      break;
  }
  throw ErrorReply(ErrorCode::InternalError, error.message, {{"reason", error.message}});
}

std::shared_ptr<Member> GroupHost::spawn(tracer::LaunchSpec spec, bool detached) {
  if (shutting_down_) {
    throw ErrorReply(ErrorCode::GroupBusy, "group " + config_.group + " is shutting down",
                     {{"name", config_.group}, {"members", members_.size()}});
  }
  spawned_any_ = true;
  double requested = unix_now();
  spec.extra_env["PAT_GROUP"] = config_.group;
  if (arena_) spec.extra_env[dataplane::kArenaVariable] = arena_->environment_value();
  apply_allocator_defaults(spec);
  auto launched = launcher_.launch(spec);
  if (auto* error = std::get_if<tracer::LaunchError>(&launched)) {
    spdlog::info("event=member.refused group={} program={} reason={}", config_.group, log_quote(spec.path),
                 log_quote(error->message));
    throw_launch_error(*error, spec);
  }
  auto member = std::make_shared<Member>(io_.get_executor(), std::move(std::get<tracer::LaunchedMember>(launched)));
  tracer::OwnerId owner;
  {
    std::lock_guard lock(group_lock_);
    owner = space_.add_member(member->pid(), *member->launched.layout);
  }
  member->syscalls = std::make_unique<tracer::MemberSyscalls>(member->launched, space_, owner, member_core_filter_);
  // Recorded before the member can look: its first rerouted syscall waits
  // for its syscall server, which starts only below.
  if (arena_ && !arena_->member_started(member->pid(), member->launched.argv)) {
    spdlog::warn("event=arena.member_table_full group={} pid={}", config_.group, member->pid());
  }
  member->detached = detached;
  member->started = requested;
  members_[member->pid()] = member;
  debugger_table_.add({member->pid(), member->launched.exe_path, member->launched.program_bias,
                       member->launched.interpreter_base});
  servers_.serve(
      member,
      [this, member] {
        if (member->state != Member::State::Running) return;
        member->state = Member::State::Leaving;
        asio::co_spawn(io_, confirm_exec(member), asio::detached);
      },
      // The listener may outlive the member (fork children keep the filter);
      // it is closed once nobody uses it and its thread has ended.
      [member] { member->launched.listener.reset(); });
  asio::co_spawn(io_, await_exit(member), asio::detached);
  spdlog::info("event=member.start group={} pid={} program={} argc={}", config_.group, member->pid(),
               log_quote(member->launched.exe_path), member->launched.argv.size());
  publish("member.start", *member);
  return member;
}

std::shared_ptr<Member> GroupHost::find(pid_t pid) const {
  auto it = members_.find(pid);
  return it == members_.end() ? nullptr : it->second;
}

void GroupHost::signal(pid_t pid, int signal) const {
  auto member = find(pid);
  if (!member) {
    throw ErrorReply(ErrorCode::MemberNotFound, "process " + std::to_string(pid) + " is not a member of group " +
                                                    config_.group,
                     {{"pid", pid}});
  }
  // The pidfd pins the exact process: no signal can reach a recycled pid.
  auto sent = pidfd_signal(member->launched.pidfd.get(), signal);
  if (!sent && sent.error().code != ESRCH) {
    throw ErrorReply(ErrorCode::InternalError, sent.error().message(), {{"reason", sent.error().message()}});
  }
}

// Every member ran setsid(), so its pid is also the id of the process group
// its fork children share: signalling the group reaches them too.
void GroupHost::signal_process_group(const Member& member, int signal) const {
  (void)pidfd_signal(member.launched.pidfd.get(), signal);
  ::kill(-member.pid(), signal);
}

// execve only reports that it started; whether the process really left our
// address space shows in kcmp(KCMP_VM). Poll with backoff: a successful exec
// completes in well under a millisecond, a failed one returns to the member.
asio::awaitable<void> GroupHost::confirm_exec(std::shared_ptr<Member> member) {
  asio::steady_timer timer(io_);
  auto delay = std::chrono::microseconds(200);
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (member->state == Member::State::Leaving) {
    if (!tracer::shares_my_address_space(member->pid())) {
      member->state = Member::State::Execed;
      reclaim(*member);
      spdlog::info("event=member.exec group={} pid={}", config_.group, member->pid());
      publish("member.exec", *member);
      co_return;
    }
    if (std::chrono::steady_clock::now() > give_up) {
      member->state = Member::State::Running;  // the execve failed and it carried on
      co_return;
    }
    timer.expires_after(delay);
    co_await timer.async_wait(asio::use_awaitable);
    delay = std::min(delay * 2, std::chrono::microseconds(100'000));
  }
}

asio::awaitable<void> GroupHost::await_exit(std::shared_ptr<Member> member) {
  asio::posix::stream_descriptor pidfd(io_, ::dup(member->launched.pidfd.get()));
  boost::system::error_code ec;
  co_await pidfd.async_wait(asio::posix::stream_descriptor::wait_read, asio::redirect_error(asio::use_awaitable, ec));
  siginfo_t info{};
  ExitStatus status;
  status.ended = unix_now();
  // A member that dumped core gets its own core before it is reaped and
  // before its memory goes back to the group (tracer/core_file.h).
  if (::waitid(P_PIDFD, static_cast<id_t>(member->launched.pidfd.get()), &info, WEXITED | WNOWAIT) == 0 &&
      info.si_code == CLD_DUMPED) {
    co_await complete_core(*member, info.si_status, status);
  }
  if (::waitid(P_PIDFD, static_cast<id_t>(member->launched.pidfd.get()), &info, WEXITED) == 0) {
    if (info.si_code == CLD_EXITED) {
      status.exit_code = info.si_status;
    } else {
      status.signal = info.si_status;
    }
  }
  member->exit = status;
  member->state = Member::State::Exited;
  members_.erase(member->pid());
  reclaim(*member);
  recent_exits_.push_back(member->exit_json());
  if (recent_exits_.size() > kRecentExits) recent_exits_.pop_front();
  json extra = status.to_json();
  spdlog::info("event=member.exit group={} pid={} {}={}", config_.group, member->pid(),
               status.exit_code ? "exit_code" : "signal", status.exit_code ? *status.exit_code : *status.signal);
  publish("member.exit", *member, extra);
  member->exited.set();
  exit_if_ephemeral_and_idle();
}

// The member's own core file from the kernel's, written on the core writer's
// thread: a big member's memory takes a while to write, and the event loop
// serves the group meanwhile. The member is a zombie, not yet reaped, so its
// pid and RLIMIT_CORE still stand; its memory is still mapped.
asio::awaitable<void> GroupHost::complete_core(Member& member, int signal, ExitStatus& status) {
  status.core_dumped = true;
  tracer::MemberCoreSource source;
  source.pid = member.pid();
  source.program = member.launched.exe_path;
  source.argv = member.launched.argv;
  source.auxv = member.launched.auxv;
  source.filter = member_core_filter_;
  source.signal = signal;
  UniqueFd cwd;
  {
    std::lock_guard lock(group_lock_);  // its syscall server follows chdir under it
    cwd.reset(::fcntl(member.syscalls->cwd(), F_DUPFD_CLOEXEC, 0));
  }
  source.cwd_fd = cwd.get();
  struct rlimit limit {};
  if (::prlimit(member.pid(), RLIMIT_CORE, nullptr, &limit) == 0) source.limit = limit.rlim_cur;
  source.comm = tracer::read_comm(member.pid());
  std::size_t resident = 0;
  {
    std::lock_guard lock(group_lock_);
    for (const auto& segment : space_.ledger().segments_of(member.syscalls->owner())) source.owned.push_back(segment.range);
    const auto& brk = member.syscalls->brk();
    resident = space_.footprint(member.syscalls->owner(), tracer::Range{brk.start(), brk.current()}).resident_bytes;
  }
  auto started = std::chrono::steady_clock::now();
  // A small core is written here: two thread hand-offs cost more than it
  // does on a loaded machine. A big one goes to the writer's thread, so
  // that the group is served meanwhile.
  WrittenCore core;
  if (resident <= kInlineCoreBytes) {
    core = co_await write_core(std::move(source));
  } else {
    core = co_await asio::co_spawn(core_writer_, write_core(std::move(source)), asio::use_awaitable);
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (core.path.empty()) {
    status.core_error = core.error;
    spdlog::warn("event=member.core_failed group={} pid={} reason={}", config_.group, member.pid(),
                 log_quote(core.error));
    co_return;
  }
  status.core_file = core.path;
  status.core_truncated = core.truncated;
  spdlog::info("event=member.core group={} pid={} path={} bytes={} threads={} truncated={} seconds={:.3f}",
               config_.group, member.pid(), log_quote(core.path), core.bytes, core.threads, core.truncated, seconds);
}

// Everything the member owned goes back, before its exit or exec is reported
// (only pinned memory stays, for the members reading it).
void GroupHost::reclaim(Member& member) {
  if (member.reclaimed) return;
  member.reclaimed = true;
  debugger_table_.remove(member.pid());
  // The arena first: releasing the member's references may unpin External
  // buffers it made, whose pages then go back to it and are unmapped just
  // below with the rest; pages still pinned by others stay (kPinHolder).
  std::lock_guard lock(group_lock_);
  release_in_arena(member);
  auto bytes = space_.reclaim(member.syscalls->owner());
  spdlog::debug("event=member.reclaimed group={} pid={} bytes={}", config_.group, member.pid(), bytes);
}

void GroupHost::create_arena() {
  try {
    arena_ = dataplane::ArenaHost::create(config_.group, [this](std::uint64_t pin) { space_.release_pin(pin); });
  } catch (const pat::Error& error) {
    spdlog::warn("event=arena.unavailable group={} reason={}", config_.group, log_quote(error.what()));
    return;
  }
  auto where = arena_->location();
  // The group's own memory: members may not map over, unmap or pin it.
  space_.assign_to_group(tracer::Range{where.address, where.address + where.size});
  spdlog::info("event=arena.ready group={} start={} size={}", config_.group, hex(where.address), where.size);
}

void GroupHost::release_in_arena(const Member& member) {
  if (arena_ && !arena_->member_ended(member.pid())) retry_arena_cleanup_later();
}

void GroupHost::retry_arena_cleanup_later() {
  arena_retry_.expires_after(std::chrono::milliseconds(5));
  arena_retry_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    bool done;
    {
      // Releasing a member's references may release pins in the ledger.
      std::lock_guard lock(group_lock_);
      done = arena_->retry();
    }
    if (!done) retry_arena_cleanup_later();
  });
}

void GroupHost::exit_if_ephemeral_and_idle() {
  if (config_.ephemeral && members_.empty() && !shutting_down_) {
    spdlog::info("event=host.ephemeral_exit group={}", config_.group);
    shutting_down_ = true;
    // Posted, not called: the spawn call waiting for this member resumes from
    // handlers already queued, and its final reply must be queued before the
    // sessions flush and close.
    asio::post(io_, request_exit_);
  }
}

void GroupHost::publish(const char* event, const Member& member, json extra) {
  if (watchers_.empty()) return;
  json member_json = member.to_json(false);
  for (auto& [key, value] : extra.items()) member_json[key] = value;
  json message = {{"event", event}, {"member", member_json}, {"group", describe(Detail::Summary)}};
  auto watchers = watchers_;  // a watcher may remove itself
  for (auto& [id, watcher] : watchers) watcher(message);
}

std::uint64_t GroupHost::add_watcher(Watcher watcher) {
  auto id = next_watcher_++;
  watchers_.emplace(id, std::move(watcher));
  return id;
}

void GroupHost::remove_watcher(std::uint64_t id) { watchers_.erase(id); }

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
  for (auto& [pid, member] : members) signal_process_group(*member, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + grace;
  for (auto& [pid, member] : members) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    co_await member->exited.wait(std::max(left, std::chrono::milliseconds(0)));
  }
  for (auto& [pid, member] : members) {
    if (member->alive()) signal_process_group(*member, SIGKILL);
  }
  for (auto& [pid, member] : members) co_await member->exited.wait(std::chrono::milliseconds(5'000));
  request_exit_();
}

}  // namespace pat::host
