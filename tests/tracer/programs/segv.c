/* Dies of SIGSEGV: a member's crash must end only that member. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char** argv) {
  (void)argv;
  fflush(stdout);
  /* An address the compiler cannot see through: page zero is never mapped. */
  volatile int* nowhere = (volatile int*)(uintptr_t)(argc * 16);
  *nowhere = 1;
  return 0;
}
