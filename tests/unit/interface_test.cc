// The served varlink IDL (proto/interface.cc) against the C++ contract: what
// RunRequest, ExitStatus and the group object types write must be what the
// IDL declares, field by field, and everything the IDL declares must be
// something they write. A field added on one side only fails here.
#include "proto/daemon_event.h"
#include "proto/group_object.h"
#include "proto/idl.h"
#include "proto/interface.h"
#include "proto/run_request.h"
#include "proto/syscall_service.h"

#include <doctest/doctest.h>

#include <csignal>
#include <set>

using namespace pat::proto;
using nlohmann::json;

namespace {

const IdlSet& daemon_idl() {
  static const IdlSet set(daemon_interfaces());
  return set;
}
const IdlSet& host_idl() {
  static const IdlSet set(host_interfaces());
  return set;
}

const IdlMethod& idl_method(const IdlSet& set, std::string_view interface, std::string_view name) {
  const auto* found = set.find(interface);
  REQUIRE(found != nullptr);
  auto it = found->methods.find(name);
  REQUIRE(it != found->methods.end());
  return it->second;
}

const IdlFields& type(std::string_view name) {
  const auto* pat = daemon_idl().find("io.pat");
  REQUIRE(pat != nullptr);
  auto it = pat->types.find(name);
  REQUIRE(it != pat->types.end());
  return it->second;
}

std::set<std::string> names_of(const IdlFields& fields) {
  std::set<std::string> names;
  for (const auto& field : fields) names.insert(field.name);
  return names;
}

// Every sample fits `fields`, and together they use every declared field.
void check_samples(const IdlSet& set, const IdlFields& fields, std::string_view interface,
                   const std::vector<json>& samples) {
  std::set<std::string> written;
  for (const auto& sample : samples) {
    CAPTURE(sample.dump());
    auto problem = set.check_fields(sample, fields, interface);
    CHECK_MESSAGE(!problem, problem.value_or(""));
    for (const auto& [key, value] : sample.items()) written.insert(key);
  }
  CHECK(written == names_of(fields));
}

std::vector<RunRequest> run_requests() {
  RunRequest inline_in_group;
  inline_in_group.program = "/bin/echo";
  inline_in_group.arguments = {{"echo", "hi"}, {"A=1"}};
  inline_in_group.group.emplace(1, 'g');
  RunRequest in_fd_new_group = inline_in_group;
  in_fd_new_group.group.reset();
  in_fd_new_group.new_group = true;
  in_fd_new_group.arguments_in_fd = true;
  in_fd_new_group.cwd = "/tmp";
  in_fd_new_group.umask = 077;
  in_fd_new_group.rlimits = {{RLIMIT_NOFILE, {1024, 4096}}, {RLIMIT_STACK, {8 << 20, RLIM_INFINITY}}};
  in_fd_new_group.detach = true;
  in_fd_new_group.stopped = true;
  return {inline_in_group, in_fd_new_group};
}

// A dumped core the host completed, and one it could not.
CoreDump written_core() { return CoreDump{.file = "/tmp/core", .truncated = true, .error = std::nullopt}; }
CoreDump unwritten_core() {
  return CoreDump{.file = std::nullopt, .truncated = false, .error = "core_pattern is a pipe"};
}

MemberEntry member_entry(bool with_usage) {
  MemberEntry member;
  member.pid = 42;
  member.argv = {"sleep", "1"};
  member.program = "/usr/bin/sleep";
  member.state = "running";
  member.detached = true;
  member.started = 1.5;
  if (with_usage) {
    member.cpu_seconds = 0.25;
    member.threads = 3;
    member.mapped_bytes = 1 << 20;
    member.resident_bytes = 4096;
    member.process_state = "S";
    member.cwd = "/tmp";
  }
  return member;
}

std::vector<ExitEntry> exit_entries() {
  return {ExitEntry{.pid = 41, .argv = {"true"}, .program = "/usr/bin/true", .status = ExitStatus::exited(0),
                    .ended = 2.0, .duration_seconds = 0.01},
          ExitEntry{.pid = 40, .argv = {"sh"}, .program = "/usr/bin/dash", .status = ExitStatus::killed(SIGKILL),
                    .ended = 3.0, .duration_seconds = 1.0},
          ExitEntry{.pid = 39, .argv = {"./crash"}, .program = "/tmp/crash",
                    .status = ExitStatus::killed(SIGSEGV, written_core()),
                    .ended = 4.0, .duration_seconds = 0.5},
          ExitEntry{.pid = 38, .argv = {"./crash"}, .program = "/tmp/crash",
                    .status = ExitStatus::killed(SIGSEGV, unwritten_core()),
                    .ended = 5.0, .duration_seconds = 0.5}};
}

MemberEntry attached_entry() {
  MemberEntry member = member_entry(false);
  member.origin = "attached";
  member.original_pid = member.stub_pid = 4242;
  return member;
}

AttachEntry attach_entry() {
  return AttachEntry{.pid = 42, .original_pid = 4242, .stopped_seconds = 0.004, .total_seconds = 0.02,
                     .bytes_copied = 3 << 20, .bytes_copied_stopped = 4096, .threads = 2, .fds = 5};
}

GroupObject group_object(bool with_usage) {
  GroupObject group;
  // Moved in, not assigned from the literal: GCC 12 warns, wrongly, that
  // the copy may overlap (-Wrestrict, GCC bug 105329).
  group.name = std::string("g");
  group.owner_uid = group.owner_gid = 1000;
  group.host_pid = 7;
  group.created = 1.0;
  group.state = "running";
  group.allow_cross_mapping = true;
  group.members = {member_entry(with_usage), attached_entry()};
  group.recent_exits = exit_entries();
  if (with_usage) {
    group.memory.rss_bytes = 1;
    group.memory.pss_bytes = 2;
    group.memory.size_bytes = 3;
    group.memory.pinned_regions = 0;
    group.memory.arena = ArenaEntry{};
    group.stale_builds = {StaleBuildEntry{"/usr/lib/pat/pat-python-nonpic", "libpython changed", std::nullopt}};
  }
  return group;
}

}  // namespace

TEST_CASE("every interface patd and a host serve is well-formed IDL") {
  for (auto interfaces : {daemon_interfaces(), host_interfaces()}) {
    for (const auto& interface : interfaces) {
      CAPTURE(interface.name);
      auto parsed = parse_idl(interface.description);
      REQUIRE(std::holds_alternative<IdlInterface>(parsed));
      CHECK(std::get<IdlInterface>(parsed).name == interface.name);
    }
  }
}

TEST_CASE("the IDL checker itself: types, optionals, undeclared and missing fields") {
  auto parsed = parse_idl("interface t.x\ntype P (a: int, b: ?[]string, c: [string][]int)\n"
                          "method M(p: P) -> ()\n");
  REQUIRE(std::holds_alternative<IdlInterface>(parsed));
  std::array<InterfaceDescription, 1> one{InterfaceDescription{"t.x", "interface t.x\ntype P (a: int, b: ?[]string, "
                                                                       "c: [string][]int)\n"}};
  IdlSet set(one);
  CHECK_FALSE(set.check({{"a", 1}, {"c", {{"k", {1, 2}}}}}, "P", "t.x"));
  CHECK_FALSE(set.check({{"a", 1}, {"b", nullptr}, {"c", json::object()}}, "t.x.P", "t.x"));
  CHECK(set.check({{"a", 1}}, "P", "t.x") == "c: missing");
  CHECK(set.check({{"a", 1}, {"c", json::object()}, {"d", 0}}, "P", "t.x") == "d: not declared");
  CHECK(set.check({{"a", "1"}, {"c", json::object()}}, "P", "t.x") == "a: expected int");
  CHECK(set.check({{"a", 1}, {"b", {1}}, {"c", json::object()}}, "P", "t.x") == "b[0]: expected string");
}

TEST_CASE("io.pat.Member.Run and io.pat.Host.Spawn take exactly what RunRequest writes") {
  std::vector<json> run, spawn;
  for (const auto& request : run_requests()) {
    run.push_back(request.to_json());
    spawn.push_back(request.for_host().to_json());
  }
  check_samples(daemon_idl(), idl_method(daemon_idl(), "io.pat.Member", "Run").in, "io.pat.Member", run);
  check_samples(host_idl(), idl_method(host_idl(), "io.pat.Host", "Spawn").in, "io.pat.Host", spawn);
}

TEST_CASE("Run's and Spawn's replies carry the pid, then ExitStatus's one form") {
  json first = {{"pid", 42}, {"group", "g"}};
  json exited = first, killed = first, dumped = first, unwritten = first;
  ExitStatus::exited(3).write_json(exited);
  ExitStatus::killed(SIGTERM).write_json(killed);
  ExitStatus::killed(SIGSEGV, written_core()).write_json(dumped);
  ExitStatus::killed(SIGSEGV, unwritten_core()).write_json(unwritten);
  check_samples(daemon_idl(), idl_method(daemon_idl(), "io.pat.Member", "Run").out, "io.pat.Member",
                {first, exited, killed, dumped, unwritten});
  for (json* reply : {&first, &exited, &killed, &dumped, &unwritten}) reply->erase("group");
  check_samples(host_idl(), idl_method(host_idl(), "io.pat.Host", "Spawn").out, "io.pat.Host",
                {first, exited, killed, dumped, unwritten});
}

TEST_CASE("type Group, Member, Exit, Memory and Arena are what the group object types write") {
  json full = group_object(true).to_json(), summary = group_object(false).to_json();
  check_samples(daemon_idl(), type("Group"), "io.pat", {full, summary});
  check_samples(daemon_idl(), type("Member"), "io.pat", {full["members"][0], summary["members"][0], full["members"][1]});
  check_samples(daemon_idl(), type("Exit"), "io.pat", std::vector<json>(full["recent_exits"].begin(),
                                                                         full["recent_exits"].end()));
  check_samples(daemon_idl(), type("Memory"), "io.pat", {full["memory"], summary["memory"]});
  check_samples(daemon_idl(), type("Arena"), "io.pat", {full["memory"]["arena"]});
  CHECK(summary["memory"] == json::object());
  CHECK(summary["stale_builds"] == json::array());
}

TEST_CASE("io.pat.Daemon.Status lists StaleBuilds with their group; a group lists its own without") {
  StaleBuildEntry in_group{"/b", "changed", std::nullopt}, in_status{"/b", "changed", "g"};
  check_samples(daemon_idl(), type("StaleBuild"), "io.pat", {in_group.to_json(), in_status.to_json()});
  json status = {{"version", "1"},   {"pid", 1},           {"uptime_seconds", 0.5},
                 {"groups", 1},      {"connections", 0},   {"runtime_dir", "/run/patd"},
                 {"stale_builds", json::array({in_status.to_json()})}};
  check_samples(daemon_idl(), idl_method(daemon_idl(), "io.pat.Daemon", "Status").out, "io.pat.Daemon", {status});
}

TEST_CASE("a host's stale_builds must be well-formed for patd to take its description") {
  // As patd receives it: parsed from the wire (non-negative numbers unsigned).
  json group = json::parse(group_object(true).to_json().dump());
  CHECK_FALSE(check_group_object(group));
  group["stale_builds"] = json::array({{{"build", "/b"}}});
  CHECK(check_group_object(group) == "stale_builds entry without a build and reason");
  group["stale_builds"] = "x";
  CHECK(check_group_object(group) == "stale_builds is not an array");
  group.erase("stale_builds");
  CHECK_FALSE(check_group_object(group));
}

TEST_CASE("io.pat.Host.Watch streams the group, then MemberEvents") {
  json first = {{"group", group_object(false).to_json()}};
  json start = MemberEvent{"member.start", member_entry(false), std::nullopt, group_object(false), std::nullopt}.to_json();
  json exit = MemberEvent{"member.exit", member_entry(false), exit_entries()[1], group_object(false), std::nullopt}.to_json();
  json attach = MemberEvent{"member.attach", attached_entry(), std::nullopt, group_object(false), attach_entry()}.to_json();
  check_samples(host_idl(), idl_method(host_idl(), "io.pat.Host", "Watch").out, "io.pat.Host",
                {first, start, exit, attach});
}

SyscallService syscall_service() {
  return SyscallService{"mmap", 7, 4.5e-5, {5e-6, 1e-5, 1e-4}, {2, 6, 7}};
}

TEST_CASE("io.pat.Host.Describe: the group with usage and the SyscallServices") {
  json reply = {{"group", group_object(true).to_json()}, {"syscalls", json::array({syscall_service().to_json()})}};
  check_samples(host_idl(), idl_method(host_idl(), "io.pat.Host", "Describe").out, "io.pat.Host", {reply});
}

TEST_CASE("a host's SyscallService is taken only when well-formed") {
  json good = syscall_service().to_json();
  auto back = SyscallService::from_json(good);
  REQUIRE(back);
  CHECK(back->to_json() == good);
  auto broken = [&](const char* key, json value) {
    json entry = good;
    entry[key] = std::move(value);
    CAPTURE(entry.dump());
    CHECK_FALSE(SyscallService::from_json(entry));
  };
  broken("syscall", "mmap\"} 1\n");               // not a name: it becomes a label value
  broken("syscall", std::string(40, 'a'));
  broken("calls", -1);
  broken("calls", 1);                                // fewer than the buckets count
  broken("seconds", -1.0);
  broken("buckets", json::array({2, 6}));            // not one per bound
  broken("buckets", json::array({2, 1, 7}));         // not cumulative
  broken("buckets", json::array({2, -6, 7}));
  broken("le_seconds", json::array({5e-6, 5e-6, 1e-4}));  // not ascending
  broken("le_seconds", json::array({0, 1e-5, 1e-4}));
  broken("le_seconds", "x");
  CHECK_FALSE(SyscallService::from_json(json::array()));
}

TEST_CASE("io.pat.Group.Attach and io.pat.Host.Attach: pids in, type Attach and the group's env out") {
  check_samples(daemon_idl(), type("Attach"), "io.pat", {attach_entry().to_json()});
  json attached = json::array({attach_entry().to_json()});
  json env = json::array({"PAT_ARENA=0x200000000000:0x1000000000", "PAT_GROUP=g"});
  check_samples(daemon_idl(), idl_method(daemon_idl(), "io.pat.Group", "Attach").in, "io.pat.Group",
                {{{"name", "g"}, {"new_group", false}, {"pids", {4242, 4243}}}});
  check_samples(daemon_idl(), idl_method(daemon_idl(), "io.pat.Group", "Attach").out, "io.pat.Group",
                {{{"group", "g"}, {"attached", attached}, {"env", env}}});
  check_samples(host_idl(), idl_method(host_idl(), "io.pat.Host", "Attach").in, "io.pat.Host", {{{"pids", {4242}}}});
  check_samples(host_idl(), idl_method(host_idl(), "io.pat.Host", "Attach").out, "io.pat.Host",
                {{{"attached", attached}, {"env", env}}});
}

TEST_CASE("io.pat.Daemon.Events streams DaemonEvents, every field declared and written") {
  DaemonEvent created(event::kGroupCreate, "g", 1000);
  created.host_pid = 7;
  DaemonEvent exited(event::kMemberExit, "g", 1000);
  exited.member = member_entry(false).to_json();
  exited.exit = exit_entries()[0].to_json();
  DaemonEvent attached(event::kMemberAttach, "g", 1000);
  attached.member = attached_entry().to_json();
  attached.attach = attach_entry().to_json();
  DaemonEvent refused(event::kMemberRefused, "g", 1000);
  refused.program = "/nonexistent";
  refused.error = "io.pat.ProgramNotFound";
  refused.reason = "/nonexistent: No such file or directory";
  DaemonEvent died(event::kHostDied, "g", 1000);
  died.host_pid = 7;
  died.host_exit = ExitStatus::killed(SIGSEGV);
  DaemonEvent oom(event::kGroupOom, "g", 1000);
  oom.host_pid = 7;
  oom.members = 16;
  oom.victim_pid = 9;
  oom.reason = "Memory cgroup out of memory: Killed process 9 (python3)";
  DaemonEvent missed(event::kMissed);
  missed.missed = 12;
  std::vector<json> samples;
  for (const auto* sample : {&created, &exited, &attached, &refused, &died, &oom, &missed}) samples.push_back(sample->to_json());
  check_samples(daemon_idl(), idl_method(daemon_idl(), "io.pat.Daemon", "Events").out, "io.pat.Daemon", samples);
}

TEST_CASE("a host's member event becomes a DaemonEvent only when well-formed") {
  // Through text, as on the wire (patd's checks expect parsed numbers).
  json start = json::parse(
      MemberEvent{"member.start", member_entry(true), std::nullopt, group_object(false), std::nullopt}.to_json().dump());
  auto relayed = member_event_from_host("g", 1000, start);
  REQUIRE(relayed);
  CHECK(relayed->event == "member.start");
  CHECK(relayed->owner_uid == 1000u);
  CHECK_FALSE(relayed->member->contains("cpu_seconds"));  // usage belongs to Group.Show
  json attach = json::parse(
      MemberEvent{"member.attach", attached_entry(), std::nullopt, group_object(false), attach_entry()}.to_json().dump());
  auto relayed_attach = member_event_from_host("g", 1000, attach);
  REQUIRE(relayed_attach);
  REQUIRE(relayed_attach->attach);
  CHECK(*relayed_attach->attach == attach["attach"]);
  json invented = start;
  invented["event"] = "group.destroy";  // a host may not speak for patd
  CHECK_FALSE(member_event_from_host("g", 1000, invented));
  json bad_exit = json::parse(
      MemberEvent{"member.exit", member_entry(false), exit_entries()[0], group_object(false), std::nullopt}.to_json().dump());
  REQUIRE(member_event_from_host("g", 1000, bad_exit));
  bad_exit["exit"].erase("exit_code");
  CHECK_FALSE(member_event_from_host("g", 1000, bad_exit));
}
