// Memory ownership through the real patd: a group behaves like a set of
// ordinary processes that come and go. Whatever a member maps is given back
// when it exits, is killed or execs out; members cannot clobber each other;
// /proc/self/exe and $ORIGIN name the member's own program.
#include "tests/support/patd_instance.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>

using namespace pat::testing;
using nlohmann::json;

namespace {

const std::string kPrograms = INTEGRATION_PROGRAMS_DIR;
std::string pat_python() { return bin_dir() + "/pat-python"; }

struct GroupMemory {
  long long rss = 0;   // bytes
  long long size = 0;  // bytes mapped in the whole address space
};

GroupMemory memory_of(const PatdInstance& patd, const std::string& group) {
  auto shown = patd.patctl_json({"group", "show", group});
  const auto& memory = shown.at("memory");
  return {memory.at("rss_bytes").get<long long>(), memory.at("size_bytes").get<long long>()};
}

// (The shown group is kept in a variable: a range-for over a member of a
// temporary would iterate a destroyed object.)
json member(const PatdInstance& patd, const std::string& group, long pid) {
  auto shown = patd.patctl_json({"group", "show", group});
  for (const auto& entry : shown["members"]) {
    if (entry["pid"] == pid) return entry;
  }
  return json();
}

bool exited(const PatdInstance& patd, const std::string& group, long pid) {
  auto shown = patd.patctl_json({"group", "show", group});
  for (const auto& entry : shown["recent_exits"]) {
    if (entry["pid"] == pid) return true;
  }
  return false;
}

constexpr long long kMiB = 1 << 20;

}  // namespace

TEST_CASE("50 sequential numpy members leave the group's RSS and mapped size where the first left them") {
  PatdInstance patd;
  REQUIRE(patd.patctl({"group", "create", "churn"}).exit_code == 0);
  const std::string script = "import numpy; x = bytearray(64 << 20); x[::4096] = b'x' * len(x[::4096])";
  auto first = patd.patctl({"run", "-g", "churn", "--", pat_python(), "-c", script});
  INFO(first.err);
  REQUIRE(first.exit_code == 0);
  GroupMemory after_first = memory_of(patd, "churn");
  for (int i = 1; i < 50; ++i) {
    auto result = patd.patctl({"run", "-g", "churn", "--", pat_python(), "-c", script});
    REQUIRE(result.exit_code == 0);
  }
  GroupMemory after_last = memory_of(patd, "churn");
  MESSAGE("group RSS after the first: " << after_first.rss / 1024 << " KiB, after the 50th: " << after_last.rss / 1024
                                        << " KiB; mapped " << after_first.size / 1024 << " -> "
                                        << after_last.size / 1024 << " KiB");
  CHECK(after_last.rss <= after_first.rss + 4 * kMiB);
  CHECK(after_last.size <= after_first.size + 4 * kMiB);
  // And each member really did use 64 MiB while it ran (the check can fail).
  CHECK(after_first.rss < 64 * kMiB);
}

TEST_CASE("a member whose threads map and leak memory is fully reclaimed") {
  PatdInstance patd;
  REQUIRE(patd.patctl({"group", "create", "threads"}).exit_code == 0);
  REQUIRE(patd.patctl({"run", "-g", "threads", "/bin/true"}).exit_code == 0);  // warm the host up
  GroupMemory before = memory_of(patd, "threads");
  auto result = patd.patctl({"run", "-g", "threads", kPrograms + "/map_probe", "threads", "8", "16"});
  INFO(result.err);
  REQUIRE(result.exit_code == 0);
  CHECK(result.out == "done\n");
  GroupMemory after = memory_of(patd, "threads");
  CHECK(after.size <= before.size + kMiB);
  CHECK(after.rss <= before.rss + kMiB);
}

TEST_CASE("a member killed with SIGKILL is fully reclaimed") {
  PatdInstance patd;
  REQUIRE(patd.patctl({"group", "create", "killed"}).exit_code == 0);
  REQUIRE(patd.patctl({"run", "-g", "killed", "/bin/true"}).exit_code == 0);
  GroupMemory before = memory_of(patd, "killed");
  long pid = patd.run_detached("killed",
                          {pat_python(), "-c", "import time; x = bytearray(96 << 20); x[::4096] = b'k' * len(x[::4096]); "
                                               "time.sleep(120)"});
  bool grown = eventually([&] {
    auto entry = member(patd, "killed", pid);
    return !entry.is_null() && entry.value("resident_bytes", 0LL) >= 96 * kMiB;
  });
  REQUIRE(grown);
  CHECK(memory_of(patd, "killed").rss >= before.rss + 90 * kMiB);
  REQUIRE(::kill(static_cast<pid_t>(pid), SIGKILL) == 0);
  REQUIRE(eventually([&] { return exited(patd, "killed", pid); }));
  GroupMemory after = memory_of(patd, "killed");
  CHECK(after.size <= before.size + kMiB);
  CHECK(after.rss <= before.rss + kMiB);
}

TEST_CASE("a member that execs out is fully reclaimed while the new program runs") {
  PatdInstance patd;
  REQUIRE(patd.patctl({"group", "create", "execer"}).exit_code == 0);
  REQUIRE(patd.patctl({"run", "-g", "execer", "/bin/true"}).exit_code == 0);
  GroupMemory before = memory_of(patd, "execer");
  long pid = patd.run_detached("execer",
                          {pat_python(), "-c", "import os; x = bytearray(64 << 20); x[::4096] = b'e' * len(x[::4096]); "
                                               "os.execv('/bin/sleep', ['sleep', '30'])"});
  REQUIRE(eventually([&] { return member(patd, "execer", pid).value("state", "") == "execed"; }));
  GroupMemory after = memory_of(patd, "execer");
  CHECK(after.size <= before.size + kMiB);
  CHECK(after.rss <= before.rss + kMiB);
  CHECK(::kill(static_cast<pid_t>(pid), 0) == 0);  // sleep still runs, outside the group
  ::kill(static_cast<pid_t>(pid), SIGKILL);
}

TEST_CASE("a member cannot map over, unmap or mprotect another member's memory") {
  PatdInstance patd;
  REQUIRE(patd.patctl({"group", "create", "guarded"}).exit_code == 0);
  std::string address_file = patd.dir().path() + "/held.addr";
  long holder = patd.run_detached("guarded", {kPrograms + "/map_probe", "hold", "30", address_file});
  REQUIRE(eventually([&] { return read_file(address_file).find('\n') != std::string::npos; }));
  std::string address = read_file(address_file);
  address.pop_back();

  auto clobber = patd.patctl({"run", "-g", "guarded", kPrograms + "/map_probe", "clobber", address});
  INFO(clobber.err);
  REQUIRE(clobber.exit_code == 0);
  CHECK(clobber.out == "mmap=" + std::to_string(ENOMEM) + " munmap=" + std::to_string(EINVAL) +
                           " mprotect=" + std::to_string(ENOMEM) + "\n");
  CHECK(eventually([&] {
    auto log = patd.log();
    return log.find("event=mapping.refused group=guarded") != std::string::npos &&
           log.find("other_pid=" + std::to_string(holder)) != std::string::npos;
  }));
  // The holder's memory is untouched: it checks its contents and exits 0.
  ::kill(static_cast<pid_t>(holder), SIGALRM);  // ends sleep(3) early
  REQUIRE(eventually([&] { return exited(patd, "guarded", holder); }));
  auto shown = patd.patctl_json({"group", "show", "guarded"});
  for (const auto& entry : shown["recent_exits"]) {
    if (entry["pid"] == holder) CHECK(entry.value("signal", 0) == SIGALRM);
  }
}

TEST_CASE("--allow-cross-mapping lets members map over each other") {
  PatdInstance patd;
  REQUIRE(patd.patctl({"group", "create", "open", "--allow-cross-mapping"}).exit_code == 0);
  std::string address_file = patd.dir().path() + "/held.addr";
  long holder = patd.run_detached("open", {kPrograms + "/map_probe", "hold", "30", address_file});
  REQUIRE(eventually([&] { return read_file(address_file).find('\n') != std::string::npos; }));
  std::string address = read_file(address_file);
  address.pop_back();
  auto clobber = patd.patctl({"run", "-g", "open", kPrograms + "/map_probe", "clobber", address});
  CHECK(clobber.out == "mmap=0 munmap=0 mprotect=0\n");
  ::kill(static_cast<pid_t>(holder), SIGKILL);
}

TEST_CASE("/proc/self/exe and $ORIGIN name the member's own program") {
  PatdInstance patd;
  REQUIRE(patd.patctl({"group", "create", "identity"}).exit_code == 0);
  auto readlink = patd.patctl({"run", "-g", "identity", "/bin/readlink", "/proc/self/exe"});
  REQUIRE(readlink.exit_code == 0);
  CHECK(readlink.out == std::filesystem::canonical("/bin/readlink").string() + "\n");

  auto origin = patd.patctl({"run", "-g", "identity", kPrograms + "/origin_main"});
  INFO(origin.err);
  CHECK(origin.exit_code == 0);
  CHECK(origin.out == "found through $ORIGIN\n");

  // pat-python runs as its non-PIC build (docs/pat-python.md), and
  // /proc/self/exe names the file that really runs; sys.executable stays
  // pat-python, also for a #! script, where AT_EXECFN names the script.
  const std::string builds_dir = PAT_PYTHON_NONPIC_BUILD
                                     ? std::filesystem::weakly_canonical(bin_dir() + "/../lib/pat").string()
                                     : std::filesystem::canonical(bin_dir()).string();
  const std::string probe = "import os, sys; print(os.path.dirname(os.readlink('/proc/self/exe'))); print(sys.executable)";
  auto python = patd.patctl({"run", "-g", "identity", "--", bin_dir() + "/pat-python", "-c", probe});
  CHECK(python.out == builds_dir + "\n" + bin_dir() + "/pat-python\n");

  char dir_template[] = "/tmp/pat-identity-XXXXXX";
  REQUIRE(::mkdtemp(dir_template) != nullptr);
  const std::string script = std::string(dir_template) + "/probe.py";
  std::ofstream(script) << "#!" << bin_dir() << "/pat-python\n" << probe << "\n";
  std::filesystem::permissions(script, std::filesystem::perms::owner_all);
  auto scripted = patd.patctl({"run", "-g", "identity", script});
  INFO(scripted.err);
  CHECK(scripted.out == builds_dir + "\n" + bin_dir() + "/pat-python\n");
  std::filesystem::remove_all(dir_template);
}

TEST_CASE("group show: each member's argv, CPU time, threads and memory; the group's RSS once") {
  PatdInstance patd;
  REQUIRE(patd.patctl({"group", "create", "shown"}).exit_code == 0);
  long pid = patd.run_detached(
      "shown",
      {pat_python(), "-c",
       "import threading, time\n"
       "x = bytearray(48 << 20); x[::4096] = b's' * len(x[::4096])\n"
       "[threading.Thread(target=time.sleep, args=(60,), daemon=True).start() for _ in range(3)]\n"
       // CPU time, not wall time: on a loaded machine 0.5 s of wall time
       // can be less than the 0.3 s of CPU time checked below.
       "while time.process_time() < 0.5: pass\n"
       "time.sleep(60)"});
  json entry;
  REQUIRE(eventually([&] {
    entry = member(patd, "shown", pid);
    return !entry.is_null() && entry.value("threads", 0) == 4 && entry.value("cpu_seconds", 0.0) >= 0.3;
  }));
  CHECK(entry["argv"][0] == pat_python());
  CHECK(entry["argv"][1] == "-c");
  CHECK(entry["resident_bytes"].get<long long>() >= 48 * kMiB);
  CHECK(entry["mapped_bytes"].get<long long>() >= entry["resident_bytes"].get<long long>());
  auto group = patd.patctl_json({"group", "show", "shown"});
  CHECK(group["memory"]["rss_bytes"].get<long long>() >= 48 * kMiB);
  CHECK(group["memory"].contains("pss_bytes"));
  ::kill(static_cast<pid_t>(pid), SIGKILL);
}
