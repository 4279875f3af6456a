// A non-PIC C++ program that writes its own addresses everywhere non-PIC
// code does, linked non-PIE with --emit-relocs (and once more, at another
// address, as the reference a moved copy must equal byte for byte): pointer
// tables in data, a switch's jump table, function pointers, a constructor in
// .init_array, libc data reached through a copy relocation (stdout), a
// thread_local, and an exception, whose unwinding reads .eh_frame. Prints one
// line that is the same wherever it runs, then, if given a number of
// milliseconds, waits that long (to hold its addresses in a test).
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <stdexcept>
#include <string>

namespace {

const char* const kWords[] = {"alpha", "beta", "gamma", "delta", "epsilon"};

int twice(int x) { return 2 * x; }
int square(int x) { return x * x; }
int (*const kOperations[])(int) = {twice, square};

int constructed = 0;
__attribute__((constructor)) void construct() { constructed = 42; }

thread_local int per_thread = 7;

// noinline and a volatile selector keep the switch as a jump table.
__attribute__((noinline)) int classify(int value) {
  switch (value) {
    case 0: return 11;
    case 1: return 23;
    case 2: return 37;
    case 3: return 41;
    case 4: return 53;
    case 5: return 67;
    case 6: return 79;
    default: return -1;
  }
}

__attribute__((noinline)) void fail(const std::string& why) { throw std::runtime_error(why); }

}  // namespace

int main(int argc, char** argv) {
  volatile int selector = 5;
  int sum = 0;
  for (int i = 0; i <= selector; ++i) sum += classify(i);
  std::string caught;
  try {
    fail(kWords[2]);
  } catch (const std::runtime_error& error) {
    caught = error.what();
  }
  fprintf(stdout, "movable %s %s %d %d %d %d %s\n", kWords[0], kWords[4], kOperations[1](sum), constructed,
          per_thread, classify(6), caught.c_str());
  fflush(stdout);
  if (argc > 1) {
    long ms = strtol(argv[1], nullptr, 10);
    timespec wait{ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&wait, nullptr);
  }
  return 0;
}
