// Reference counts and holder sets: a buffer lives while any member or
// queued message holds it, a member counts once, and the host releases what
// a member held when it ends — including frees it left halfway — without
// ever freeing a buffer that someone still holds.
#include "libpat/src/buffer_store.h"
#include "libpat/src/holder_set.h"
#include "tests/libpat/test_group.h"

#include <doctest/doctest.h>

#include <cstring>

using namespace pat::dataplane;
using pat::testing::AsMember;
using pat::testing::TestGroup;

namespace {

// What a channel does between two members, without one: the sender's
// reference is copied for the receiver, who adopts it.
std::shared_ptr<pat::detail::Holding> hand_over(MemberSession& to, Handle handle) {
  to.buffers().add_reference(handle);
  return to.adopt(handle);
}

std::uint32_t references(const TestGroup& group, Handle handle) {
  return BufferStore(group.arena()).header(handle).references.load();
}

}  // namespace

TEST_CASE("a buffer lives while any member holds it; each member counts once however many Buffers it has") {
  TestGroup group;
  auto& a = group.start();
  auto& b = group.start();
  Handle handle;
  {
    AsMember as(a);
    auto made = pat::Buffer::allocate(1000);
    handle = made.handle();
    auto copy = made;
    CHECK(made.references() == 1);
    CHECK(HolderSet(group.arena(), a.slot()).contains(handle));
    std::memcpy(made.data(), "hello", 5);
    auto in_b = hand_over(b, handle);
    CHECK(made.references() == 2);
    auto again_in_b = hand_over(b, handle);  // b received it twice: still one holder
    CHECK(made.references() == 2);
    CHECK(b.holdings() == 1);
    in_b.reset();
    CHECK(made.references() == 2);  // b still has again_in_b
    // a lets go; b's reference keeps the bytes.
    made = {};
    copy = {};
    CHECK(references(group, handle) == 1);
    CHECK_FALSE(HolderSet(group.arena(), a.slot()).contains(handle));
    CHECK(std::memcmp(again_in_b->data(), "hello", 5) == 0);
    CHECK(group.stats().buffers == 1);
  }
  CHECK(group.stats().buffers == 0);
}

TEST_CASE("the host releases an ended member's references: what only it held is freed, the rest survives") {
  TestGroup group;
  auto& dying = group.start();
  auto& survivor = group.start();
  std::shared_ptr<pat::detail::Holding> kept;
  {
    AsMember as(dying);
    auto only_mine = pat::Buffer::allocate(4096);
    auto also_mine = pat::Buffer::allocate(1 << 20);
    auto shared = pat::Buffer::allocate(100);
    std::memcpy(shared.data(), "survives", 8);
    kept = hand_over(survivor, shared.handle());
    CHECK(group.stats().buffers == 3);
    // Killed with its Buffers still alive: nothing of it runs any more.
    CHECK(group.end(dying));
  }
  CHECK(group.stats().buffers == 1);
  CHECK(references(group, kept->handle()) == 1);
  CHECK(std::memcmp(kept->data(), "survives", 8) == 0);
  CHECK(group.stats().members_ending == 0);
  kept.reset();
  CHECK(group.stats().buffers == 0);
}

TEST_CASE("a member holding thousands of buffers: its holder set grows, and all are released when it ends") {
  TestGroup group;
  auto& member = group.start();
  AsMember as(member);
  std::vector<pat::Buffer> held;
  for (int i = 0; i < 3000; ++i) held.push_back(pat::Buffer::allocate(16));
  CHECK(HolderSet(group.arena(), member.slot()).handles().size() == 3000);
  for (int i = 0; i < 3000; i += 2) held[i] = {};  // tombstones in the set
  CHECK(HolderSet(group.arena(), member.slot()).handles().size() == 1500);
  for (int i = 0; i < 1000; ++i) held.push_back(pat::Buffer::allocate(16));  // grows past the tombstones
  CHECK(HolderSet(group.arena(), member.slot()).handles().size() == 2500);
  CHECK(group.end(member));
  CHECK(group.stats().buffers == 0);
}

TEST_CASE("a member that died after dropping a count to zero but before freeing: the host frees it") {
  TestGroup group;
  auto& member = group.start();
  BufferStore store(group.arena());
  Handle handle = store.create_arena(1 << 16, Fill::Zero, member.pid());
  std::uint64_t generation = store.header(handle).generation.load();
  // Its last steps: count 1 -> 0, a pending record claimed; then death.
  REQUIRE(store.drop_reference(handle));
  member.slot().pending_frees[3].handle.store(handle);
  member.slot().pending_frees[3].generation.store(generation);
  CHECK(group.end(member));
  CHECK(group.stats().buffers == 0);
}

TEST_CASE("a pending record of a free that had finished: the host leaves the block's next buffer alone") {
  TestGroup group;
  auto& dead = group.start();
  auto& other = group.start();
  BufferStore store(group.arena());
  Handle first = store.create_arena(256, Fill::Zero, dead.pid());
  std::uint64_t first_generation = store.header(first).generation.load();
  REQUIRE(store.drop_reference(first));
  store.free(first, dead.slot(), [](std::uint64_t) {});
  // The block comes back for another buffer, held by another member.
  auto next = [&] {
    AsMember as(other);
    return pat::Buffer::allocate(256);
  }();
  CHECK(next.handle() == first);
  // The dead member's record still names the first buffer (it died between
  // giving the block back and clearing the record).
  dead.slot().pending_frees[0].handle.store(first);
  dead.slot().pending_frees[0].generation.store(first_generation);
  CHECK(group.end(dead));
  CHECK(group.stats().buffers == 1);
  CHECK(next.references() == 1);
  AsMember as(other);
  next = {};
  CHECK(group.stats().buffers == 0);
}

TEST_CASE("dying between erasing a handle from the set and dropping the count leaks it; it is never freed early") {
  TestGroup group;
  auto& member = group.start();
  auto& other = group.start();
  BufferStore store(group.arena());
  Handle handle = store.create_arena(64, Fill::Zero, member.pid());
  auto holding = member.adopt(handle);
  auto in_other = hand_over(other, handle);
  // The member's release, cut after its first step.
  HolderSet(group.arena(), member.slot()).erase(handle);
  CHECK(group.end(member));
  CHECK(references(group, handle) == 2);  // one too many: a leak
  in_other.reset();
  CHECK(references(group, handle) == 1);
  CHECK(group.stats().buffers == 1);
}

TEST_CASE("external buffers: the last reference releases the pin, also when its holder was the one that died") {
  TestGroup group;
  auto& maker = group.start();
  auto& reader = group.start();
  static char pages[3 * 4096];
  BufferStore store(group.arena());
  Handle handle = store.create_external(pages, sizeof(pages), 41, maker.pid());
  auto made = maker.adopt(handle);
  CHECK(made->data() == reinterpret_cast<std::byte*>(pages));
  CHECK(made->size() == sizeof(pages));
  CHECK(made->kind() == BufferKind::External);
  auto read = hand_over(reader, handle);
  made.reset();
  CHECK(group.unpinned().empty());
  read.reset();
  CHECK(group.unpinned() == std::vector<std::uint64_t>{41});

  Handle second = store.create_external(pages, sizeof(pages), 42, maker.pid());
  auto held = reader.adopt(second);
  CHECK(group.end(reader));
  CHECK(group.unpinned() == std::vector<std::uint64_t>{41, 42});
  CHECK(group.stats().buffers == 0);
}

TEST_CASE("share() copies what cannot be pinned: small buffers, and here (no host) everything") {
  TestGroup group;
  AsMember as(group.start());
  std::vector<char> source(200 * 1024, 's');
  auto big = pat::Buffer::share(source.data(), source.size());  // prctl answers EINVAL: no host
  CHECK_FALSE(big.zero_copy());
  CHECK(big.data() != reinterpret_cast<std::byte*>(source.data()));
  CHECK(std::memcmp(big.data(), source.data(), source.size()) == 0);
  auto small = pat::Buffer::share("tiny", 4);
  CHECK(small.kind() == pat::Buffer::Kind::Arena);
  CHECK(std::memcmp(small.data(), "tiny", 4) == 0);
}
