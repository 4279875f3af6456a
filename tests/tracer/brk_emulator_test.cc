// BrkEmulator on a real PROT_NONE reservation in this process: the semantics
// of brk(2), with page-granular memory behind a byte-granular break.
#include "tracer/brk_emulator.h"

#include <doctest/doctest.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>

using namespace pat::tracer;

namespace {

constexpr std::size_t kReservation = 16 << 20;

// A PROT_NONE reservation like the launcher's, unmapped at the end.
struct Reservation {
  Range range;
  Reservation() {
    void* p = ::mmap(nullptr, kReservation, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    REQUIRE(p != MAP_FAILED);
    range = Range{reinterpret_cast<std::uintptr_t>(p), reinterpret_cast<std::uintptr_t>(p) + kReservation};
  }
  ~Reservation() { ::munmap(reinterpret_cast<void*>(range.start), range.size()); }
};

// Whether a byte is readable, asked without faulting.
bool readable(std::uintptr_t at) {
  char c;
  iovec local{&c, 1}, remote{reinterpret_cast<void*>(at), 1};
  return ::process_vm_readv(::getpid(), &local, 1, &remote, 1, 0) == 1;
}

}  // namespace

TEST_CASE("brk(0) and addresses below the start return the current break") {
  Reservation r;
  BrkEmulator brk(r.range, RLIM_INFINITY, 0);
  CHECK(brk.brk(0) == r.range.start);
  CHECK(brk.brk(r.range.start - 1) == r.range.start);
  CHECK_FALSE(readable(r.range.start));
}

TEST_CASE("growing makes whole pages writable; the break itself is byte-exact") {
  Reservation r;
  BrkEmulator brk(r.range, RLIM_INFINITY, 0);
  std::uintptr_t want = r.range.start + 100;
  CHECK(brk.brk(want) == want);
  CHECK(brk.brk(0) == want);
  std::memset(reinterpret_cast<void*>(r.range.start), 0xab, 4096);  // the whole first page
  CHECK_FALSE(readable(r.range.start + 4096));
  CHECK(brk.brk(r.range.start + 3 * 4096 + 1) == r.range.start + 3 * 4096 + 1);
  CHECK(readable(r.range.start + 3 * 4096 + 4095));
  CHECK_FALSE(readable(r.range.start + 4 * 4096));
}

TEST_CASE("shrinking gives pages back and a later growth reads zeros") {
  Reservation r;
  BrkEmulator brk(r.range, RLIM_INFINITY, 0);
  REQUIRE(brk.brk(r.range.start + 8 * 4096) == r.range.start + 8 * 4096);
  std::memset(reinterpret_cast<void*>(r.range.start), 0x5a, 8 * 4096);
  CHECK(brk.brk(r.range.start + 4096 + 10) == r.range.start + 4096 + 10);
  CHECK(readable(r.range.start + 2 * 4096 - 1));
  CHECK_FALSE(readable(r.range.start + 2 * 4096));
  CHECK(static_cast<unsigned char*>(reinterpret_cast<void*>(r.range.start))[4096 + 9] == 0x5a);  // kept below the break
  REQUIRE(brk.brk(r.range.start + 8 * 4096) == r.range.start + 8 * 4096);
  auto* regrown = reinterpret_cast<unsigned char*>(r.range.start + 2 * 4096);
  for (int i = 0; i < 6 * 4096; ++i) REQUIRE(regrown[i] == 0);
}

TEST_CASE("a request beyond the reservation fails and returns the old break") {
  Reservation r;
  BrkEmulator brk(r.range, RLIM_INFINITY, 0);
  CHECK(brk.brk(r.range.end) == r.range.end);  // all of it is fine
  CHECK(brk.brk(r.range.end + 1) == r.range.end);
  CHECK(brk.brk(r.range.start + 10) == r.range.start + 10);
  CHECK(brk.brk(~std::uintptr_t{0}) == r.range.start + 10);
}

TEST_CASE("RLIMIT_DATA counts the heap plus the image's data") {
  Reservation r;
  BrkEmulator brk(r.range, 1 << 20, 256 << 10);
  CHECK(brk.brk(r.range.start + (768 << 10)) == r.range.start + (768 << 10));
  CHECK(brk.brk(r.range.start + (768 << 10) + 1) == r.range.start + (768 << 10));
}

TEST_CASE("asking twice for the same break is harmless (a lost reply is redone)") {
  Reservation r;
  BrkEmulator brk(r.range, RLIM_INFINITY, 0);
  std::uintptr_t want = r.range.start + 5 * 4096 + 7;
  CHECK(brk.brk(want) == want);
  std::memset(reinterpret_cast<void*>(r.range.start), 1, 5 * 4096);
  CHECK(brk.brk(want) == want);
  CHECK(reinterpret_cast<unsigned char*>(r.range.start)[5 * 4096 - 1] == 1);  // contents untouched
}
