/* A tiny program built -static and -static-pie: no ld.so, so the loader
 * jumps straight to its entry. Prints its arguments and one env variable,
 * and uses malloc (static glibc's TLS setup and heap go through brk). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char** argv) {
  char* heap = malloc(1000);
  if (heap == NULL) return 2;
  memset(heap, 'x', 1000);
  printf("hello argc=%d", argc);
  for (int i = 1; i < argc; ++i) printf(" %s", argv[i]);
  const char* v = getenv("PAT_TEST_VALUE");
  printf(" value=%s\n", v ? v : "(unset)");
  free(heap);
  return 0;
}
