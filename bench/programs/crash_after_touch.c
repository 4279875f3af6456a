// bench/core_dump.py's crasher: touches MEGABYTES of heap (so its core has
// that much to write), then writes through NULL.
#include <stdlib.h>
#include <string.h>

char* volatile touched;  // global and volatile: the writes below must happen

__attribute__((noinline)) static void crash_here(int* volatile* where) { **where = 1; }

int main(int argc, char** argv) {
  size_t bytes = (size_t)(argc > 1 ? atol(argv[1]) : 64) << 20;
  touched = malloc(bytes);
  memset(touched, 0x5a, bytes);
  int* volatile nowhere = NULL;
  crash_here(&nowhere);
  return touched[0];
}
