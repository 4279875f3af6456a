#include "daemon/patd/group_registry.h"

#include "daemon/patd/host_log_relay.h"

#include "base/log.h"
#include "base/pidfd.h"
#include "daemon/patd/oom_kill_log.h"
#include "proto/errors.h"
#include "proto/exit_status.h"
#include "proto/group_object.h"
#include "proto/interface.h"

#include <fcntl.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <csignal>
#include <cstring>

namespace pat::patd {

using proto::ErrorCode;
using proto::ErrorReply;
using proto::json;

namespace {

constexpr std::chrono::milliseconds kHostStartTimeout{10'000};
constexpr std::chrono::milliseconds kWatchRetryDelay{1'000};
constexpr std::chrono::milliseconds kExitPollInterval{1'000};

// Whether the host has exited, asked without blocking and without a new
// descriptor: a pidfd polls readable once its process has exited
// (pidfd_open(2)).
bool host_has_exited(const Group& group) {
  pollfd exited{group.host_pidfd.get(), POLLIN, 0};
  return ::poll(&exited, 1, 0) == 1 && (exited.revents & POLLIN) != 0;
}

// patd's one wait: for a host it started (its child), once its pidfd says it
// exited. Members are their host's children and reaped there
// (tracer/member_supervisor.h); hosts found again after a restart are not
// patd's children and cannot be waited for (nullopt). The status is the same
// type.
std::optional<proto::ExitStatus> reap_host(const Group& group, std::string& log_field) {
  log_field = "status=unknown";
  if (!group.host_is_child) return std::nullopt;
  siginfo_t info{};
  if (::waitid(P_PIDFD, static_cast<id_t>(group.host_pidfd.get()), &info, WEXITED | WNOHANG) != 0) {
    log_field += " error=" + log_quote(std::strerror(errno));
    return std::nullopt;
  }
  auto status = proto::ExitStatus::from_siginfo(info);
  if (status) log_field = status->log_field();
  return status;
}

// The group's pids as patd last heard them: the host and its members.
std::vector<pid_t> group_pids(const Group& group) {
  std::vector<pid_t> pids{group.host_pid};
  if (group.snapshot.is_object()) {
    for (const auto& member : group.snapshot.value("members", json::array())) pids.push_back(member.value("pid", 0));
  }
  return pids;
}

// The OOM killer's SIGKILL reaches the host before its log line is written
// (mm/oom_kill.c sends the signal, then logs); a host that dies that fast is
// looked for once more after this.
constexpr std::chrono::milliseconds kOomLogDelay{200};

// One log line per member event, built from the structured reply: a host's
// strings are quoted, never pasted into the line.
void log_member_event(const std::string& group, const json& reply) {
  auto event = reply.find("event");
  auto member = reply.find("member");
  if (event == reply.end() || !event->is_string() || member == reply.end() || !member->is_object()) return;
  std::string line = "event=" + log_quote(event->get<std::string>()) + " group=" + group;
  if (auto pid = member->find("pid"); pid != member->end() && pid->is_number_integer()) {
    line += " pid=" + std::to_string(pid->get<long long>());
  }
  if (auto exit = reply.find("exit"); exit != reply.end()) {
    if (auto status = proto::ExitStatus::from_json(*exit)) line += " " + status->log_field();
  }
  if (auto program = member->find("program"); program != member->end() && program->is_string()) {
    line += " program=" + log_quote(program->get<std::string>());
  }
  if (auto attach = reply.find("attach"); attach != reply.end() && attach->is_object()) {
    for (const char* key : {"original_pid", "stopped_seconds", "bytes_copied"}) {
      if (auto it = attach->find(key); it != attach->end() && it->is_number()) line += std::string(" ") + key + "=" + it->dump();
    }
  }
  spdlog::info("{}", line);
}

}  // namespace

json Group::to_json() const {
  // Before the host first described itself: the same shape, empty.
  json object = snapshot.is_object() ? snapshot
                                     : json{{"members", json::array()},
                                            {"recent_exits", json::array()},
                                            {"allow_cross_mapping", false},
                                            {"memory", json::object()}};
  object["name"] = name;
  object["owner_uid"] = owner_uid;
  object["owner_gid"] = owner_gid;
  object["host_pid"] = host_pid;
  object["ephemeral"] = ephemeral || object.value("ephemeral", false);  // snapshot may still be null
  object["state"] = state == State::Starting ? "starting" : state == State::Running ? "running" : "destroying";
  if (!object.contains("created")) object["created"] = "";
  return object;
}

GroupRegistry::GroupRegistry(asio::io_context& io, RuntimeDir runtime, std::string host_binary, EventBus& events)
    : io_(io), runtime_(std::move(runtime)), host_binary_(std::move(host_binary)), events_(events) {}

proto::DaemonEvent GroupRegistry::group_event(std::string_view kind, const Group& group) const {
  return proto::DaemonEvent(kind, group.name, group.owner_uid);
}

std::shared_ptr<Group> GroupRegistry::find(const std::string& name) const {
  auto it = groups_.find(name);
  return it == groups_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<Group>> GroupRegistry::all() const {
  std::vector<std::shared_ptr<Group>> out;
  for (const auto& [name, group] : groups_) out.push_back(group);
  return out;
}

std::string GroupRegistry::ephemeral_name() {
  for (;;) {
    std::string name = "run-" + std::to_string(::getpid()) + "-" + std::to_string(++ephemeral_counter_);
    if (!groups_.contains(name)) return name;
  }
}

asio::awaitable<std::shared_ptr<Group>> GroupRegistry::create(const std::string& name, const HostCredentials& owner,
                                                              CreateOptions options) {
  if (!proto::is_valid_group_name(name)) {
    throw ErrorReply(ErrorCode::InvalidGroupName,
                     "invalid group name \"" + name + "\": use 1-64 characters from [A-Za-z0-9_.-]", {{"name", name}});
  }
  if (groups_.contains(name)) {
    throw ErrorReply(ErrorCode::GroupExists, "group " + name + " exists", {{"name", name}});
  }
  if (auto status = runtime_.create_group_dir(name, owner.uid, owner.gid); !status) {
    throw ErrorReply(ErrorCode::InternalError, status.error().message(), {{"reason", status.error().message()}});
  }
  auto group = std::make_shared<Group>(io_.get_executor(), name, owner.uid, owner.gid,
                                       runtime_.host_socket(name).string());
  group->ephemeral = options.ephemeral;
  groups_[name] = group;  // reserves the name while the host starts

  HostSpec spec{host_binary_, name, runtime_.group_dir(name).string(), owner, options.ephemeral,
                options.allow_cross_mapping};
  auto started = start_host(spec);
  if (!started) {
    forget(group, "host did not start");
    throw ErrorReply(ErrorCode::InternalError, "starting the group host: " + started.error().message(),
                     {{"reason", started.error().message()}});
  }
  group->host_pid = started->pid;
  group->host_pidfd = std::move(started->pidfd);
  group->host_is_child = true;
  asio::co_spawn(io_, watch_exit(group), asio::detached);
  asio::co_spawn(io_, relay_host_log(io_, std::move(started->log), name, group->host_pid), asio::detached);

  std::optional<ErrorReply> failure;
  try {
    co_await wait_until_ready(*group, std::move(started->ready));
    group->link.expect_host_pid(group->host_pid);
    auto described = co_await group->link.describe();
    group->snapshot = std::move(described.group);
    // It may have exited since it answered: watch_exit forgot it then.
    if (group->exited.is_set()) throw host_unavailable(name, "host exited while starting");
  } catch (const ErrorReply& e) {
    failure = e;
  }
  if (failure) {
    (void)pidfd_signal(group->host_pidfd.get(), SIGKILL);
    forget(group, "host failed to start");
    throw *failure;
  }
  group->state = Group::State::Running;
  spdlog::info("event=group.created group={} owner_uid={} host_pid={} ephemeral={}", name, owner.uid,
               group->host_pid, options.ephemeral);
  group->announced = true;
  auto created = group_event(proto::event::kGroupCreate, *group);
  created.host_pid = group->host_pid;
  events_.publish(std::move(created));
  start_watching(group);
  // The first member (an ephemeral group's only one) must not start before
  // the host has a watcher to tell.
  co_await group->watching.wait(kHostCallTimeout);
  co_return group;
}

// The host reports on a pipe: "READY\n" once it serves its socket, or
// "ERROR <why>\n" (the exec or credential step failed) before exiting.
asio::awaitable<void> GroupRegistry::wait_until_ready(Group& group, UniqueFd ready) {
  asio::posix::stream_descriptor pipe(io_, ready.release());
  asio::steady_timer deadline(io_, kHostStartTimeout);
  deadline.async_wait([&pipe](boost::system::error_code ec) {
    if (!ec) pipe.close();
  });
  std::string report;
  std::array<char, 512> buffer;
  for (;;) {
    boost::system::error_code ec;
    std::size_t n = co_await pipe.async_read_some(asio::buffer(buffer), asio::redirect_error(asio::use_awaitable, ec));
    report.append(buffer.data(), n);
    if (ec || report.size() > 4096 || report.find('\n') != std::string::npos) break;
  }
  deadline.cancel();
  if (report.rfind("READY\n", 0) == 0) co_return;
  if (report.empty()) {
    // Nothing said: the host died (killed, crashed) or hung while starting.
    // Like a host that stops answering later, that is GroupUnavailable, not
    // a fault of patd's (bench/fault_injection.py: kill -9 of a starting host).
    spdlog::error("event=group.start_failed group={} host_pid={} reason=no_report", group.name, group.host_pid);
    throw host_unavailable(group.name, "it exited or timed out before it was ready");
  }
  std::string why = report;
  if (!why.empty() && why.back() == '\n') why.pop_back();
  if (why.rfind("ERROR ", 0) == 0) why = why.substr(6);
  spdlog::error("event=group.start_failed group={} host_pid={} reason={}", group.name, group.host_pid,
                log_quote(why));
  throw ErrorReply(ErrorCode::InternalError, "group " + group.name + ": host failed to start: " + why,
                   {{"reason", why}});
}

asio::awaitable<void> GroupRegistry::destroy(std::shared_ptr<Group> group, bool force,
                                             std::chrono::milliseconds grace) {
  if (group->state == Group::State::Destroying) {
    throw ErrorReply(ErrorCode::GroupBusy, "group " + group->name + " is already being destroyed",
                     {{"name", group->name}, {"members", 0}});
  }
  auto previous = group->state;
  group->state = Group::State::Destroying;
  std::optional<ErrorReply> refusal;
  try {
    json request = {{"force", force}, {"grace_ms", grace.count()}};  // not inline: see member_signal
    co_await group->link.call(proto::method::kHostShutdown, std::move(request), grace + kHostCallTimeout);
  } catch (const ErrorReply& e) {
    refusal = e;
  }
  if (refusal) {
    bool unreachable = refusal->error().is(ErrorCode::GroupUnavailable);
    if (!(unreachable && force)) {
      group->state = previous;
      throw *refusal;
    }
    spdlog::warn("event=group.kill group={} host_pid={} reason=host_unresponsive", group->name, group->host_pid);
    (void)pidfd_signal(group->host_pidfd.get(), SIGKILL);
  }
  if (!co_await group->exited.wait(grace + kHostCallTimeout)) {
    spdlog::warn("event=group.kill group={} host_pid={} reason=host_did_not_exit", group->name, group->host_pid);
    (void)pidfd_signal(group->host_pidfd.get(), SIGKILL);
    co_await group->exited.wait(kHostCallTimeout);
  }
  forget(group, "destroyed");
}

// Only a pidfd that polls readable means the host exited. When no
// descriptor is free for the asynchronous wait (EMFILE under load), patd
// looks again every kExitPollInterval: taking the failed wait for an exit
// forgot running hosts, which then ran on unknown and ended as zombies
// (issue 13, 1.2).
asio::awaitable<void> GroupRegistry::watch_exit(std::shared_ptr<Group> group) {
  asio::steady_timer retry(io_);
  bool warned = false;
  while (!host_has_exited(*group)) {
    boost::system::error_code ec;
    UniqueFd watch(::fcntl(group->host_pidfd.get(), F_DUPFD_CLOEXEC, 0));
    if (watch) {
      asio::posix::stream_descriptor pidfd(io_);
      pidfd.assign(watch.get(), ec);
      if (!ec) {
        (void)watch.release();
        co_await pidfd.async_wait(asio::posix::stream_descriptor::wait_read,
                                  asio::redirect_error(asio::use_awaitable, ec));
        if (!ec) continue;
      }
    } else {
      ec.assign(errno, boost::system::system_category());
    }
    if (ec == asio::error::operation_aborted) co_return;  // patd is stopping
    if (!warned) {
      spdlog::warn("event=host.watch_degraded group={} host_pid={} error={} poll_ms={}", group->name,
                   group->host_pid, log_quote(ec.message()), kExitPollInterval.count());
      warned = true;
    }
    retry.expires_after(kExitPollInterval);
    co_await retry.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (ec == asio::error::operation_aborted) co_return;
  }
  std::string status_field;
  auto status = reap_host(*group, status_field);
  spdlog::info("event=host.exit group={} host_pid={} {}", group->name, group->host_pid, status_field);
  group->exited.set();
  if (group->state == Group::State::Destroying) co_return;  // destroy() forgets it
  co_await report_host_end(group, status);
}

// A host ended without being asked to. Exit code 0 is an ephemeral group
// ending with its member; a SIGKILL may be the OOM killer, which takes the
// whole group (oom_kill_log.h) and is reported as such; anything else is
// the host dying. Unknown statuses (hosts of an earlier patd) are judged
// the same way, with "ephemeral" standing in for exit code 0.
asio::awaitable<void> GroupRegistry::report_host_end(std::shared_ptr<Group> group,
                                                     std::optional<proto::ExitStatus> status) {
  bool clean = status ? status->is_exit() && status->exit_code() == 0 : group->ephemeral;
  bool maybe_oom = !status || (status->is_signal() && status->signal() == SIGKILL);
  if (!clean) {
    auto pids = group_pids(*group);
    auto oom = maybe_oom ? find_oom_kill(pids, group->known_since) : std::nullopt;
    if (maybe_oom && !oom) {
      asio::steady_timer delay(io_, kOomLogDelay);
      co_await delay.async_wait(asio::use_awaitable);
      oom = find_oom_kill(pids, group->known_since);
    }
    if (oom) {
      spdlog::warn("event=group.oom group={} host_pid={} victim_pid={} members={} kernel={}", group->name,
                   group->host_pid, oom->victim, pids.size() - 1, log_quote(oom->line));
      auto event = group_event(proto::event::kGroupOom, *group);
      event.host_pid = group->host_pid;
      event.victim_pid = oom->victim;
      event.members = pids.size() - 1;
      event.reason = oom->line;
      events_.publish(std::move(event));
    } else {
      auto event = group_event(proto::event::kHostDied, *group);
      event.host_pid = group->host_pid;
      event.host_exit = status;
      events_.publish(std::move(event));
    }
  }
  forget(group, clean ? "ended" : "host exited");
}

void GroupRegistry::start_watching(std::shared_ptr<Group> group) {
  asio::co_spawn(io_, watch_events(std::move(group)), asio::detached);
}

// Follows the host's event stream: keeps the snapshot fresh and turns every
// event into one log line. A broken stream is re-opened while the host lives.
asio::awaitable<void> GroupRegistry::watch_events(std::shared_ptr<Group> group) {
  while (!group->exited.is_set()) {
    try {
      auto events = co_await group->link.stream(proto::method::kHostWatch, json::object());
      while (!events.finished()) {
        auto reply = co_await events.next(std::nullopt);
        group->watching.set();  // the host registers its watcher before its first reply
        if (auto it = reply.find("group"); it != reply.end()) {
          if (auto problem = proto::check_group_object(*it)) {
            spdlog::warn("event=group.bad_description group={} problem={}", group->name, log_quote(*problem));
          } else {
            group->snapshot = *it;
          }
        }
        log_member_event(group->name, reply);
        if (auto event = proto::member_event_from_host(group->name, group->owner_uid, reply)) {
          events_.publish(std::move(*event));
        }
      }
    } catch (const ErrorReply& e) {
      // The host is gone or restarting its socket (decided below), or it
      // refused the watch.
      if (!e.error().is(ErrorCode::GroupUnavailable)) {
        spdlog::warn("event=group.watch_error group={} error={}", group->name, e.error().name);
      }
    }
    if (co_await group->exited.wait(kWatchRetryDelay)) co_return;
  }
}

asio::awaitable<void> GroupRegistry::discover() {
  for (auto& entry : runtime_.list_group_dirs()) {
    if (groups_.contains(entry.name)) continue;
    co_await adopt(entry);
  }
  spdlog::info("event=groups.discovered count={}", groups_.size());
}

asio::awaitable<void> GroupRegistry::adopt(RuntimeDir::GroupDirEntry entry) {
  auto group = std::make_shared<Group>(io_.get_executor(), entry.name, entry.owner_uid, entry.owner_gid,
                                       runtime_.host_socket(entry.name).string());
  std::string problem;
  try {
    auto connected = co_await group->link.connect();
    connected.socket->close();
    group->host_pid = connected.peer.pid;
    group->link.expect_host_pid(group->host_pid);
    auto described = co_await group->link.describe();
    group->snapshot = std::move(described.group);
  } catch (const rpc::PeerUnavailable& e) {
    auto code = e.code();
    if (code == boost::system::errc::connection_refused || code == boost::system::errc::no_such_file_or_directory) {
      spdlog::info("event=group.stale group={} reason={}", entry.name, log_quote(e.what()));
      runtime_.remove_group_dir(entry.name);
      co_return;
    }
    problem = e.what();
  } catch (const ErrorReply& e) {
    problem = e.error().message();
  }
  if (problem.empty() && group->snapshot.value("name", std::string()) != entry.name) {
    problem = "host describes itself as another group";
  }
  if (!problem.empty()) {
    spdlog::warn("event=group.not_adopted group={} reason={}", entry.name, log_quote(problem));
    co_return;
  }
  auto pidfd = pidfd_open(group->host_pid);
  if (!pidfd) {
    spdlog::warn("event=group.not_adopted group={} reason=host_vanished", entry.name);
    co_return;
  }
  group->host_pidfd = std::move(pidfd.value());
  group->state = Group::State::Running;
  group->announced = true;  // not created now, but its end will be news
  groups_[entry.name] = group;
  spdlog::info("event=group.rediscovered group={} owner_uid={} host_pid={}", entry.name, entry.owner_uid,
               group->host_pid);
  asio::co_spawn(io_, watch_exit(group), asio::detached);
  start_watching(group);
}

void GroupRegistry::forget(const std::shared_ptr<Group>& group, const char* why) {
  auto it = groups_.find(group->name);
  if (it == groups_.end() || it->second != group) return;
  groups_.erase(it);
  runtime_.remove_group_dir(group->name);
  spdlog::info("event=group.removed group={} host_pid={} reason={}", group->name, group->host_pid, log_quote(why));
  if (group->announced) {
    auto event = group_event(proto::event::kGroupDestroy, *group);
    event.reason = why;
    events_.publish(std::move(event));
  }
}

}  // namespace pat::patd
