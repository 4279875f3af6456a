// bench_arena_alloc: what a pat::Buffer costs to make and drop, through the
// whole path (Boost rbtree_best_fit under the robust lock, the holder set,
// the reference count), in one thread and in two threads standing in for two
// members, against glibc malloc/free of the same sizes. docs/dataplane.md
// quotes it for the choice of allocator.
#include "libpat/src/arena.h"
#include "pat/host/arena_host.h"
#include "libpat/src/member_table.h"
#include "libpat/src/process_session.h"
#include "pat/pat.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

using namespace pat::dataplane;

namespace {

using Clock = std::chrono::steady_clock;

// ns per allocate+free pair, `threads` at once, each as its own member.
template <class Pair>
double ns_per_pair(int threads, int pairs, Pair pair) {
  std::vector<std::thread> running;
  auto start = Clock::now();
  for (int t = 0; t < threads; ++t) running.emplace_back([&, t] { pair(t, pairs); });
  for (auto& thread : running) thread.join();
  return std::chrono::duration<double, std::nano>(Clock::now() - start).count() / pairs;
}

}  // namespace

int main() {
  auto host = ArenaHost::create("bench", [](std::uint64_t) {}, std::size_t{4} << 30);
  std::vector<std::unique_ptr<MemberSession>> members;
  for (int i = 0; i < 2; ++i) {
    pid_t pid = (1 << 30) + i;
    host->member_started(pid, {"bench"});
    auto slot = MemberTable(host->arena()).find_alive(pid);
    members.push_back(std::make_unique<MemberSession>(host->arena(), *slot, pid, [](std::uint64_t) {}));
  }
  constexpr int kPairs = 200'000;
  std::printf("%-10s %8s  %22s  %22s\n", "size", "threads", "pat::Buffer ns/pair", "malloc+free ns/pair");
  for (std::size_t size : {std::size_t{64}, std::size_t{4096}, std::size_t{65536}, std::size_t{1} << 20}) {
    for (int threads : {1, 2}) {
      int pairs = size >= (1 << 20) ? kPairs / 10 : kPairs;
      double pat = ns_per_pair(threads, pairs, [&](int t, int n) {
        ThreadMemberOverride as(*members[t]);
        for (int i = 0; i < n; ++i) {
          auto buffer = pat::Buffer::allocate(size, pat::Buffer::Fill::Uninitialized);
          buffer.data()[0] = std::byte{1};
        }
      });
      double glibc = ns_per_pair(threads, pairs, [&](int, int n) {
        for (int i = 0; i < n; ++i) {
          auto* block = static_cast<volatile char*>(std::malloc(size));
          block[0] = 1;
          std::free(const_cast<char*>(block));
        }
      });
      std::printf("%-10zu %8d  %22.0f  %22.0f\n", size, threads, pat, glibc);
    }
  }
}
