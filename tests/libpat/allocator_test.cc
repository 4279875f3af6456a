// The arena's heap: Boost's rbtree_best_fit behind a robust lock, and the
// retained-free budget that decides which freed memory goes back to the
// kernel.
#include "libpat/src/block_allocator.h"
#include "tests/libpat/test_group.h"

#include <doctest/doctest.h>
#include <sys/mman.h>

#include <cstring>
#include <thread>

using namespace pat::dataplane;
using pat::testing::AsMember;
using pat::testing::TestGroup;

namespace {

// Resident pages in [start, start + bytes) (mincore(2)).
std::size_t resident_pages(const void* start, std::size_t bytes) {
  auto begin = reinterpret_cast<std::uintptr_t>(start) & ~(kPageSize - 1);
  auto end = reinterpret_cast<std::uintptr_t>(start) + bytes;
  std::vector<unsigned char> residency((end - begin + kPageSize - 1) / kPageSize);
  REQUIRE(::mincore(reinterpret_cast<void*>(begin), end - begin, residency.data()) == 0);
  std::size_t pages = 0;
  for (unsigned char r : residency) pages += r & 1;
  return pages;
}

}  // namespace

TEST_CASE("buffers are zero-filled (unless asked not to be), 64-byte aligned, and freed with their last reference") {
  TestGroup group;
  AsMember as(group.start());
  for (std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{4096}, std::size_t{3} << 20}) {
    auto buffer = pat::Buffer::allocate(size);
    CHECK(buffer.size() == size);
    CHECK(reinterpret_cast<std::uintptr_t>(buffer.data()) % 64 == 0);
    CHECK(group.arena().contains(buffer.data(), size));
    bool zero = true;
    for (std::byte b : buffer.bytes()) zero = zero && b == std::byte{0};
    CHECK(zero);
    std::memset(buffer.data(), 0xab, size);  // dirty for the next round, which must still see zeros
  }
  CHECK(group.stats().buffers == 0);
  auto kept = pat::Buffer::allocate(100, pat::Buffer::Fill::Uninitialized);
  CHECK(group.stats().buffers == 1);
  CHECK(group.stats().buffer_bytes == 100);
}

TEST_CASE("a buffer larger than the free heap is refused with OutOfMemory, and the heap stays usable") {
  TestGroup group;
  AsMember as(group.start());
  try {
    pat::Buffer::allocate(group.arena().size());
    FAIL("allocated more than the arena");
  } catch (const pat::Error& error) {
    CHECK(error.code() == pat::Errc::OutOfMemory);
    CHECK(std::string(error.what()).find("MiB free") != std::string::npos);
  }
  CHECK(pat::Buffer::allocate(1 << 20).size() == 1 << 20);
}

TEST_CASE("freed blocks stay resident up to the retained budget; beyond it their pages go back to the kernel") {
  TestGroup group;
  AsMember as(group.start());
  constexpr std::size_t kBlock = 8 << 20;
  std::vector<pat::Buffer> buffers;
  std::vector<std::byte*> where;
  for (std::size_t i = 0; i < 2 * BlockAllocator::kRetainedBudget / kBlock; ++i) {
    buffers.push_back(pat::Buffer::allocate(kBlock));  // zero-filled: every page touched
    where.push_back(buffers.back().data());
  }
  for (std::byte* data : where) CHECK(resident_pages(data, kBlock) >= kBlock / kPageSize);
  buffers.clear();  // frees in order: the first ones fill the budget
  std::size_t kept = 0, discarded = 0;
  for (std::byte* data : where) {
    std::size_t resident = resident_pages(data, kBlock);
    if (resident >= kBlock / kPageSize) kept++;
    if (resident <= 2) discarded++;  // the partial first and last pages stay
  }
  // A block is the buffer plus its 64-byte header: one fewer fits the budget.
  CHECK(kept == BlockAllocator::kRetainedBudget / kBlock - 1);
  CHECK(discarded == where.size() - kept);
  auto stats = group.stats();
  CHECK(stats.retained_free_bytes >= BlockAllocator::kRetainedBudget - kBlock);
  CHECK(stats.discarded_bytes >= (where.size() - kept) * (kBlock - kPageSize));
}

TEST_CASE("reusing freed memory of the same size finds it resident, and the budget estimate follows") {
  TestGroup group;
  AsMember as(group.start());
  const void* first = nullptr;
  for (int round = 0; round < 20; ++round) {
    auto buffer = pat::Buffer::allocate(1 << 20, pat::Buffer::Fill::Uninitialized);
    if (round == 0) first = buffer.data();
    CHECK(buffer.data() == first);  // best fit hands the same block back
  }
  CHECK(group.stats().retained_free_bytes <= (2 << 20));
}

TEST_CASE("a member dying while it holds the heap's lock: the next holder checks the heap and goes on") {
  TestGroup group;
  AsMember as(group.start());
  // A thread that dies holding a robust mutex is what the kernel reports as
  // the owner dying (exit_robust_list runs for threads, too).
  std::thread([&] {
    REQUIRE(::pthread_mutex_lock(&group.arena().header().allocator.lock) == 0);
    // ... and the thread ends without unlocking.
  }).join();
  auto buffer = pat::Buffer::allocate(4096);
  CHECK(buffer.size() == 4096);
  auto stats = group.stats();
  CHECK(stats.allocator_owner_deaths == 1);
  CHECK_FALSE(stats.allocator_damaged);
}

TEST_CASE("a damaged heap refuses every allocation with ArenaDamaged; what exists stays usable, nothing throws later") {
  TestGroup group;
  auto& member = group.start();
  auto& ending = group.start();
  AsMember as(member);
  auto before = pat::Buffer::allocate(64);
  std::optional<pat::Channel> channel = pat::Channel::open("on-a-damaged-heap");
  {
    AsMember as_ending(ending);
    auto held = pat::Buffer::allocate(64);
    group.arena().header().allocator.damaged = 1;  // what a failed check after an owner's death leaves
    // The host cleans up after a member although nothing can be freed.
    CHECK(group.end(ending));
  }
  CHECK(group.stats().members_ending == 0);
  try {
    pat::Buffer::allocate(64);
    FAIL("allocated from a damaged heap");
  } catch (const pat::Error& error) {
    CHECK(error.code() == pat::Errc::ArenaDamaged);
    CHECK(std::string(error.what()).find("restart the group") != std::string::npos);
  }
  before.data()[0] = std::byte{7};
  CHECK(before.data()[0] == std::byte{7});
  // Dropping the last reference and detaching cannot free: they leak quietly.
  before = {};
  channel.reset();
  CHECK(group.stats().buffers == 2);
  CHECK(group.stats().channels == 0);
}

TEST_CASE("the host never waits for a heap lock a live member holds") {
  TestGroup group;
  auto& member = group.start();
  {
    AsMember as(member);
    auto buffer = pat::Buffer::allocate(64);
    BlockAllocator allocator(group.arena());
    auto held = allocator.lock(RobustLock::Mode::Wait);
    // The member ends while its sibling thread (this one) holds the lock:
    // the host cannot free the buffer yet, and says so instead of blocking.
    member.disown();
    CHECK_FALSE(group.host().member_ended(member.pid()));
    CHECK(group.stats().owed_frees + group.stats().members_ending > 0);
  }
  CHECK(group.host().retry());
  CHECK(group.stats().buffers == 0);
  CHECK(group.stats().members_ending == 0);
}
