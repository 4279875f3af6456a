// Raw x86-64 system calls as inline assembly, for code that must not touch
// glibc: a freshly cloned member runs host code on the host's TLS, like a vfork
// child, and glibc's syscall(2) would write errno into the host's thread.
// Each wrapper returns the kernel's value: >= 0, or -errno.
#pragma once

#include <type_traits>

// For every function that runs in the cloned child before it becomes the
// program: inlined into the child's one function, no stack protector (it
// reads the canary through %fs) and no sanitizer instrumentation (ASan's
// runtime keeps per-thread state in TLS).
// (clang, which builds the fuzz targets, spells two of these its own way,
// and must also leave out libFuzzer's coverage callbacks.)
#if defined(__clang__)
#define PAT_CHILD_CODE \
  [[gnu::always_inline, clang::no_stack_protector, clang::no_sanitize("address", "undefined", "coverage")]] inline
#else
#define PAT_CHILD_CODE \
  [[gnu::always_inline, gnu::no_stack_protector, gnu::no_sanitize("address", "undefined")]] inline
#endif

namespace pat::tracer::raw {

// The x86-64 syscall ABI (arch/x86/entry/entry_64.S): number in rax, arguments
// in rdi, rsi, rdx, r10, r8, r9; the kernel clobbers rcx and r11. "memory" is
// clobbered so the compiler neither caches nor delays memory the kernel reads
// or writes.
PAT_CHILD_CODE long syscall6(long nr, long a1, long a2, long a3, long a4, long a5, long a6) {
  long ret;
  register long r10 asm("r10") = a4;
  register long r8 asm("r8") = a5;
  register long r9 asm("r9") = a6;
  asm volatile("syscall"
               : "=a"(ret)
               : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
               : "rcx", "r11", "memory");
  return ret;
}

// Any argument that converts to a register: integers and pointers.
template <class T>
PAT_CHILD_CODE long arg(T value) {
  if constexpr (std::is_null_pointer_v<T>)
    return 0;
  else if constexpr (std::is_pointer_v<T>)
    return reinterpret_cast<long>(value);
  else
    return static_cast<long>(value);
}

PAT_CHILD_CODE long syscall(long nr) { return syscall6(nr, 0, 0, 0, 0, 0, 0); }
template <class A>
PAT_CHILD_CODE long syscall(long nr, A a) { return syscall6(nr, arg(a), 0, 0, 0, 0, 0); }
template <class A, class B>
PAT_CHILD_CODE long syscall(long nr, A a, B b) { return syscall6(nr, arg(a), arg(b), 0, 0, 0, 0); }
template <class A, class B, class C>
PAT_CHILD_CODE long syscall(long nr, A a, B b, C c) { return syscall6(nr, arg(a), arg(b), arg(c), 0, 0, 0); }
template <class A, class B, class C, class D>
PAT_CHILD_CODE long syscall(long nr, A a, B b, C c, D d) { return syscall6(nr, arg(a), arg(b), arg(c), arg(d), 0, 0); }
template <class A, class B, class C, class D, class E>
PAT_CHILD_CODE long syscall(long nr, A a, B b, C c, D d, E e) {
  return syscall6(nr, arg(a), arg(b), arg(c), arg(d), arg(e), 0);
}

}  // namespace pat::tracer::raw
