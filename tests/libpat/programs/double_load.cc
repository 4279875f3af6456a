// Member program: libpat twice in one process. This program links libpat.a
// (its own copy, hidden symbols) and then dlopen()s libpat.so, a second
// copy; the second must refuse to attach instead of keeping a second view
// of the member's holder set. Prints "first=1" and "second=0: <why>".
#include <pat/pat.hpp>

#include <dlfcn.h>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 2) return 64;
  std::printf("first=%d\n", pat::in_group() ? 1 : 0);
  void* second = ::dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (second == nullptr) {
    std::printf("dlopen: %s\n", ::dlerror());
    return 1;
  }
  auto in_group = reinterpret_cast<int (*)()>(::dlsym(second, "pat_in_group"));
  auto last_error = reinterpret_cast<const char* (*)()>(::dlsym(second, "pat_last_error"));
  int answer = in_group();
  std::printf("second=%d: %s\n", answer, answer ? "" : last_error());
  // The first copy still works.
  auto buffer = pat::Buffer::allocate(100);
  std::printf("first still works=%d\n", buffer.size() == 100 ? 1 : 0);
  return 0;
}
