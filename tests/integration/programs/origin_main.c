/* Linked with -Wl,-rpath,'$ORIGIN/origin_lib': ld.so finds liborigin.so next
 * to this program only if readlink("/proc/self/exe") names this program. */
#include <stdio.h>
const char* origin_greeting(void);
int main(void) {
  puts(origin_greeting());
  return 0;
}
