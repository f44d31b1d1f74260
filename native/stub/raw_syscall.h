/*
 * A raw x86-64 syscall, for code that may not use libc: the stub's signal handler, and the
 * child between Node's raw clone and the jump into stub code.
 */
#ifndef SYSTRAP_RAW_SYSCALL_H
#define SYSTRAP_RAW_SYSCALL_H

static inline __attribute__((always_inline)) long raw_syscall(long n, long a, long b, long c, long d, long e, long f) {
  long ret;
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9) : "rcx", "r11", "memory");
  return ret;
}

#endif
