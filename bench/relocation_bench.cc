// bench_relocation: what moving pat-python's non-PIC build costs the host at
// each launch (tracer/relocating_loader.h), in this process as the host does
// it: reading the kept relocations (once per file), then mapping the image
// into a free slot and rewriting it (every moved launch), against mapping it
// unmoved at its own addresses. Also what a moved image holds in memory
// right after loading: the pages rewritten are private copies.
//
// Times are this thread's CPU time (what the host spends; on a shared
// machine wall time also counts other processes' turns), wall time beside.
//
// Run: bench_relocation BUILD [RUNS]   (bench/python_members.py runs it)
#include <fcntl.h>
#include <sys/mman.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tracer/program_resolver.h"
#include "tracer/relocating_loader.h"

using namespace pat::tracer;

namespace {

// CPU and wall microseconds since construction.
class Stopwatch {
 public:
  Stopwatch() : cpu_(cpu_now()), wall_(std::chrono::steady_clock::now()) {}
  double cpu_us() const { return cpu_now() - cpu_; }
  double wall_us() const {
    return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - wall_).count();
  }

 private:
  static double cpu_now() {
    timespec now;
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
    return static_cast<double>(now.tv_sec) * 1e6 + static_cast<double>(now.tv_nsec) / 1e3;
  }
  double cpu_;
  std::chrono::steady_clock::time_point wall_;
};

struct Samples {
  std::vector<double> cpu, wall;
  void add(const Stopwatch& watch) {
    cpu.push_back(watch.cpu_us());
    wall.push_back(watch.wall_us());
  }
};

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

double p90(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[std::min(values.size() - 1, values.size() * 9 / 10)];
}

struct Resident {
  long rss_kib = 0, private_dirty_kib = 0, file_kib = 0;
};

// /proc/self/smaps summed over the mappings inside `range`.
Resident resident_in(Range range) {
  std::ifstream smaps("/proc/self/smaps");
  Resident total;
  bool inside = false;
  for (std::string line; std::getline(smaps, line);) {
    unsigned long start = 0, end = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &start, &end) == 2 && line.find(':') > line.find(' ')) {
      inside = start >= range.start && end <= range.end;
      continue;
    }
    if (!inside) continue;
    std::istringstream fields(line);
    std::string key;
    long kib = 0;
    fields >> key >> kib;
    if (key == "Rss:") total.rss_kib += kib;
    if (key == "Private_Dirty:") total.private_dirty_kib += kib;
    if (key == "Private_Clean:" || key == "Shared_Clean:") total.file_kib += kib;
  }
  return total;
}

OpenedElf open_or_die(const char* path) {
  auto opened = open_elf(AT_FDCWD, path);
  if (auto* error = std::get_if<LaunchError>(&opened)) {
    std::fprintf(stderr, "bench_relocation: %s\n", error->message.c_str());
    std::exit(1);
  }
  return std::move(std::get<OpenedElf>(opened));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_relocation BUILD [RUNS]\n");
    return 2;
  }
  const int runs = argc > 2 ? std::atoi(argv[2]) : 50;
  OpenedElf build = open_or_die(argv[1]);
  RelocatingLoader loader;

  Stopwatch reading;
  const auto& relocations = loader.relocations_of(build);
  const double read_cpu_us = reading.cpu_us(), read_wall_us = reading.wall_us();
  if (auto* rejection = std::get_if<ElfRejection>(&relocations)) {
    std::fprintf(stderr, "bench_relocation: cannot be moved: %s\n", rejection->reason.c_str());
    return 1;
  }
  const auto& kept = *std::get<std::shared_ptr<const ImageRelocations>>(relocations);

  Samples own, moved_samples;
  Resident moved_resident;
  for (int run = 0; run < runs; ++run) {
    MemberLayout at_home;
    Stopwatch mapping_home;
    auto home = loader.map(build, MemberLayout::Kind::ProgramImage, 0, at_home);
    own.add(mapping_home);
    // While the image holds its own addresses, the next one must move.
    MemberLayout elsewhere;
    Stopwatch moving;
    auto moved = loader.map(build, MemberLayout::Kind::ProgramImage, 0, elsewhere);
    moved_samples.add(moving);
    if (!std::holds_alternative<MappedElf>(home) || !std::holds_alternative<MappedElf>(moved)) {
      std::fprintf(stderr, "bench_relocation: mapping failed\n");
      return 1;
    }
    if (run == 0) moved_resident = resident_in(std::get<MappedElf>(moved).image);
    elsewhere.release();
    at_home.release();
  }

  std::printf("image: %s, %lu KiB, %zu sites to rewrite (%zu by value)\n", argv[1],
              (kept.link_end - kept.link_start) / 1024, kept.site_count(), kept.value_dependent.size());
  std::printf("read relocations (once per file): cpu %.0f us, wall %.0f us\n", read_cpu_us, read_wall_us);
  for (const auto& [what, samples] : {std::pair{"map at its own addresses", &own}, {"map moved and rewrite", &moved_samples}}) {
    std::printf("%s: cpu median %.0f us, p90 %.0f us; wall median %.0f us, p90 %.0f us (%d runs)\n", what,
                median(samples->cpu), p90(samples->cpu), median(samples->wall), p90(samples->wall), runs);
  }
  std::printf("moved image resident after loading: %ld KiB, of which private (rewritten) %ld KiB, file-backed %ld KiB\n",
              moved_resident.rss_kib, moved_resident.private_dirty_kib, moved_resident.file_kib);
  return 0;
}
