// A member that dies of a real SIGSEGV: a store through a null pointer, in
// the group's shared address space. run_test.cc checks that only this
// process dies, not its host or the other members.
#include <stdio.h>

int main(void) {
  fputs("about to fault\n", stderr);
  volatile int* nowhere = (volatile int*)0;
  *nowhere = 1;
  return 0;
}
