// MappingLedger and SharedAddressSpace: ownership by range, through splits,
// merges, partial unmaps and moves; the refusals; pins. SharedAddressSpace
// is driven with real mmap/munmap/mremap calls in this process, as the host
// makes them for a member.
#include "proto/hostcall.h"
#include "tracer/mapping_ledger.h"
#include "tracer/shared_address_space.h"

#include <doctest/doctest.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

using namespace pat::tracer;

namespace {

constexpr std::uintptr_t kPage = 4096;
Range pages(std::uintptr_t first, std::uintptr_t count) { return {first * kPage, (first + count) * kPage}; }

seccomp_data call(long nr, std::initializer_list<std::uint64_t> args) {
  seccomp_data data{};
  data.nr = static_cast<int>(nr);
  int i = 0;
  for (auto arg : args) data.args[i++] = arg;
  return data;
}

std::uint64_t u(const void* p) { return reinterpret_cast<std::uint64_t>(p); }

bool mapped(std::uintptr_t address) {
  unsigned char residency;
  return ::mincore(reinterpret_cast<void*>(address & ~(kPage - 1)), kPage, &residency) == 0;
}

}  // namespace

TEST_CASE("ledger: assign, split by erase, merge of equal neighbours") {
  MappingLedger ledger;
  ledger.assign(pages(10, 10), 7, MappingKind::Mapping);
  CHECK(ledger.segment_count() == 1);
  ledger.erase(pages(13, 2));  // a partial munmap in the middle
  CHECK(ledger.segment_count() == 2);
  CHECK(ledger.bytes_of(7) == 8 * kPage);
  CHECK(ledger.gaps_in(pages(10, 10)) == std::vector<Range>{pages(13, 2)});
  ledger.assign(pages(13, 2), 7, MappingKind::Mapping);  // filled again: one segment
  CHECK(ledger.segment_count() == 1);
  ledger.assign(pages(20, 5), 7, MappingKind::Stack);  // adjacent, other kind: stays apart
  CHECK(ledger.segment_count() == 2);
  ledger.assign(pages(25, 5), 8, MappingKind::Mapping);  // adjacent, other owner
  CHECK(ledger.segment_count() == 3);
  auto foreign = ledger.foreign_in(pages(18, 10), 7);
  REQUIRE(foreign.has_value());
  CHECK(foreign->owner == 8);
  CHECK(foreign->range == pages(25, 3));  // clipped to the question
  CHECK_FALSE(ledger.foreign_in(pages(10, 15), 7).has_value());
  CHECK(ledger.segment_at(pages(26, 1).start)->owner == 8);
  CHECK_FALSE(ledger.segment_at(pages(30, 1).start).has_value());
}

TEST_CASE("ledger: reassigning part of a segment splits it; segments_of lists in order") {
  MappingLedger ledger;
  ledger.assign(pages(0, 100), 3, MappingKind::Mapping);
  ledger.assign(pages(40, 10), 4, MappingKind::Pinned);
  auto of3 = ledger.segments_of(3);
  REQUIRE(of3.size() == 2);
  CHECK(of3[0].range == pages(0, 40));
  CHECK(of3[1].range == pages(50, 50));
  CHECK(ledger.bytes_of(4) == 10 * kPage);
  ledger.erase(pages(0, 100));
  CHECK(ledger.segment_count() == 0);
}

TEST_CASE("space: a member's mmap, partial munmap, mprotect split and mremap move keep their owner") {
  SharedAddressSpace space(false);
  MemberLayout nothing;
  OwnerId a = space.add_member(::getpid(), nothing);
  pid_t self = ::getpid();
  auto reply = space.handle_mapping_call(
      call(SYS_mmap, {0, 16 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, ~0ull, 0}), self, a, -1);
  REQUIRE(reply.kind == SyscallReply::Kind::Value);
  auto base = static_cast<std::uintptr_t>(reply.value);
  CHECK(space.ledger().bytes_of(a) == 16 * kPage);
  // mprotect splits the VMA; ownership does not care.
  reply = space.handle_mapping_call(call(SYS_mprotect, {base + 4 * kPage, 2 * kPage, PROT_READ}), self, a, -1);
  CHECK(reply.kind == SyscallReply::Kind::Value);
  CHECK(space.ledger().bytes_of(a) == 16 * kPage);
  // A partial munmap leaves the rest owned.
  reply = space.handle_mapping_call(call(SYS_munmap, {base + 8 * kPage, 4 * kPage}), self, a, -1);
  CHECK(reply.value == 0);
  CHECK_FALSE(mapped(base + 9 * kPage));
  CHECK(space.ledger().bytes_of(a) == 12 * kPage);
  // mremap moves the first 4 pages elsewhere, bigger.
  reply = space.handle_mapping_call(call(SYS_mremap, {base, 4 * kPage, 8 * kPage, MREMAP_MAYMOVE, 0}), self, a, -1);
  REQUIRE(reply.kind == SyscallReply::Kind::Value);
  auto moved = static_cast<std::uintptr_t>(reply.value);
  CHECK(space.ledger().segment_at(moved)->owner == a);
  CHECK(space.ledger().bytes_of(a) == (12 - 4 + 8) * kPage);
  // Everything goes back at once.
  CHECK(space.reclaim(a) == 16 * kPage);
  CHECK(space.ledger().segment_count() == 0);
  CHECK_FALSE(mapped(moved));
  CHECK_FALSE(mapped(base + 12 * kPage));
}

TEST_CASE("space: MAP_FIXED, munmap and mprotect over another member's memory are refused and reported") {
  SharedAddressSpace space(false);
  MemberLayout nothing;
  pid_t self = ::getpid();
  OwnerId a = space.add_member(self, nothing), b = space.add_member(self + 1, nothing);
  std::vector<MappingRefusal> refusals;
  space.on_refusal = [&](const MappingRefusal& r) { refusals.push_back(r); };
  auto made = space.handle_mapping_call(
      call(SYS_mmap, {0, 4 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, ~0ull, 0}), self, a, -1);
  auto base = static_cast<std::uintptr_t>(made.value);
  std::memset(reinterpret_cast<void*>(base), 0x5a, 4 * kPage);

  auto fixed = space.handle_mapping_call(
      call(SYS_mmap, {base, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, ~0ull, 0}),
      self + 1, b, -1);
  CHECK(fixed.kind == SyscallReply::Kind::Error);
  CHECK(fixed.value == ENOMEM);
  auto unmap = space.handle_mapping_call(call(SYS_munmap, {base, kPage}), self + 1, b, -1);
  CHECK(unmap.value == EINVAL);
  auto protect = space.handle_mapping_call(call(SYS_mprotect, {base, kPage, PROT_NONE}), self + 1, b, -1);
  CHECK(protect.value == ENOMEM);
  auto move = space.handle_mapping_call(call(SYS_mremap, {base, kPage, 2 * kPage, MREMAP_MAYMOVE, 0}), self + 1, b, -1);
  CHECK(move.value == EINVAL);
  REQUIRE(refusals.size() == 4);
  CHECK(refusals[0].pid == self + 1);
  CHECK(refusals[0].other_pid == self);
  CHECK(std::string(refusals[0].syscall) == "mmap");
  CHECK(*reinterpret_cast<unsigned char*>(base) == 0x5a);  // untouched

  // Memory nobody in the ledger owns but that is mapped (the host's own) is
  // protected too: this test's stack, say.
  int local = 0;
  auto host_page = reinterpret_cast<std::uintptr_t>(&local) & ~(kPage - 1);
  CHECK(space.handle_mapping_call(call(SYS_munmap, {host_page, kPage}), self + 1, b, -1).value == EINVAL);
  CHECK(refusals.back().other_owner == kNoOwner);
  space.reclaim(a);
  space.reclaim(b);
}

TEST_CASE("space: with cross mapping allowed, the last mapper owns") {
  SharedAddressSpace space(true);
  MemberLayout nothing;
  pid_t self = ::getpid();
  OwnerId a = space.add_member(self, nothing), b = space.add_member(self + 1, nothing);
  auto made = space.handle_mapping_call(
      call(SYS_mmap, {0, 4 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, ~0ull, 0}), self, a, -1);
  auto base = static_cast<std::uintptr_t>(made.value);
  auto fixed = space.handle_mapping_call(
      call(SYS_mmap, {base, kPage, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, ~0ull, 0}), self + 1, b, -1);
  CHECK(fixed.kind == SyscallReply::Kind::Value);
  CHECK(space.ledger().segment_at(base)->owner == b);
  CHECK(space.ledger().segment_at(base + kPage)->owner == a);
  space.reclaim(a);
  space.reclaim(b);
  CHECK(space.ledger().segment_count() == 0);
}

TEST_CASE("space: pinned pages outlive their maker's munmap and exit, and go with the last unpin") {
  SharedAddressSpace space(false);
  MemberLayout nothing;
  pid_t self = ::getpid();
  OwnerId maker = space.add_member(self, nothing);
  auto made = space.handle_mapping_call(
      call(SYS_mmap, {0, 8 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, ~0ull, 0}), self, maker, -1);
  auto base = static_cast<std::uintptr_t>(made.value);
  std::memset(reinterpret_cast<void*>(base), 0x42, 8 * kPage);
  auto pin = space.handle_hostcall(call(SYS_prctl, {PAT_HOSTCALL, PAT_HOSTCALL_PIN, base + 100, 2 * kPage}), maker);
  REQUIRE(pin.kind == SyscallReply::Kind::Value);
  auto second = space.handle_hostcall(call(SYS_prctl, {PAT_HOSTCALL, PAT_HOSTCALL_PIN, base, kPage}), maker);
  REQUIRE(second.kind == SyscallReply::Kind::Value);
  CHECK(space.pin_count() == 2);
  // The maker frees all of it: the pinned pages (0..2) stay mapped.
  CHECK(space.handle_mapping_call(call(SYS_munmap, {base, 8 * kPage}), self, maker, -1).value == 0);
  CHECK(mapped(base));
  CHECK(mapped(base + 2 * kPage));
  CHECK_FALSE(mapped(base + 3 * kPage));
  CHECK(*reinterpret_cast<unsigned char*>(base + 2 * kPage) == 0x42);
  space.reclaim(maker);  // the maker is gone
  CHECK(mapped(base));
  // One pin released: page 0 is still under the other, pages 1-2 are not.
  CHECK(space.handle_hostcall(call(SYS_prctl, {PAT_HOSTCALL, PAT_HOSTCALL_UNPIN, static_cast<std::uint64_t>(pin.value)}),
                              maker)
            .value == 0);
  CHECK(mapped(base));
  CHECK_FALSE(mapped(base + kPage));
  CHECK(space.handle_hostcall(
                call(SYS_prctl, {PAT_HOSTCALL, PAT_HOSTCALL_UNPIN, static_cast<std::uint64_t>(second.value)}), maker)
            .value == 0);
  CHECK_FALSE(mapped(base));
  CHECK(space.ledger().segment_count() == 0);
  CHECK(space.handle_hostcall(call(SYS_prctl, {PAT_HOSTCALL, PAT_HOSTCALL_UNPIN, 999}), maker).value == ENOENT);
}

TEST_CASE("space: only a member's own mappings can be pinned") {
  SharedAddressSpace space(false);
  pid_t self = ::getpid();
  MemberLayout layout;
  void* stack = ::mmap(nullptr, 4 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  layout.add(MemberLayout::Kind::Stack, Range{u(stack), u(stack) + 4 * kPage});
  OwnerId a = space.add_member(self, layout);
  OwnerId b = space.add_member(self + 1, MemberLayout{});
  auto pin_stack = space.handle_hostcall(call(SYS_prctl, {PAT_HOSTCALL, PAT_HOSTCALL_PIN, u(stack), kPage}), a);
  CHECK(pin_stack.value == EPERM);
  auto made = space.handle_mapping_call(
      call(SYS_mmap, {0, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, ~0ull, 0}), self, a, -1);
  auto other = space.handle_hostcall(
      call(SYS_prctl, {PAT_HOSTCALL, PAT_HOSTCALL_PIN, static_cast<std::uint64_t>(made.value), kPage}), b);
  CHECK(other.value == EPERM);
  CHECK(space.handle_hostcall(call(SYS_prctl, {PAT_HOSTCALL, PAT_HOSTCALL_PING}), a).value == ::getpid());
  space.reclaim(a);
  space.reclaim(b);
}
