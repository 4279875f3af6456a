// The initial stack, built into a local buffer and walked back the way ld.so
// and a static startup read it.
#include "tracer/initial_stack.h"

#include <doctest/doctest.h>
#include <elf.h>

#include <cstring>
#include <map>
#include <vector>

using namespace pat::tracer;

namespace {

std::uint64_t word(std::uintptr_t at) {
  std::uint64_t v;
  std::memcpy(&v, reinterpret_cast<const void*>(at), sizeof(v));
  return v;
}

std::string string_at(std::uint64_t at) { return reinterpret_cast<const char*>(at); }

InitialStackSpec sample() {
  InitialStackSpec s;
  s.argv = {"prog", "one", ""};
  s.envp = {"A=1", "PATH=/bin"};
  s.execfn = "/usr/bin/prog";
  for (int i = 0; i < 16; ++i) s.random[i] = static_cast<std::uint8_t>(i * 7 + 1);
  s.machine.sysinfo_ehdr = 0x7fff1000;
  s.machine.minsigstksz = 3632;
  s.machine.hwcap = 0x178bfbff;
  s.machine.hwcap2 = 2;
  s.machine.rseq_feature_size = 28;
  s.machine.rseq_align = 32;
  s.phdr = 0x555500000040;
  s.phnum = 13;
  s.base = 0x7f0000000000;
  s.entry = 0x555500001040;
  s.uid = 1000, s.euid = 1001, s.gid = 100, s.egid = 101;
  return s;
}

}  // namespace

TEST_CASE("argc, argv, envp and the aux vector in create_elf_tables order") {
  std::vector<std::uint64_t> buffer(64 * 1024 / 8);
  auto low = reinterpret_cast<std::uintptr_t>(buffer.data());
  auto high = low + buffer.size() * 8;
  InitialStackSpec spec = sample();
  auto rsp = build_initial_stack(low, high, spec);
  REQUIRE(rsp);
  CHECK(*rsp % 16 == 0);
  CHECK(*rsp >= low);
  CHECK(word(high - 8) == 0);  // the top word stays zero

  std::uintptr_t p = *rsp;
  REQUIRE(word(p) == 3);
  p += 8;
  for (const std::string& arg : spec.argv) {
    CHECK(string_at(word(p)) == arg);
    CHECK(word(p) > *rsp);
    CHECK(word(p) < high);
    p += 8;
  }
  CHECK(word(p) == 0);
  p += 8;
  for (const std::string& env : spec.envp) {
    CHECK(string_at(word(p)) == env);
    p += 8;
  }
  CHECK(word(p) == 0);
  p += 8;

  std::vector<std::uint64_t> types;
  std::map<std::uint64_t, std::uint64_t> aux;
  std::vector<std::uint64_t> pairs;
  for (;; p += 16) {
    types.push_back(word(p));
    aux[word(p)] = word(p + 8);
    pairs.push_back(word(p));
    pairs.push_back(word(p + 8));
    if (word(p) == AT_NULL) break;
  }
  CHECK(aux_vector_at(*rsp) == pairs);
  CHECK(types == std::vector<std::uint64_t>{AT_SYSINFO_EHDR, AT_MINSIGSTKSZ, AT_HWCAP, AT_PAGESZ, AT_CLKTCK, AT_PHDR,
                                           AT_PHENT, AT_PHNUM, AT_BASE, AT_FLAGS, AT_ENTRY, AT_UID, AT_EUID, AT_GID,
                                           AT_EGID, AT_SECURE, AT_RANDOM, AT_HWCAP2, AT_EXECFN, AT_PLATFORM,
                                           AT_RSEQ_FEATURE_SIZE, AT_RSEQ_ALIGN, AT_NULL});
  CHECK(aux[AT_SYSINFO_EHDR] == 0x7fff1000);
  CHECK(aux[AT_MINSIGSTKSZ] == 3632);
  CHECK(aux[AT_PAGESZ] == 4096);
  CHECK(aux[AT_PHDR] == spec.phdr);
  CHECK(aux[AT_PHENT] == sizeof(Elf64_Phdr));
  CHECK(aux[AT_PHNUM] == 13);
  CHECK(aux[AT_BASE] == spec.base);
  CHECK(aux[AT_ENTRY] == spec.entry);
  CHECK(aux[AT_UID] == 1000);
  CHECK(aux[AT_EUID] == 1001);
  CHECK(aux[AT_GID] == 100);
  CHECK(aux[AT_EGID] == 101);
  CHECK(aux[AT_SECURE] == 0);
  CHECK(aux[AT_HWCAP2] == 2);
  CHECK(aux[AT_RSEQ_FEATURE_SIZE] == 28);
  CHECK(aux[AT_RSEQ_ALIGN] == 32);
  CHECK(std::memcmp(reinterpret_cast<const void*>(aux[AT_RANDOM]), spec.random.data(), 16) == 0);
  CHECK(string_at(aux[AT_EXECFN]) == "/usr/bin/prog");
  CHECK(string_at(aux[AT_PLATFORM]) == "x86_64");
  // Everything referenced lies above the tables, inside the buffer.
  for (std::uint64_t at : {aux[AT_RANDOM], aux[AT_EXECFN], aux[AT_PLATFORM]}) {
    CHECK(at > p);
    CHECK(at < high);
  }
}

TEST_CASE("without rseq or vdso in the machine facts those entries are left out") {
  std::vector<std::uint64_t> buffer(16 * 1024 / 8);
  auto low = reinterpret_cast<std::uintptr_t>(buffer.data());
  InitialStackSpec spec = sample();
  spec.machine.sysinfo_ehdr = 0;
  spec.machine.rseq_feature_size = 0;
  auto rsp = build_initial_stack(low, low + buffer.size() * 8, spec);
  REQUIRE(rsp);
  std::uintptr_t p = *rsp + 8 * (1 + 3 + 1 + 2 + 1);
  CHECK(word(p) == AT_MINSIGSTKSZ);
  std::size_t entries = 0;
  while (word(p + 16 * entries) != AT_NULL) ++entries;
  CHECK(entries == 19);
}

TEST_CASE("arguments beyond a quarter of the stack do not fit (E2BIG)") {
  std::vector<std::uint64_t> buffer(64 * 1024 / 8);
  auto low = reinterpret_cast<std::uintptr_t>(buffer.data());
  InitialStackSpec spec = sample();
  spec.argv.push_back(std::string(16 * 1024, 'x'));  // exactly a quarter: no room left for the rest
  CHECK_FALSE(build_initial_stack(low, low + buffer.size() * 8, spec));
  spec.argv.back().resize(8 * 1024);
  CHECK(build_initial_stack(low, low + buffer.size() * 8, spec));
}
