/*
 * The observe-only trace ring, the stub's half (see struct trace_ring in sysmsg.h; the sentry's
 * half is src/sentry/kernel/traceRing.ts). A call the sentry would only watch (traced or counted,
 * with no deny, injection, policy or emulation of it) costs it a round trip per call: the trap,
 * the sentry's decision, the passthrough gadget, a second trap for the result. Here the stub
 * thread makes the call itself, from its own `syscall` instruction (the program's filter treats
 * that instruction's return address as the gadget's), copies what the decoder needs of its
 * arguments (strings in, structs and buffers out) into a record, and goes back into the program.
 * The sentry drains the ring when it next looks, in the order the records were reserved.
 *
 * Freestanding like sysmsg.c (same flags, same section). Preconditions of systrap_ring_call:
 * called on a sysmsg thread's signal stack, with the running context's six arguments; faults
 * while copying program memory are caught (the handler sends them to systrap_ring_copy_fault).
 */
#include <stdint.h>
#include "sysmsg.h"
#include "stub_abi.h"
#include "raw_syscall.h"

#define STUB __attribute__((section("systrap_stub"), used, visibility("hidden")))
#define STUB_INLINE static inline __attribute__((always_inline))

#define SYS_futex 202
#define SYS_clock_gettime 228
#define FUTEX_WAIT 0
#define FUTEX_WAKE 1
#define CLOCK_MONOTONIC 1
#define O_NONBLOCK 04000u
#define O_DIRECTORY 0200000u
#define O_PATH 010000000u
#define MAP_FIXED 0x10u
#define F_SETFL 4u
#define F_DUPFD_CLOEXEC 1030u
#define F_SETPIPE_SZ 1031u
#define F_GETPIPE_SZ 1032u

/* The assembly below (hidden: calls stay PC-relative inside the copied section). */
long systrap_ring_syscall(long nr, long a0, long a1, long a2, long a3, long a4, long a5) __attribute__((visibility("hidden")));
long systrap_ring_copy(void* dst, const void* src, uint64_t n) __attribute__((visibility("hidden")));
long systrap_ring_strlen(const void* src, uint64_t max) __attribute__((visibility("hidden")));

/*
 * systrap_ring_syscall(nr, a0..a5): the call, made from the one `syscall` instruction whose
 * return address (systrap_ring_syscall_ret) the program's filter judges as the gadget's (the
 * sentry's own calls trap there, the stub's fds and Node stay out of reach). The program can
 * jump here itself: it gains nothing the gadget does not give it already.
 *
 * systrap_ring_copy(dst, src, n) -> n, and systrap_ring_strlen(src, max) -> the length with its
 * NUL (max when there is none within it): both read program memory, and a fault of theirs
 * (another thread unmapped it, a bad pointer) makes the handler resume at
 * systrap_ring_copy_fault, which returns -1 (neither pushes anything: `ret` finds the caller).
 */
__asm__(
    ".pushsection systrap_stub,\"ax\",@progbits\n"
    ".globl systrap_ring_syscall, systrap_ring_syscall_ret\n"
    ".hidden systrap_ring_syscall, systrap_ring_syscall_ret\n"
    "systrap_ring_syscall:\n"
    "  mov %rdi, %rax\n"
    "  mov %rsi, %rdi\n"
    "  mov %rdx, %rsi\n"
    "  mov %rcx, %rdx\n"
    "  mov %r8, %r10\n"
    "  mov %r9, %r8\n"
    "  mov 8(%rsp), %r9\n"
    "  syscall\n"
    "systrap_ring_syscall_ret:\n"
    "  ret\n"
    ".globl systrap_ring_copy_start, systrap_ring_copy, systrap_ring_strlen, systrap_ring_copy_end, systrap_ring_copy_fault\n"
    ".hidden systrap_ring_copy_start, systrap_ring_copy, systrap_ring_strlen, systrap_ring_copy_end, systrap_ring_copy_fault\n"
    "systrap_ring_copy_start:\n"
    "systrap_ring_copy:\n"
    "  cld\n"
    "  mov %rdx, %rcx\n"
    "  mov %rdx, %rax\n"
    "  rep movsb\n"
    "  ret\n"
    "systrap_ring_strlen:\n"
    "  xor %eax, %eax\n"
    "1:\n"
    "  cmp %rsi, %rax\n"
    "  jae 2f\n"
    "  cmpb $0, (%rdi,%rax)\n"
    "  lea 1(%rax), %rax\n"
    "  jne 1b\n"
    "2:\n"
    "  ret\n"
    "systrap_ring_copy_end:\n"
    "systrap_ring_copy_fault:\n"
    "  mov $-1, %rax\n"
    "  ret\n"
    ".popsection\n");

STUB_INLINE uint64_t ring_now(void) {
  int64_t ts[2];
  ts[0] = ts[1] = 0;
  if (systrap_ring_syscall(SYS_clock_gettime, CLOCK_MONOTONIC, (long)ts, 0, 0, 0, 0) != 0) return 0;
  return (uint64_t)ts[0] * 1000000000ull + (uint64_t)ts[1];
}

/* [addr, addr + len) clear of the stub region, exactly as the filter's `clearOf` computes it
 * (src/abi/seccomp.ts): the ring's `syscall` passes then, where a memory call touching the
 * region would trap (and a trap there, in the handler, would be the stub's death). */
STUB_INLINE int clear_of_stub(uintptr_t base, uint64_t addr, uint64_t len) {
  uint64_t end = (uint64_t)base + STUB_REGION_SIZE;
  if (len == 0 || addr >= end) return 1;
  uint64_t sum = addr + len;
  return sum >= addr && sum <= (uint64_t)base;
}

/* Whether the call goes through the ring with these arguments (see TRACE_WHEN_*): never one
 * that can wait, for a wait here could not be interrupted the way the program expects, nor one
 * the filter would trap at the ring's `syscall`. */
STUB_INLINE int when_holds(uintptr_t base, uint32_t e, const uint64_t* a) {
  uint32_t when = (e >> 24) & 15u, arg = (e >> 28) & 7u;
  if (when == TRACE_WHEN_ALWAYS) return 1;
  if (arg > 4) return 0;
  uint64_t v = a[arg];
  if (when == TRACE_WHEN_NONBLOCKING_OPEN) return (v & (O_NONBLOCK | O_DIRECTORY | O_PATH)) != 0;
  if (when == TRACE_WHEN_PLAIN_FCNTL) return v <= F_SETFL || v == F_DUPFD_CLOEXEC || v == F_SETPIPE_SZ || v == F_GETPIPE_SZ;
  if (when == TRACE_WHEN_CLEAR) return clear_of_stub(base, v, a[arg + 1]);
  if (when == TRACE_WHEN_MMAP) return (a[3] & MAP_FIXED) == 0 || clear_of_stub(base, v, a[arg + 1]);
  return 0;
}

/* Bytes an out capture of `kind` takes after a call that returned `ret` (0: nothing to copy). */
STUB_INLINE uint32_t out_len(uint32_t kind, int64_t ret, uint32_t cap) {
  if (kind == TRACE_CAPTURE_OUT_RET) return ret <= 0 ? 0 : (uint64_t)ret < cap ? (uint32_t)ret : cap;
  if (ret != 0) return 0;
  if (kind == TRACE_CAPTURE_STAT) return 144;
  if (kind == TRACE_CAPTURE_STATX) return 256;
  if (kind == TRACE_CAPTURE_UTSNAME) return 390;
  if (kind == TRACE_CAPTURE_STATFS) return 120;
  if (kind == TRACE_CAPTURE_FDS) return 8;
  if (kind == TRACE_CAPTURE_SYSINFO) return 112;
  return 0;
}

/* The sentry's doorbell (as for a published trap): it drains the ring when it looks. */
STUB_INLINE void ring_bell(uintptr_t base) {
  struct context_queue* q = (struct context_queue*)(base + STUB_QUEUE_OFFSET);
  __atomic_add_fetch(&q->num_published, 1, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(&q->num_sentry_waiters, __ATOMIC_SEQ_CST) != 0) raw_syscall(SYS_futex, (long)&q->num_published, FUTEX_WAKE, 1, 0, 0, 0);
}

/* The ring is full: wait for the sentry to drain it (never drop a record). The sentry wakes
 * every waiter after it moves tail, when it sees waiters, and at least every 20 ms (a program
 * that writes over these words must not make its threads wait forever); counting ourselves
 * first makes its check see us. The doorbell rings once per call: a tail the program keeps
 * changing ends each wait at once, and must not keep the sentry turning. */
STUB_INLINE void ring_wait(uintptr_t base, volatile struct trace_ring* r, uint32_t tail, int first) {
  __atomic_add_fetch(&r->waiters, 1, __ATOMIC_SEQ_CST);
  if (first) {
    __atomic_add_fetch(&r->full_waits, 1, __ATOMIC_RELAXED);
    ring_bell(base);
  }
  if (__atomic_load_n(&r->tail, __ATOMIC_SEQ_CST) == tail) raw_syscall(SYS_futex, (long)&r->tail, FUTEX_WAIT, tail, 0, 0, 0);
  __atomic_sub_fetch(&r->waiters, 1, __ATOMIC_SEQ_CST);
}

/*
 * Makes call `nr` with arguments `a` and records it, if the spec puts it through the ring:
 * then returns 1 with its result in *out. Returns 0 without making it otherwise (the caller
 * publishes the trap as before). `context` is the running ThreadContext's id; `site` the
 * program's rip past its `syscall` if the call came by a signal, else 0.
 */
STUB int systrap_ring_call(uintptr_t base, uint32_t context, uint64_t nr, const uint64_t* a, uint64_t site, int64_t* out) {
  const volatile struct trace_spec* spec = (const volatile struct trace_spec*)(base + STUB_RULES_OFFSET + STUB_TRACE_SPEC_OFFSET);
  if (spec->magic != TRACE_SPEC_MAGIC || nr >= TRACE_SPEC_CALLS) return 0;
  uint32_t e = spec->calls[nr];
  if (!when_holds(base, e, a)) return 0;
  uint32_t data = spec->data_size;
  if (data < 4096 || data > STUB_TRACE_RING_DATA || (data & (data - 1)) != 0) return 0;
  int times = (spec->flags & TRACE_SPEC_TIMES) != 0;
  uint64_t t0 = times ? ring_now() : 0;
  int64_t ret = systrap_ring_syscall((long)nr, (long)a[0], (long)a[1], (long)a[2], (long)a[3], (long)a[4], (long)a[5]);
  uint64_t t1 = times ? ring_now() : 0;
  *out = ret;

  /* The record's size: the header, then each capture's header and bytes. */
  uint32_t cap = data / 4;
  uint32_t len[6];
  uint32_t size = sizeof(struct trace_record);
  for (int i = 0; i < 6; i++) {
    uint32_t kind = (e >> (4 * i)) & 15u;
    len[i] = 0;
    if (kind == TRACE_CAPTURE_NONE || a[i] == 0) continue;
    if (kind == TRACE_CAPTURE_STR) {
      long n = systrap_ring_strlen((const void*)a[i], cap < TRACE_STR_MAX ? cap : TRACE_STR_MAX);
      len[i] = n > 0 ? (uint32_t)n : 0;
    } else {
      len[i] = out_len(kind, ret, cap < TRACE_OUT_MAX ? cap : TRACE_OUT_MAX);
    }
    if (len[i]) size += sizeof(struct trace_capture) + ((len[i] + 7u) & ~7u);
  }
  if (size > data / 2) {
    for (int i = 0; i < 6; i++) len[i] = 0;
    size = sizeof(struct trace_record);
  }

  /* Room: a CAS on head claims it (with a pad record first when it would cross the end). */
  volatile struct trace_ring* r = (volatile struct trace_ring*)(base + STUB_TRACE_RING_OFFSET);
  uint32_t head, pad;
  int bell;
  for (int waits = 0;;) {
    head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
    uint32_t tail = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
    uint32_t used = head - tail;
    if (((head | tail) & 7u) != 0 || used > data) {
      /* Written over by the program: not recorded, no wait (the sentry puts head back). */
      __atomic_add_fetch(&r->lost, 1, __ATOMIC_RELAXED);
      return 1;
    }
    uint32_t off = head & (data - 1);
    pad = off + size > data ? data - off : 0;
    if (used + pad + size > data) {
      ring_wait(base, r, tail, waits++ == 0);
      continue;
    }
    if (__atomic_compare_exchange_n(&r->head, &head, head + pad + size, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
      /* Half full: the sentry is told at once rather than at its next look. */
      bell = used < data / 2 && used + pad + size >= data / 2;
      break;
    }
  }
  uint8_t* d = (uint8_t*)(uintptr_t)r + 4096;
  if (pad) {
    volatile struct trace_record* p = (volatile struct trace_record*)(d + (head & (data - 1)));
    p->size = pad;
    __atomic_store_n(&p->kind, TRACE_RECORD_PAD, __ATOMIC_RELEASE);
  }
  volatile struct trace_record* rec = (volatile struct trace_record*)(d + ((head + pad) & (data - 1)));
  rec->size = size;
  rec->context = context;
  rec->sysno = (uint32_t)nr;
  for (int i = 0; i < 6; i++) rec->args[i] = a[i];
  rec->ret = ret;
  rec->entry_ns = t0;
  rec->exit_ns = t1;
  rec->site = site;
  uint8_t* p = (uint8_t*)(uintptr_t)(rec + 1);
  for (int i = 0; i < 6; i++) {
    if (!len[i]) continue;
    volatile struct trace_capture* c = (volatile struct trace_capture*)p;
    uint32_t room = (len[i] + 7u) & ~7u;
    long n = systrap_ring_copy(p + sizeof(struct trace_capture), (const void*)a[i], len[i]);
    c->addr = a[i];
    c->len = n < 0 ? 0 : len[i];
    c->room = room;
    if (n < 0) __atomic_add_fetch(&r->faults, 1, __ATOMIC_RELAXED);
    p += sizeof(struct trace_capture) + room;
  }
  __atomic_store_n(&rec->kind, TRACE_RECORD_CALL, __ATOMIC_RELEASE);
  __atomic_add_fetch(&r->records, 1, __ATOMIC_RELAXED);
  if (bell) ring_bell(base);
  return 1;
}
