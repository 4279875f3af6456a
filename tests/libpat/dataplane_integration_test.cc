// The data plane through the real patd and pat-host: member programs linked
// with libpat.so (programs/), each run as a separate member with patctl, so
// that members really end — exit, SIGKILL — between the steps of a buffer's
// life, and the host really cleans up after them.
#include "tests/support/patd_instance.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <csignal>
#include <map>
#include <set>
#include <sstream>

using namespace pat::testing;
using nlohmann::json;

namespace {

const std::string kPrograms = LIBPAT_PROGRAMS_DIR;
const std::string kRelay = kPrograms + "/buffer_relay";
const std::string kStress = kPrograms + "/channel_stress";
constexpr long long kMiB = 1 << 20;

json memory_of(const PatdInstance& patd, const std::string& group) {
  return patd.patctl_json({"group", "show", group}).at("memory");
}

json arena_of(const PatdInstance& patd, const std::string& group) { return memory_of(patd, group).at("arena"); }

// A member run in the background through `patctl run`, its stdout and
// stderr in files.
class BackgroundMember {
 public:
  BackgroundMember(const PatdInstance& patd, const std::string& group, const std::vector<std::string>& command,
                   const std::string& label)
      : out_(patd.dir().path() + "/" + label + ".out"), err_(patd.dir().path() + "/" + label + ".err") {
    std::vector<std::string> argv = {patctl_binary(), "--socket", patd.socket(), "run", "-g", group, "--"};
    argv.insert(argv.end(), command.begin(), command.end());
    process_ = std::make_unique<Background>(argv, out_, err_);
  }
  // The member's exit status (through patctl), or nullopt on timeout.
  std::optional<int> wait(std::chrono::milliseconds timeout = std::chrono::milliseconds(120'000)) {
    return process_->wait(timeout);
  }
  std::string out() const { return read_file(out_); }
  std::string err() const { return read_file(err_); }

 private:
  std::string out_, err_;
  std::unique_ptr<Background> process_;
};

// What a channel_stress consumer printed: the (producer, sequence) pairs it
// received, and whether it reported damage.
struct Consumed {
  std::vector<std::pair<int, int>> stamps;
  bool closed_cleanly = false;
};

Consumed parse_consumer(const std::string& out) {
  Consumed consumed;
  std::istringstream lines(out);
  std::string word;
  while (lines >> word) {
    if (word == "got") {
      int producer = -1, sequence = -1;
      lines >> producer >> sequence;
      consumed.stamps.emplace_back(producer, sequence);
    } else if (word == "closed") {
      std::string received, damaged;
      lines >> received >> damaged;
      consumed.closed_cleanly = received == "received=" + std::to_string(consumed.stamps.size()) && damaged == "damaged=0";
    }
  }
  return consumed;
}

// The pid a member printed as "... pid=N" is not known here; members are
// found through the group instead.
std::vector<long> member_pids(const PatdInstance& patd, const std::string& group) {
  std::vector<long> pids;
  auto shown = patd.patctl_json({"group", "show", group});
  for (const auto& member : shown["members"]) pids.push_back(member["pid"].get<long>());
  return pids;
}

}  // namespace

TEST_CASE("channel stress across members: 4 producers and 4 consumers, every message accounted for") {
  constexpr int kProducers = 4, kConsumers = 4, kPerProducer = 2500;
  PatdInstance patd;
  REQUIRE(patd.patctl({"group", "create", "stress"}).exit_code == 0);
  std::vector<std::unique_ptr<BackgroundMember>> consumers, producers;
  BackgroundMember coordinator(patd, "stress", {kStress, "coordinate", "jobs", "4", "4"}, "coordinator");
  for (int c = 0; c < kConsumers; ++c) {
    consumers.push_back(std::make_unique<BackgroundMember>(patd, "stress", std::vector<std::string>{kStress, "consume", "jobs"},
                                                           "consumer" + std::to_string(c)));
  }
  for (int p = 0; p < kProducers; ++p) {
    producers.push_back(std::make_unique<BackgroundMember>(
        patd, "stress", std::vector<std::string>{kStress, "produce", "jobs", std::to_string(p), std::to_string(kPerProducer)},
        "producer" + std::to_string(p)));
  }
  for (auto& producer : producers) {
    INFO(producer->err());
    CHECK(producer->wait() == 0);
  }
  INFO(coordinator.err());
  CHECK(coordinator.wait() == 0);
  std::set<std::pair<int, int>> seen;
  std::size_t total = 0;
  for (auto& consumer : consumers) {
    INFO(consumer->err());
    REQUIRE(consumer->wait() == 0);
    Consumed consumed = parse_consumer(consumer->out());
    CHECK(consumed.closed_cleanly);
    seen.insert(consumed.stamps.begin(), consumed.stamps.end());
    total += consumed.stamps.size();
    MESSAGE("a consumer received " << consumed.stamps.size());
  }
  CHECK(total == std::size_t{kProducers} * kPerProducer);
  CHECK(seen.size() == std::size_t{kProducers} * kPerProducer);
  CHECK(eventually([&] {
    auto arena = arena_of(patd, "stress");
    return arena["buffers"] == 0 && arena["channels"] == 0 && arena["members_ending"] == 0;
  }));
}

TEST_CASE("a consumer member killed mid-stream: the others get every message it did not take, nothing leaks") {
  constexpr int kProducers = 2, kPerProducer = 1500;
  PatdInstance patd;
  REQUIRE(patd.patctl({"group", "create", "victim"}).exit_code == 0);
  BackgroundMember coordinator(patd, "victim", {kStress, "coordinate", "jobs", "2", "3"}, "coordinator");
  std::vector<std::unique_ptr<BackgroundMember>> consumers;
  for (int c = 0; c < 3; ++c) {
    consumers.push_back(std::make_unique<BackgroundMember>(
        patd, "victim", std::vector<std::string>{kStress, "consume", "jobs"}, "consumer" + std::to_string(c)));
  }
  std::vector<std::unique_ptr<BackgroundMember>> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.push_back(std::make_unique<BackgroundMember>(
        patd, "victim",
        std::vector<std::string>{kStress, "produce", "jobs", std::to_string(p), std::to_string(kPerProducer), "300"},
        "producer" + std::to_string(p)));
  }
  // The victim: the first consumer, once it has received a hundred messages.
  REQUIRE(eventually([&] { return parse_consumer(consumers[0]->out()).stamps.size() >= 100; }));
  long victim = 0;
  auto shown = patd.patctl_json({"group", "show", "victim"});  // kept: iterating a temporary's member dangles
  for (const auto& member : shown["members"]) {
    if (member["argv"].size() == 3 && member["argv"][1] == "consume" && victim == 0) victim = member["pid"].get<long>();
  }
  // Which consumer member is consumers[0] is not known; any one will do:
  // all three print what they received, and the dead one's lines stop.
  REQUIRE(victim != 0);
  REQUIRE(::kill(static_cast<pid_t>(victim), SIGKILL) == 0);
  for (auto& producer : producers) {
    INFO(producer->err());
    CHECK(producer->wait() == 0);
  }
  CHECK(coordinator.wait() == 0);
  std::map<std::pair<int, int>, int> times_seen;
  int killed = 0;
  for (auto& consumer : consumers) {
    auto status = consumer->wait();
    Consumed consumed = parse_consumer(consumer->out());
    if (status == 128 + SIGKILL) {
      killed++;
    } else {
      INFO(consumer->err());
      CHECK(status == 0);
      CHECK(consumed.closed_cleanly);
    }
    for (const auto& stamp : consumed.stamps) times_seen[stamp]++;
    MESSAGE(std::string(status == 128 + SIGKILL ? "killed" : "surviving") << " consumer received " << consumed.stamps.size());
  }
  CHECK(killed == 1);
  // The victim may have taken one message it had no time to print.
  std::size_t expected = std::size_t{kProducers} * kPerProducer;
  CHECK(times_seen.size() >= expected - 1);
  CHECK(times_seen.size() <= expected);
  for (const auto& [stamp, times] : times_seen) CHECK(times == 1);
  CHECK(eventually([&] {
    auto arena = arena_of(patd, "victim");
    return arena["buffers"] == 0 && arena["channels"] == 0 && arena["members_ending"] == 0;
  }));
}

TEST_CASE("a buffer stays valid after the member that made and sent it has exited") {
  PatdInstance patd;
  REQUIRE(patd.patctl({"group", "create", "relay"}).exit_code == 0);
  // The channel must outlive the sender: a receiver is attached first... or
  // not at all, since a channel with messages waits for one.
  auto sent = patd.patctl({"run", "-g", "relay", "--", kRelay, "send", "parcel", "3000000", "7"});
  INFO(sent.err);
  REQUIRE(sent.exit_code == 0);
  CHECK(sent.out.find("zero_copy=0") != std::string::npos);
  CHECK(arena_of(patd, "relay")["buffers"] == 1);  // held by the queued message only
  auto received = patd.patctl({"run", "-g", "relay", "--", kRelay, "receive", "parcel", "3000000", "7"});
  INFO(received.err);
  CHECK(received.exit_code == 0);
  CHECK(received.out.rfind("ok zero_copy=0 sender=", 0) == 0);
  CHECK(eventually([&] { return arena_of(patd, "relay")["buffers"] == 0; }));
}

TEST_CASE("an external buffer: pinned pages of a member that exited stay readable, and are unmapped once released") {
  PatdInstance patd;
  REQUIRE(patd.patctl({"group", "create", "pinned"}).exit_code == 0);
  REQUIRE(patd.patctl({"run", "-g", "pinned", "/bin/true"}).exit_code == 0);  // warm the host up
  auto before = memory_of(patd, "pinned");
  auto shared = patd.patctl({"run", "-g", "pinned", "--", kRelay, "share", "zc", "16777216", "3"});
  INFO(shared.err);
  REQUIRE(shared.exit_code == 0);
  CHECK(shared.out.find("zero_copy=1") != std::string::npos);
  // The maker is gone; its 16 MiB stay mapped for the holder (the message).
  auto kept = memory_of(patd, "pinned");
  CHECK(kept["pinned_regions"] == 1);
  CHECK(kept["arena"]["buffers"] == 1);
  CHECK(kept["size_bytes"].get<long long>() >= before["size_bytes"].get<long long>() + 16 * kMiB);
  auto received = patd.patctl({"run", "-g", "pinned", "--", kRelay, "receive", "zc", "16777216", "3"});
  INFO(received.err);
  CHECK(received.exit_code == 0);
  CHECK(received.out.rfind("ok zero_copy=1 sender=", 0) == 0);
  // The receiver dropped the last reference: unpinned, and since its maker
  // is gone, unmapped.
  json after;
  CHECK(eventually([&] {
    after = memory_of(patd, "pinned");
    return after["pinned_regions"] == 0 && after["arena"]["buffers"] == 0;
  }));
  CHECK(after["size_bytes"].get<long long>() <= before["size_bytes"].get<long long>() + kMiB);
}

TEST_CASE("memory that cannot be pinned (brk heap) is copied, and the copy outlives its maker") {
  PatdInstance patd;
  REQUIRE(patd.patctl({"group", "create", "heap"}).exit_code == 0);
  auto shared = patd.patctl({"run", "-g", "heap", "--", kRelay, "share-heap", "copied", "9"});
  INFO(shared.err);
  REQUIRE(shared.exit_code == 0);
  CHECK(shared.out.find("zero_copy=0") != std::string::npos);
  CHECK(memory_of(patd, "heap")["pinned_regions"] == 0);
  auto received = patd.patctl({"run", "-g", "heap", "--", kRelay, "receive", "copied", "102400", "9"});
  INFO(received.err);
  CHECK(received.exit_code == 0);
}

TEST_CASE("a receiver blocked on a channel whose only sender is killed gets PeerDied after its message") {
  PatdInstance patd;
  REQUIRE(patd.patctl({"group", "create", "peers"}).exit_code == 0);
  BackgroundMember waiter(patd, "peers", {kRelay, "wait-peer", "line"}, "waiter");
  REQUIRE(eventually([&] { return member_pids(patd, "peers").size() == 1; }));
  long waiter_pid = member_pids(patd, "peers").at(0);
  BackgroundMember sender(patd, "peers", {kRelay, "send-and-hang", "line"}, "sender");
  REQUIRE(eventually([&] { return waiter.out().find("message=hello") != std::string::npos; }));
  long sender_pid = 0;
  for (long pid : member_pids(patd, "peers")) {
    if (pid != waiter_pid) sender_pid = pid;
  }
  REQUIRE(sender_pid != 0);
  CHECK(waiter.wait(std::chrono::milliseconds(300)) == std::nullopt);  // still waiting: the sender lives
  REQUIRE(::kill(static_cast<pid_t>(sender_pid), SIGKILL) == 0);
  INFO(waiter.err());
  CHECK(waiter.wait(std::chrono::milliseconds(20'000)) == 0);
  CHECK(waiter.out() == "message=hello\nerror=peer died\n");
  CHECK(sender.wait(std::chrono::milliseconds(20'000)) == 128 + SIGKILL);
}

TEST_CASE("no RSS growth over 2,000 messages carrying 1 MiB buffers" * doctest::test_suite("accounting")) {
  PatdInstance patd;
  REQUIRE(patd.patctl({"group", "create", "rss"}).exit_code == 0);
  // A fresh 1 MiB buffer per message, every page written, through a channel
  // of 4 messages: at most about 6 MiB are live at once.
  int runs = 0;
  auto run_pair = [&](int count) {
    BackgroundMember drain(patd, "rss", {kRelay, "drain", "bulk"}, "drain" + std::to_string(++runs));
    REQUIRE(eventually([&] { return member_pids(patd, "rss").size() == 1; }));
    auto flood = patd.patctl({"run", "-g", "rss", "--", kRelay, "flood", "bulk", std::to_string(count), "1048576"});
    INFO(flood.err);
    REQUIRE(flood.exit_code == 0);
    INFO(drain.err());
    REQUIRE(drain.wait() == 0);
    CHECK(drain.out() == "drained " + std::to_string(count) + " damaged 0\n");
  };
  REQUIRE(patd.patctl({"run", "-g", "rss", "--", kRelay, "in-group"}).exit_code == 0);
  long long idle = memory_of(patd, "rss")["rss_bytes"].get<long long>();
  run_pair(2000);
  auto first = memory_of(patd, "rss");
  run_pair(2000);
  auto second = memory_of(patd, "rss");
  long long rss_first = first["rss_bytes"].get<long long>(), rss_second = second["rss_bytes"].get<long long>();
  MESSAGE("group RSS idle: " << idle / 1024 << " KiB, after 2,000 messages of 1 MiB: " << rss_first / 1024
                             << " KiB, after 2,000 more: " << rss_second / 1024 << " KiB; arena retained free "
                             << second["arena"]["retained_free_bytes"] << " B");
  CHECK(rss_second <= rss_first + 2 * kMiB);
  CHECK(rss_first <= idle + 16 * kMiB);  // 2,000 MiB went through; a few MiB stayed
  CHECK(second["arena"]["buffers"] == 0);
}

TEST_CASE("members see the group and each other; a process outside is told why it is not a member") {
  PatdInstance patd;
  REQUIRE(patd.patctl({"group", "create", "seen"}).exit_code == 0);
  auto listed = patd.patctl({"run", "-g", "seen", "--", kRelay, "members", "extra-arg"});
  INFO(listed.err);
  REQUIRE(listed.exit_code == 0);
  CHECK(listed.out.rfind("group=seen\nmember pid=", 0) == 0);
  CHECK(listed.out.find(" " + kRelay + " members extra-arg\n") != std::string::npos);

  auto plain = run({kRelay, "in-group"}, RunOptions{.env_removed = {"PAT_ARENA"}});
  CHECK(plain.out == "0: pat_in_group: not in a pat group: PAT_ARENA is not set (start the program with patctl run)\n");
  auto stale = run({kRelay, "in-group"}, RunOptions{.env_overrides = {{"PAT_ARENA", "0x7f0000000000:0x1000000000"}}});
  CHECK(stale.out.find("0: pat_in_group: not in a pat group: no pat host answers this process") == 0);
}

TEST_CASE("members cannot map over, unmap or mprotect the group's arena") {
  PatdInstance patd;
  REQUIRE(patd.patctl({"group", "create", "guarded"}).exit_code == 0);
  auto env = patd.patctl({"run", "-g", "guarded", "/usr/bin/env"});
  auto at = env.out.find("PAT_ARENA=0x");
  REQUIRE(at != std::string::npos);
  std::string address = env.out.substr(at + 10, env.out.find(':', at) - at - 10);
  auto clobber = patd.patctl({"run", "-g", "guarded", MAP_PROBE, "clobber", address});
  INFO(clobber.err);
  CHECK(clobber.out == "mmap=" + std::to_string(ENOMEM) + " munmap=" + std::to_string(EINVAL) +
                           " mprotect=" + std::to_string(ENOMEM) + "\n");
  CHECK(patd.log().find("event=mapping.refused group=guarded") != std::string::npos);
  CHECK(patd.log().find("other_kind=group-arena") != std::string::npos);
  // The arena is intact: members still use it.
  auto listed = patd.patctl({"run", "-g", "guarded", "--", kRelay, "members"});
  CHECK(listed.exit_code == 0);
  CHECK(listed.out.rfind("group=guarded\n", 0) == 0);
}

TEST_CASE("libpat loaded twice in one member: the second copy refuses, the first keeps working") {
  PatdInstance patd;
  REQUIRE(patd.patctl({"group", "create", "twice"}).exit_code == 0);
  auto both = patd.patctl({"run", "-g", "twice", "--", kPrograms + "/double_load", LIBPAT_SHARED});
  INFO(both.err);
  CHECK(both.exit_code == 0);
  CHECK(both.out == "first=1\nsecond=0: pat_in_group: libpat is loaded twice in this process (for example libpat.so "
                    "beside the pat Python package's own copy): only the first copy may use the group's data plane\n"
                    "first still works=1\n");
}
