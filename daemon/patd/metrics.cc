#include "daemon/patd/metrics.h"

#include "daemon/rpc/one_shot_event.h"
#include "proto/errors.h"
#include "proto/exit_status.h"

#include <sys/resource.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <vector>

namespace pat::patd {

using proto::json;
using Type = PrometheusText::Type;

namespace {

// The families, in the order the page lists them (docs/metrics.md).
struct Families {
  explicit Families(PrometheusText& out)
      : groups(out.declare("pat_groups", Type::Gauge, "Groups patd serves.")),
        group_members(out.declare("pat_group_members", Type::Gauge, "Members running in the group.")),
        group_resident(out.declare("pat_group_resident_bytes", Type::Gauge,
                                   "Resident memory of the group's address space, counted once.")),
        group_proportional(out.declare("pat_group_proportional_bytes", Type::Gauge,
                                       "Proportional set size of the group's address space, counted once.")),
        group_mapped(out.declare("pat_group_mapped_bytes", Type::Gauge, "Size of the group's address space.")),
        member_cpu(out.declare("pat_member_cpu_seconds_total", Type::Counter, "CPU time of the member's own threads.")),
        member_threads(out.declare("pat_member_threads", Type::Gauge, "Threads of the member.")),
        member_mapped(out.declare("pat_member_mapped_bytes", Type::Gauge,
                                  "Memory the member owns in the group's mapping ledger.")),
        member_resident(out.declare("pat_member_resident_bytes", Type::Gauge,
                                    "Resident part of the memory the member owns.")),
        rerouted(out.declare("pat_rerouted_syscalls_total", Type::Counter,
                             "Syscalls members made that the group's host answered, by syscall.")),
        rerouted_seconds(out.declare("pat_rerouted_syscall_duration_seconds", Type::Histogram,
                                     "Time the host took to answer a rerouted syscall, from taking it to answering.")),
        buffers(out.declare("pat_dataplane_buffers", Type::Gauge, "Live data-plane buffers of the group.")),
        buffer_bytes(out.declare("pat_dataplane_buffer_bytes", Type::Gauge,
                                 "Bytes held by the group's data-plane buffers.")),
        channels(out.declare("pat_dataplane_channels", Type::Gauge, "Named data-plane channels of the group.")),
        arena_bytes(out.declare("pat_dataplane_arena_bytes", Type::Gauge, "Size of the group's data-plane arena.")),
        starts(out.declare("pat_member_starts_total", Type::Counter, "Members that came in, by reason: run or attach.")),
        exits(out.declare("pat_member_exits_total", Type::Counter,
                          "Members that left, by reason: exit (with code), signal (with signal), exec.")),
        refusals(out.declare("pat_member_refusals_total", Type::Counter, "Runs a host refused, by error.")),
        ooms(out.declare("pat_group_oom_kills_total", Type::Counter, "Groups ended by the kernel's OOM killer.")),
        host_deaths(out.declare("pat_host_deaths_total", Type::Counter, "Group hosts that died without being asked to.")),
        host_errors(out.declare("pat_scrape_host_errors_total", Type::Counter,
                                "Hosts that did not describe themselves for a scrape.")),
        connections(out.declare("pat_daemon_connections", Type::Gauge, "Client connections to patd's control socket.")),
        requests(out.declare("pat_daemon_requests_total", Type::Counter,
                             "Calls patd answered, by method and error (empty: success).")),
        cpu(out.declare("process_cpu_seconds_total", Type::Counter, "CPU time of patd itself.")) {}

  std::size_t groups, group_members, group_resident, group_proportional, group_mapped, member_cpu, member_threads,
      member_mapped, member_resident, rerouted, rerouted_seconds, buffers, buffer_bytes, channels, arena_bytes,
      starts, exits, refusals, ooms, host_deaths, host_errors, connections, requests, cpu;
};

// The number at `key` of a host's (untrusted, but checked) object, if any.
std::optional<double> number(const json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_number()) return std::nullopt;
  return it->get<double>();
}

void sample_if(PrometheusText& out, std::size_t family, const Labels& labels, const json& object, const char* key) {
  if (auto value = number(object, key)) out.sample(family, labels, *value);
}

void add_members(PrometheusText& out, const Families& f, const std::string& group, const json& members) {
  for (const auto& member : members) {
    const std::string pid = std::to_string(member.value("pid", 0));
    const auto program_it = member.find("program");
    const std::string program = program_it != member.end() && program_it->is_string() ? program_it->get<std::string>() : "";
    Labels labels{{"group", group}, {"pid", pid}, {"program", program}};
    sample_if(out, f.member_cpu, labels, member, "cpu_seconds");
    sample_if(out, f.member_threads, labels, member, "threads");
    sample_if(out, f.member_mapped, labels, member, "mapped_bytes");
    sample_if(out, f.member_resident, labels, member, "resident_bytes");
  }
}

void add_memory(PrometheusText& out, const Families& f, const Labels& labels, const json& group) {
  auto memory = group.find("memory");
  if (memory == group.end() || !memory->is_object()) return;
  sample_if(out, f.group_resident, labels, *memory, "rss_bytes");
  sample_if(out, f.group_proportional, labels, *memory, "pss_bytes");
  sample_if(out, f.group_mapped, labels, *memory, "size_bytes");
  auto arena = memory->find("arena");
  if (arena == memory->end() || !arena->is_object()) return;
  sample_if(out, f.buffers, labels, *arena, "buffers");
  sample_if(out, f.buffer_bytes, labels, *arena, "buffer_bytes");
  sample_if(out, f.channels, labels, *arena, "channels");
  sample_if(out, f.arena_bytes, labels, *arena, "size_bytes");
}

void add_group(PrometheusText& out, const Families& f, const std::string& name, const HostDescription& description) {
  const Labels labels{{"group", name}};
  const json& members = description.group.at("members");  // check_group_object: an array
  out.sample(f.group_members, labels, static_cast<double>(members.size()));
  add_members(out, f, name, members);
  add_memory(out, f, labels, description.group);
  for (const auto& service : description.syscalls) {
    Labels by_syscall = labels.with("syscall", service.syscall);
    out.sample(f.rerouted, by_syscall, static_cast<double>(service.calls));
    out.histogram(f.rerouted_seconds, by_syscall, service.le_seconds, service.buckets, service.calls, service.seconds);
  }
}

void add_counters(PrometheusText& out, std::size_t family, const std::map<Labels, std::uint64_t>& values) {
  for (const auto& [labels, value] : values) out.sample(family, labels, static_cast<double>(value));
}

double own_cpu_seconds() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// An error name as a label value: one of the public vocabulary's, or
// "other", so that no caller or host can mint label values.
std::string error_label(const std::optional<std::string>& name) {
  if (!name) return "other";
  return proto::error_code_from_name(*name) ? *name : "other";
}

// The descriptions of the running groups' hosts, asked for by
// kDescribers coroutines, each taking the next group when its host has
// answered: a scrape takes about the sum of the hosts' times divided by
// kDescribers. Not all at once: each host measures its members' memory
// for the answer, and 64 hosts doing so together would fill every CPU's
// run queue, delaying patd itself (and its control calls) behind them.
constexpr std::size_t kDescribers = 4;

struct Descriptions {
  Descriptions(asio::any_io_executor executor, std::vector<std::shared_ptr<Group>> groups)
      : groups(std::move(groups)), results(this->groups.size()), done(std::move(executor)) {}
  std::vector<std::shared_ptr<Group>> groups;
  std::vector<std::optional<HostDescription>> results;  // nullopt: the host did not answer
  std::size_t next = 0;
  std::size_t describers = 0;
  rpc::OneShotEvent done;
};

asio::awaitable<void> describe_some(std::shared_ptr<Descriptions> all) {
  while (all->next < all->groups.size()) {
    const std::size_t slot = all->next++;
    try {
      all->results[slot] = co_await all->groups[slot]->link.describe();
    } catch (const std::exception&) {
      // GroupUnavailable and the like: results[slot] stays empty.
    }
  }
  if (--all->describers == 0) all->done.set();
}

std::string write_page(const DaemonMetrics::PageInputs& in) {
  PrometheusText out;
  const Families f(out);
  out.sample(f.groups, {}, static_cast<double>(in.groups));
  for (const auto& [name, description] : in.described) add_group(out, f, name, description);
  add_counters(out, f.starts, in.starts);
  add_counters(out, f.exits, in.exits);
  add_counters(out, f.refusals, in.refusals);
  out.sample(f.ooms, {}, static_cast<double>(in.ooms));
  out.sample(f.host_deaths, {}, static_cast<double>(in.host_deaths));
  out.sample(f.host_errors, {}, static_cast<double>(in.host_errors));
  out.sample(f.connections, {}, static_cast<double>(in.connections));
  for (const auto& [key, value] : in.requests) {
    out.sample(f.requests, Labels{{"method", key.first}, {"error", key.second}}, static_cast<double>(value));
  }
  out.sample(f.cpu, {}, own_cpu_seconds());
  return out.render();
}

}  // namespace

DaemonMetrics::DaemonMetrics(GroupRegistry& registry, EventBus& events, const rpc::Service& service,
                             const rpc::UnixServer& server)
    : registry_(registry), service_(service), server_(server) {
  events.observe([this](const proto::DaemonEvent& event) { count(event); });
}

void DaemonMetrics::count(const proto::DaemonEvent& event) {
  namespace kind = proto::event;
  if (event.event == kind::kMemberStart) {
    ++starts_[Labels{{"reason", "run"}}];
  } else if (event.event == kind::kMemberAttach) {
    ++starts_[Labels{{"reason", "attach"}}];
  } else if (event.event == kind::kMemberExec) {
    ++exits_[Labels{{"reason", "exec"}}];
  } else if (event.event == kind::kMemberExit && event.exit) {
    auto status = proto::ExitStatus::from_json(*event.exit);
    if (!status) return;
    if (status->is_exit()) {
      ++exits_[Labels{{"reason", "exit"}, {"code", std::to_string(status->exit_code())}}];
    } else {
      const char* abbrev = ::sigabbrev_np(status->signal());
      std::string signal = abbrev ? std::string("SIG") + abbrev : std::to_string(status->signal());
      ++exits_[Labels{{"reason", "signal"}, {"signal", signal}}];
    }
  } else if (event.event == kind::kMemberRefused) {
    ++refusals_[Labels{{"error", error_label(event.error)}}];
  } else if (event.event == kind::kGroupOom) {
    ++ooms_;
  } else if (event.event == kind::kHostDied) {
    ++host_deaths_;
  }
}

asio::awaitable<std::string> DaemonMetrics::scrape() {
  std::vector<std::shared_ptr<Group>> running;
  for (auto& group : registry_.all()) {
    if (group->state == Group::State::Running) running.push_back(std::move(group));
  }
  auto executor = co_await asio::this_coro::executor;
  auto descriptions = std::make_shared<Descriptions>(executor, running);
  descriptions->describers = std::min(kDescribers, running.size());
  for (std::size_t i = 0; i < descriptions->describers; ++i) {
    asio::co_spawn(executor, describe_some(descriptions), asio::detached);
  }
  if (!running.empty()) co_await descriptions->done.wait(std::nullopt);

  PageInputs inputs;
  inputs.groups = registry_.size();
  for (std::size_t i = 0; i < running.size(); ++i) {
    if (descriptions->results[i]) {
      inputs.described.emplace_back(running[i]->name, std::move(*descriptions->results[i]));
    } else {
      ++host_errors_;
    }
  }
  inputs.starts = starts_;
  inputs.exits = exits_;
  inputs.refusals = refusals_;
  inputs.ooms = ooms_;
  inputs.host_deaths = host_deaths_;
  inputs.host_errors = host_errors_;
  inputs.connections = server_.connections();
  inputs.requests = service_.request_counts();
  co_return co_await written_off_loop(inputs);
}

asio::awaitable<std::string> DaemonMetrics::written_off_loop(const PageInputs& inputs) {
  auto loop = co_await asio::this_coro::executor;
  rpc::OneShotEvent written(loop);
  std::string page;
  // The lambdas hold references into this frame, which waits for `written`
  // (see rpc/asio.h on what lambdas in coroutines may capture).
  asio::post(writer_, [&page, &inputs, &loop, &written] {
    page = write_page(inputs);
    asio::post(loop, [&written] { written.set(); });  // OneShotEvent is the loop's
  });
  co_await written.wait(std::nullopt);
  co_return page;
}

}  // namespace pat::patd
