/*
 * The sysmsg signal handler (gVisor's sighandler_amd64.c role), freestanding: it runs inside
 * stub threads whose address space holds only the stub region and application memory. Built
 * with -ffreestanding -fno-stack-protector -mgeneral-regs-only, no libc, no data, and placed in
 * section systrap_stub, which is copied as a whole into the stub region (all calls are
 * PC-relative inside it).
 *
 * On a trap the handler saves the application's registers and FP state into the running
 * context's ThreadContext, publishes the new state and wakes the sentry; then it takes the next
 * context from the shared queue (sleeping on numThreadsToWakeup when there is none), loads that
 * context's registers (and FP state, if it last ran elsewhere) into the signal frame and returns
 * into them. gVisor's stub fast path is here too: before sleeping, a thread spins for the
 * context it just published to come straight back (direct resume, see direct_wait) and
 * for new contexts in the queue (QUEUE_SPIN_CYCLES).
 */
#include <stdint.h>
#include "sysmsg.h"
#include "stub_abi.h"
#include "raw_syscall.h"
#include "sysmsg_asm.h"

#define STUB __attribute__((section("systrap_stub"), used, visibility("hidden")))
#define STUB_INLINE static inline __attribute__((always_inline))

#define SYS_futex 202
#define SYS_arch_prctl 158
#define SYS_getgroups 115
#define SYS_setgroups 116
#define SYS_setresuid 117
#define SYS_getresuid 118
#define SYS_setresgid 119
#define SYS_getresgid 120
#define SYS_setfsuid 122
#define SYS_setfsgid 123
#define SYS_setpriority 141
#define SYS_sched_setaffinity 203
#define SYS_prlimit64 302
#define SYS_capset 126
#define SYS_prctl 157
#define PR_SET_KEEPCAPS 8
#define LINUX_CAPABILITY_VERSION_3 0x20080522
#define PRIO_PROCESS 0
#define SYS_rt_sigreturn 15
#define FUTEX_WAIT 0
#define FUTEX_WAKE 1
#define ARCH_SET_FS 0x1002
#define ARCH_GET_FS 0x1003
#define SIGSYS 31
#define SIGSEGV 11
#define SIGCHLD 17
#define SIGILL 4
#define SIGBUS 7
#define SIGFPE 8
#define SIGTRAP 5
#define ENOSYS 38

/* The kernel's x86-64 ucontext / sigcontext (asm/sigcontext.h, asm/ucontext.h). */
struct k_sigcontext {
  uint64_t r8, r9, r10, r11, r12, r13, r14, r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, eflags;
  uint16_t cs, gs, fs, ss;
  uint64_t err, trapno, oldmask, cr2, fpstate, reserved[8];
};
struct k_ucontext {
  uint64_t uc_flags, uc_link;
  uint64_t ss_sp;
  int32_t ss_flags, pad;
  uint64_t ss_size;
  struct k_sigcontext mc;
};

/* user_regs_struct indices (ThreadContext.regs). */
enum { R15, R14, R13, R12, RBP, RBX, R11, R10, R9, R8, RAX, RCX, RDX, RSI, RDI, ORIG_RAX, RIP, CS, EFLAGS, RSP, SS, FS_BASE, GS_BASE, DS, ES, FS, GS };

_Static_assert(__builtin_offsetof(struct sysmsg, ret_addr) == MSG_RET_ADDR, "sysmsg_asm.h");
_Static_assert(__builtin_offsetof(struct sysmsg, syshandler) == MSG_SYSHANDLER, "sysmsg_asm.h");
_Static_assert(__builtin_offsetof(struct sysmsg, syshandler_stack) == MSG_SYSHANDLER_STACK, "sysmsg_asm.h");
_Static_assert(__builtin_offsetof(struct context_queue, xsaveopt) == Q_XSAVEOPT, "sysmsg_asm.h");
_Static_assert(__builtin_offsetof(struct sysmsg, app_stack) == MSG_APP_STACK, "sysmsg_asm.h");
_Static_assert(__builtin_offsetof(struct sysmsg, state) == MSG_STATE, "sysmsg_asm.h");
_Static_assert(__builtin_offsetof(struct sysmsg, context) == MSG_CONTEXT, "sysmsg_asm.h");
_Static_assert(__builtin_offsetof(struct thread_context, fpstate) == TC_FPSTATE, "sysmsg_asm.h");
_Static_assert(__builtin_offsetof(struct thread_context, regs) == TC_REGS, "sysmsg_asm.h");
_Static_assert(THREAD_STATE_NONE == THREAD_STATE_NONE_ASM, "sysmsg_asm.h");

/* The Msg of the current thread, found from the stack pointer: per-thread areas are aligned to
 * their size and the Msg is their last page. */
STUB_INLINE struct sysmsg* sysmsg_addr(void) {
  uintptr_t sp;
  __asm__("mov %%rsp, %0" : "=r"(sp));
  return (struct sysmsg*)((sp & ~(uintptr_t)(STUB_PER_THREAD_MEM_SIZE - 1)) + STUB_PER_THREAD_MEM_SIZE - 4096);
}

STUB_INLINE void crash(void) {
  /* A write below 4096 faults with the signal blocked: the kernel kills the thread, whose exit
   * signal kills the stub; the sentry sees ESTUBDEAD. */
  __asm__ volatile("movl $0, 0x10" ::: "memory");
}

/* FS base: rdfsbase/wrfsbase when the kernel allows them in user mode (the sentry says so in the
 * queue), else arch_prctl. A wrong flag (the application can write the queue) only costs the
 * stub a SIGILL, that is its own death. */
STUB_INLINE uint64_t get_fs(struct context_queue* q) {
  uint64_t fs = 0;
  if (__atomic_load_n(&q->fsgsbase, __ATOMIC_RELAXED)) __asm__ volatile("rdfsbase %0" : "=r"(fs));
  else raw_syscall(SYS_arch_prctl, ARCH_GET_FS, (long)&fs, 0, 0, 0, 0);
  return fs;
}

STUB_INLINE void set_fs(struct context_queue* q, uint64_t fs) {
  if (__atomic_load_n(&q->fsgsbase, __ATOMIC_RELAXED)) __asm__ volatile("wrfsbase %0" ::"r"(fs) : "memory");
  else raw_syscall(SYS_arch_prctl, ARCH_SET_FS, (long)fs, 0, 0, 0, 0);
}

STUB_INLINE void save_regs(struct context_queue* q, struct thread_context* ctx, struct k_ucontext* uc) {
  struct k_sigcontext* m = &uc->mc;
  uint64_t* r = ctx->regs;
  r[R15] = m->r15; r[R14] = m->r14; r[R13] = m->r13; r[R12] = m->r12; r[RBP] = m->rbp; r[RBX] = m->rbx;
  r[R11] = m->r11; r[R10] = m->r10; r[R9] = m->r9; r[R8] = m->r8; r[RAX] = m->rax; r[RCX] = m->rcx;
  r[RDX] = m->rdx; r[RSI] = m->rsi; r[RDI] = m->rdi; r[RIP] = m->rip; r[EFLAGS] = m->eflags; r[RSP] = m->rsp;
  r[CS] = m->cs; r[SS] = m->ss;
  r[FS_BASE] = get_fs(q);
}

STUB_INLINE void load_regs(struct context_queue* q, struct thread_context* ctx, struct k_ucontext* uc) {
  struct k_sigcontext* m = &uc->mc;
  const uint64_t* r = ctx->regs;
  m->r15 = r[R15]; m->r14 = r[R14]; m->r13 = r[R13]; m->r12 = r[R12]; m->rbp = r[RBP]; m->rbx = r[RBX];
  m->r11 = r[R11]; m->r10 = r[R10]; m->r9 = r[R9]; m->r8 = r[R8]; m->rax = r[RAX]; m->rcx = r[RCX];
  m->rdx = r[RDX]; m->rsi = r[RSI]; m->rdi = r[RDI]; m->rip = r[RIP]; m->rsp = r[RSP];
  /* The application may not change privileged flags; the kernel masks them on sigreturn. */
  m->eflags = r[EFLAGS];
  if (get_fs(q) != r[FS_BASE]) set_fs(q, r[FS_BASE]);
}

/* The region's first byte: the section is copied to the region start, and this reference is
 * PC-relative (hidden symbol), so it still points at the section's start after the copy. */
extern const char __start_systrap_stub[] __attribute__((visibility("hidden")));

STUB_INLINE uintptr_t region_base(void) { return (uintptr_t)__start_systrap_stub; }

/* FP state of a signal frame: an XSAVE (or FXSAVE) image whose software-reserved bytes say
 * how long it is (struct _fpx_sw_bytes at offset 464, magic1 0x46505853). */
STUB_INLINE uint32_t fp_len(const uint8_t* fp) {
  const uint32_t* sw = (const uint32_t*)(fp + 464);
  uint32_t len = sw[0] == 0x46505853u ? sw[4] : 512;
  return len > MAX_FPSTATE_LEN ? 0 : len;
}

STUB_INLINE void copy64(volatile uint64_t* dst, const volatile uint64_t* src, uint32_t bytes) {
  for (uint32_t i = 0; i < bytes / 8; i++) dst[i] = src[i];
}

STUB_INLINE void futex_wake(uint32_t* addr) { raw_syscall(SYS_futex, (long)addr, FUTEX_WAKE, 1, 0, 0, 0); }
STUB_INLINE void futex_wait(uint32_t* addr, uint32_t val) { raw_syscall(SYS_futex, (long)addr, FUTEX_WAIT, val, 0, 0, 0); }

/* Hands a trapped context to the sentry: its new state (a syscall's arguments, rip and rsp
 * copied to the call line), the doorbell rung. The caller says
 * whether it still counts as active (see publish, publish_and_wait), and what
 * sentry_fast_path says meanwhile (`direct`: the token | DIRECT_SPINNING, or 0 to leave it).
 * The handshake line's words are written last and together: the sentry spins reading that
 * line, and each store of ours it sees alone costs the line one more trip between CPUs. */
STUB_INLINE void publish_state(struct context_queue* q, struct sysmsg* msg, struct thread_context* ctx, uint32_t state, uint32_t direct) {
  ctx->last_thread_id = msg->thread_id;
  ctx->thread_id = INVALID_THREAD_ID;
  if (state == CONTEXT_STATE_SYSCALL || state == CONTEXT_STATE_SYSCALL_TRAP) {
    const uint64_t* r = ctx->regs;
    ctx->call_args_hi[0] = r[R8]; ctx->call_args_hi[1] = r[R9];
    ctx->call_rsp = r[RSP];
    ctx->call_args[0] = r[RDI]; ctx->call_args[1] = r[RSI]; ctx->call_args[2] = r[RDX];
    ctx->call_args[3] = r[R10];
    ctx->call_rip = r[RIP];
  }
  int32_t sysno = (int32_t)ctx->regs[ORIG_RAX];
  /* Ordered before the state (x86 keeps stores in order; the release stores tell the compiler
   * so): a sentry that sees the state sees these. */
  if (direct) __atomic_store_n(&ctx->sentry_fast_path, direct, __ATOMIC_RELEASE);
  __atomic_store_n(&ctx->fast_sysno, sysno, __ATOMIC_RELEASE);
  __atomic_store_n(&ctx->state, state, __ATOMIC_RELEASE);
  /* One doorbell per stub: the sentry waits on it for all its contexts at once. The wake is a
   * syscall: make it only when a sentry thread sleeps (it counts itself in num_sentry_waiters
   * before it re-reads the doorbell; both sides are sequentially consistent, so either it sees
   * this bump or this load sees it). */
  __atomic_add_fetch(&q->num_published, 1, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(&q->num_sentry_waiters, __ATOMIC_SEQ_CST) != 0) futex_wake(&q->num_published);
}

/* Publishes `ctx` (see publish_state): from now on it is the sentry's, no longer an active
 * context of this stub until the sentry queues it again (which counts it back). */
STUB_INLINE void publish(struct context_queue* q, struct sysmsg* msg, struct thread_context* ctx, uint32_t state) {
  __atomic_sub_fetch(&q->num_active_contexts, 1, __ATOMIC_ACQ_REL);
  publish_state(q, msg, ctx, state, 0);
}

/* Takes the oldest context from the queue, or 0 (gVisor's queue_get_context). Entries are
 * (index << 32) | id; a consumer claims an entry by swapping it to INVALID, then moves start. */
STUB_INLINE struct thread_context* queue_get(struct context_queue* q, uintptr_t base) {
  for (;;) {
    uint32_t start = __atomic_load_n(&q->start, __ATOMIC_ACQUIRE);
    uint32_t end = __atomic_load_n(&q->end, __ATOMIC_ACQUIRE);
    if (start == end) return 0;
    uint64_t* slot = &q->ringbuffer[start % CONTEXT_QUEUE_SIZE];
    uint64_t v = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if ((uint32_t)(v >> 32) != start || (uint32_t)v == INVALID_CONTEXT_ID) {
      __asm__ volatile("pause");
      continue;
    }
    if (!__atomic_compare_exchange_n(slot, &v, (uint64_t)INVALID_CONTEXT_ID, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) continue;
    __atomic_add_fetch(&q->start, 1, __ATOMIC_ACQ_REL);
    uint32_t id = (uint32_t)v;
    if (id >= MAX_GUEST_CONTEXTS) crash();
    return (struct thread_context*)(base + STUB_CONTEXTS_OFFSET + (uintptr_t)id * ALLOCATED_SIZEOF_THREAD_CONTEXT);
  }
}

/* Waits for a context to run (gVisor's get_context, without the spinning fast path): take one
 * from the queue, else sleep on numThreadsToWakeup until the sentry hands out a token. A context
 * interrupted while it waited in the queue goes straight back as a SIGCHLD fault. */
STUB_INLINE uint64_t rdtsc(void) {
  uint32_t lo, hi;
  __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
  return ((uint64_t)hi << 32) | lo;
}

/* The fast path (gVisor's get_context_fast, simplified): spin on the queue for a while before
 * sleeping, unless the sentry disabled it (one CPU) or more threads are awake than contexts. */
STUB_INLINE struct thread_context* queue_spin(struct context_queue* q, uintptr_t base) {
  if (__atomic_load_n(&q->fast_path_disabled, __ATOMIC_RELAXED)) return 0;
  uint64_t start = rdtsc();
  for (;;) {
    struct thread_context* ctx = queue_get(q, base);
    if (ctx) return ctx;
    if (rdtsc() - start > QUEUE_SPIN_CYCLES) return 0;
    if (__atomic_load_n(&q->num_active_threads, __ATOMIC_RELAXED) > __atomic_load_n(&q->num_awake_contexts, __ATOMIC_RELAXED) + 1) return 0;
    __asm__ volatile("pause");
  }
}

STUB_INLINE struct thread_context* get_context(struct context_queue* q, struct sysmsg* msg, uintptr_t base) {
  for (;;) {
    struct thread_context* ctx = queue_get(q, base);
    if (!ctx) ctx = queue_spin(q, base);
    if (!ctx) {
      __atomic_sub_fetch(&q->num_active_threads, 1, __ATOMIC_ACQ_REL);
      __atomic_store_n(&msg->state, THREAD_STATE_ASLEEP, __ATOMIC_RELEASE);
      /* Re-check after leaving the active count: the sentry kicks only when active threads are
       * fewer than active contexts, so a context queued meanwhile is ours to see. */
      ctx = queue_get(q, base);
      if (!ctx) {
        for (;;) {
          uint32_t t = __atomic_load_n(&q->num_threads_to_wakeup, __ATOMIC_ACQUIRE);
          if (t > 0 && __atomic_compare_exchange_n(&q->num_threads_to_wakeup, &t, t - 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) break;
          if (t == 0) futex_wait(&q->num_threads_to_wakeup, 0);
        }
      }
      __atomic_add_fetch(&q->num_active_threads, 1, __ATOMIC_ACQ_REL);
      __atomic_store_n(&msg->state, THREAD_STATE_PREP, __ATOMIC_RELEASE);
      if (!ctx) continue;
    }
    if (__atomic_exchange_n(&ctx->interrupt, 0, __ATOMIC_ACQ_REL)) {
      ctx->signo = SIGCHLD;
      ctx->regs[ORIG_RAX] = (uint64_t)-1;
      publish(q, msg, ctx, CONTEXT_STATE_FAULT);
      continue;
    }
    return ctx;
  }
}

/* Whether `v` (ThreadContext.sentry_fast_path) hands `ctx` back to this thread; for
 * DIRECT_RESUMED_RAX, the call's result is moved from the handshake line into its registers. */
STUB_INLINE int direct_taken(struct thread_context* ctx, uint32_t v, uint32_t token) {
  if (v == (token | DIRECT_RESUMED)) return 1;
  if (v != (token | DIRECT_RESUMED_RAX)) return 0;
  ctx->regs[RAX] = __atomic_load_n(&ctx->fast_rax, __ATOMIC_RELAXED);
  return 1;
}

/* Waits (spinning, ~QUEUE_SPIN_CYCLES) for the sentry to resume `ctx` directly: it swaps
 * sentry_fast_path from DIRECT_SPINNING to DIRECT_RESUMED (or DIRECT_RESUMED_RAX) after writing
 * the context's registers (or the result in fast_rax) and state. Gives up when time runs out or
 * other contexts wait in the queue (this thread is needed there); whoever wins the swap decides:
 * the sentry then queues the context instead. Returns 1 if the context is this thread's to run
 * now. */
STUB_INLINE int direct_wait(struct context_queue* q, struct sysmsg* msg, struct thread_context* ctx, uint32_t token) {
  uint64_t start = rdtsc();
  for (;;) {
    uint32_t v = __atomic_load_n(&ctx->sentry_fast_path, __ATOMIC_SEQ_CST);
    if (direct_taken(ctx, v, token)) break;
    int give_up = rdtsc() - start > QUEUE_SPIN_CYCLES ||
                  __atomic_load_n(&q->start, __ATOMIC_RELAXED) != __atomic_load_n(&q->end, __ATOMIC_RELAXED);
    if (give_up) {
      uint32_t expect = token | DIRECT_SPINNING;
      /* Lost when this swap wins, or when the word is neither ours spinning nor ours resumed
       * (another stub's, or scribbled on): the queue then. */
      int lost = __atomic_compare_exchange_n(&ctx->sentry_fast_path, &expect, DIRECT_NONE, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST) ||
                 !direct_taken(ctx, expect, token);
      if (!lost) break;
      /* The sentry will queue the context (and count it active again): not active meanwhile. */
      __atomic_sub_fetch(&q->num_active_contexts, 1, __ATOMIC_ACQ_REL);
      return 0;
    }
    __asm__ volatile("pause");
  }
  /* sentry_fast_path keeps the RESUMED value: no store of ours to the handshake line between the
   * resume and the next publish (which sets SPINNING), so the line the sentry reads meanwhile
   * stays shared. A stale RESUMED is never taken for a resume: a thread waits only after its
   * publish wrote SPINNING, and the sentry's swap expects SPINNING (else it queues). */
  /* Looked at before it is taken: no locked write to the handshake line when it is clear (one
   * set after this look is seen by resume_at_once or, past it, sends this thread to the kick). */
  if (__atomic_load_n(&ctx->interrupt, __ATOMIC_ACQUIRE) && __atomic_exchange_n(&ctx->interrupt, 0, __ATOMIC_ACQ_REL)) {
    /* Interrupted meanwhile: straight back, as from the queue. */
    ctx->signo = SIGCHLD;
    ctx->regs[ORIG_RAX] = (uint64_t)-1;
    publish(q, msg, ctx, CONTEXT_STATE_FAULT);
    return 0;
  }
  return 1;
}

/* This thread's credentials are the process's: groups and gids first (they need the privilege
 * a uid change may drop), then uids. Nothing is changed when they already match. */
STUB_INLINE int sync_creds(const struct task_attrs* a) {
  uint32_t r[3], e[3];
  if (raw_syscall(SYS_getresgid, (long)&r[0], (long)&r[1], (long)&r[2], 0, 0, 0) != 0) return -1;
  uint32_t groups[ATTR_GROUPS_MAX];
  long n = raw_syscall(SYS_getgroups, ATTR_GROUPS_MAX, (long)groups, 0, 0, 0, 0);
  int same_groups = n == (long)a->ngroups;
  for (long i = 0; same_groups && i < n; i++) same_groups = groups[i] == a->groups[i];
  if (!same_groups && raw_syscall(SYS_setgroups, a->ngroups, (long)a->groups, 0, 0, 0, 0) != 0) return -1;
  if ((r[0] != a->gid[0] || r[1] != a->gid[1] || r[2] != a->gid[2]) && raw_syscall(SYS_setresgid, a->gid[0], a->gid[1], a->gid[2], 0, 0, 0) != 0) return -1;
  raw_syscall(SYS_setfsgid, a->gid[3], 0, 0, 0, 0, 0);
  if (raw_syscall(SYS_getresuid, (long)&e[0], (long)&e[1], (long)&e[2], 0, 0, 0) != 0) return -1;
  if ((e[0] != a->uid[0] || e[1] != a->uid[1] || e[2] != a->uid[2]) && raw_syscall(SYS_setresuid, a->uid[0], a->uid[1], a->uid[2], 0, 0, 0) != 0) return -1;
  raw_syscall(SYS_setfsuid, a->uid[3], 0, 0, 0, 0, 0);
  return 0;
}

/* Takes on the process's task attributes (see struct task_attrs) when the sentry changed them
 * since this thread last looked. A change it cannot make (the values were scribbled on, or
 * this thread's privileges differ) ends the stub: running on with other credentials or limits
 * than the program set is worse. */
STUB_INLINE void sync_attrs(struct context_queue* q, struct sysmsg* msg) {
  uint32_t gen = __atomic_load_n(&q->attrs.gen, __ATOMIC_ACQUIRE);
  if (gen == msg->attrs_gen) return;
  const struct task_attrs* a = &q->attrs;
  uint32_t set = a->set;
  for (int r = 0; r < ATTR_RLIMITS; r++) {
    if (!(set & (1u << (ATTR_RLIMIT_SHIFT + r)))) continue;
    if (raw_syscall(SYS_prlimit64, 0, r, (long)a->rlimit[r], 0, 0, 0) != 0) crash();
  }
  if ((set & ATTR_NICE) && raw_syscall(SYS_setpriority, PRIO_PROCESS, 0, a->nice, 0, 0, 0) != 0) crash();
  if ((set & ATTR_AFFINITY) && (a->affinity_len > ATTR_AFFINITY_MAX || raw_syscall(SYS_sched_setaffinity, 0, a->affinity_len, (long)a->affinity, 0, 0, 0) != 0)) crash();
  /* Capabilities: kept across the uid change (keepcaps on for it), set, then keepcaps as the
   * process has it. keepcaps may be locked (a sandbox's securebits: no capability to keep). */
  int caps = (set & ATTR_CAPS) != 0;
  if (caps) raw_syscall(SYS_prctl, PR_SET_KEEPCAPS, 1, 0, 0, 0, 0);
  if ((set & ATTR_CREDS) && (a->ngroups > ATTR_GROUPS_MAX || sync_creds(a) != 0)) crash();
  if (caps) {
    uint32_t hdr[2] = {LINUX_CAPABILITY_VERSION_3, 0};
    uint32_t data[6] = {(uint32_t)a->caps[0], (uint32_t)a->caps[1], (uint32_t)a->caps[2],
                        (uint32_t)(a->caps[0] >> 32), (uint32_t)(a->caps[1] >> 32), (uint32_t)(a->caps[2] >> 32)};
    if (raw_syscall(SYS_capset, (long)hdr, (long)data, 0, 0, 0, 0) != 0) crash();
    raw_syscall(SYS_prctl, PR_SET_KEEPCAPS, a->keepcaps != 0, 0, 0, 0, 0);
  }
  msg->attrs_gen = gen;
}

/* The syshandler path's symbols (stub.S): its entry, its last jump into the program, and the
 * two ud2 through which it enters this handler. */
extern const char systrap_syshandler[] __attribute__((visibility("hidden")));
extern const char systrap_syshandler_jmp[] __attribute__((visibility("hidden")));
extern const char systrap_syshandler_resume[] __attribute__((visibility("hidden")));
extern const char systrap_syshandler_kick[] __attribute__((visibility("hidden")));
extern const char systrap_syshandler_ret_read[] __attribute__((visibility("hidden")));

/* The trace ring (trace_ring.c): an observed call made and recorded by this thread, and the
 * bounds of the copy routines whose faults are caught. */
int systrap_ring_call(uintptr_t base, uint32_t context, uint64_t nr, const uint64_t* a, uint64_t site, int64_t* out) __attribute__((visibility("hidden")));
extern const char systrap_ring_copy_start[] __attribute__((visibility("hidden")));
extern const char systrap_ring_copy_end[] __attribute__((visibility("hidden")));
extern const char systrap_ring_copy_fault[] __attribute__((visibility("hidden")));

/* A ThreadContext's id: its slot's index. */
STUB_INLINE uint32_t context_id(uintptr_t base, const struct thread_context* ctx) {
  return (uint32_t)(((uintptr_t)ctx - base - STUB_CONTEXTS_OFFSET) / ALLOCATED_SIZEOF_THREAD_CONTEXT);
}

#define SI_CODE_OFF 8
#define SI_SYSCALL_OFF 24
#define AUDIT_ARCH_X86_64 0xc000003eu
#define SYS_SECCOMP_CODE 1
#define DEFERRED_MAX 16u

/* A signal the kernel raised for the code that ran (a fault, a seccomp trap), rather than one
 * sent to the stub's process (si_code <= 0: kill, tgkill, sigqueue). */
STUB_INLINE int is_fault(int signo, const uint8_t* siginfo) {
  int32_t code = *(const volatile int32_t*)(siginfo + SI_CODE_OFF);
  return code > 0 && (signo == SIGSEGV || signo == SIGBUS || signo == SIGFPE || signo == SIGILL || signo == SIGTRAP || signo == SIGSYS);
}

/* Hands the sentry a signal sent to the stub's process that arrived while this thread ran the
 * syshandler path (state PREP, ASLEEP or RESUME outside this handler): there is no context to
 * publish it with, so it goes to this thread's Msg.deferred ring, which the sentry empties (see
 * src/sentry/kernel/deferredSignals.ts), and the sentry is woken as for a trap. Only this
 * thread's handler adds. A standard signal already there is not added twice (Linux keeps one of
 * each pending); with the ring full (sixteen signals within the sentry's reaction time) a
 * real-time one is dropped. */
STUB_INLINE void defer(struct context_queue* q, struct sysmsg* msg, int signo, const uint8_t* siginfo) {
  uint32_t head = __atomic_load_n(&msg->deferred_head, __ATOMIC_ACQUIRE);
  uint32_t tail = msg->deferred_tail;
  if (tail - head > DEFERRED_MAX) head = tail - DEFERRED_MAX; /* scribbled on: the ring as full */
  for (uint32_t i = head; i != tail; i++)
    if (signo < 32 && msg->deferred[i % DEFERRED_MAX].signo == signo) return;
  if (tail - head == DEFERRED_MAX) return;
  struct deferred_signal* d = &msg->deferred[tail % DEFERRED_MAX];
  d->signo = signo;
  for (int i = 0; i < 128; i++) ((volatile uint8_t*)d->info)[i] = siginfo[i];
  __atomic_store_n(&msg->deferred_tail, tail + 1, __ATOMIC_RELEASE);
  __atomic_add_fetch(&q->num_deferred, 1, __ATOMIC_SEQ_CST);
  __atomic_add_fetch(&q->num_published, 1, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(&q->num_sentry_waiters, __ATOMIC_SEQ_CST) != 0) futex_wake(&q->num_published);
}

/* Publishes `ctx`, whose registers are all in its slot (it is not running), with a signal, as
 * the handler publishes one that arrives while a context runs. */
STUB_INLINE void publish_signal(struct context_queue* q, struct sysmsg* msg, struct thread_context* ctx, int signo, const uint8_t* info) {
  for (int i = 0; i < 128; i++) ((volatile uint8_t*)ctx->siginfo)[i] = info[i];
  ctx->signo = signo;
  ctx->regs[ORIG_RAX] = (uint64_t)-1;
  ctx->sig_error = 0;
  publish(q, msg, ctx, CONTEXT_STATE_FAULT);
}

/* Direct resume (gVisor's stub fast path): the thread that published `ctx` waits a little for
 * this very context. Returns it when the sentry handed it back that way, else the next one. */
STUB_INLINE struct thread_context* publish_and_wait(struct context_queue* q, struct sysmsg* msg, uintptr_t base, struct thread_context* ctx, uint32_t state) {
  uint32_t token = __atomic_load_n(&q->direct_token, __ATOMIC_RELAXED) << 2;
  int spin = token != 0 && !__atomic_load_n(&q->fast_path_disabled, __ATOMIC_RELAXED);
  if (!spin) {
    publish(q, msg, ctx, state);
    return get_context(q, msg, base);
  }
  /* Published still counted active: a direct resume hands it straight back to this thread, and
   * neither side then touches num_active_contexts, a cache line both would otherwise move
   * across CPUs twice per call. direct_wait uncounts it when the queue takes over. */
  publish_state(q, msg, ctx, state, token | DIRECT_SPINNING);
  if (direct_wait(q, msg, ctx, token)) return ctx;
  return get_context(q, msg, base);
}

/*
 * The syshandler's way back into `next` (this thread's context, FS base in place): 0, its RIP in
 * Msg.ret_addr for the assembly's jump. An interrupt from the store on (its flag set, its
 * SIGCHLD postponed) finds the kick in Msg.ret_addr (see the handler); one before is seen here:
 * `next` goes back to the sentry at once, and the next context through the handler (1, state
 * RESUME, from `prev`'s FP state).
 */
STUB_INLINE long resume_at_once(struct context_queue* q, struct sysmsg* msg, uintptr_t base, struct thread_context* prev, struct thread_context* next) {
  __atomic_store_n(&msg->ret_addr, next->regs[RIP], __ATOMIC_RELAXED);
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  /* Loaded first: no locked write to the handshake line for the usual clear flag (one set after
   * the load has its SIGCHLD find the kick). */
  if (!__atomic_load_n(&next->interrupt, __ATOMIC_ACQUIRE) || !__atomic_exchange_n(&next->interrupt, 0, __ATOMIC_ACQ_REL)) return 0;
  publish_signal(q, msg, next, SIGCHLD, next->siginfo);
  next = get_context(q, msg, base);
  sync_attrs(q, msg);
  msg->context = (uint64_t)next;
  next->thread_id = msg->thread_id;
  msg->resume_prev = (uint64_t)prev;
  __atomic_store_n(&msg->state, THREAD_STATE_RESUME, __ATOMIC_RELEASE);
  return 1;
}

/*
 * The C part of systrap_syshandler (stub.S), for a call from a patched site: the context's
 * registers and FP state are saved, Msg.state is PREP. Publishes the call (state SYSCALL_TRAP,
 * otherwise as a SIGSYS trap) and picks what runs next. Returns 0 when that is the same context
 * with its FP state as this thread holds it: the assembly loads its registers and jumps to
 * Msg.ret_addr. Else 1, state RESUME: the assembly's ud2 enters the handler, which loads
 * Msg.context into a signal frame (FP state included) from Msg.resume_prev's.
 */
STUB long systrap_syshandler_c(void) {
  struct sysmsg* msg = sysmsg_addr();
  if (msg->self != (uint64_t)msg) crash();
  if (__atomic_load_n(&msg->state, __ATOMIC_ACQUIRE) != THREAD_STATE_PREP) crash();
  uintptr_t base = region_base();
  struct context_queue* q = (struct context_queue*)(base + STUB_QUEUE_OFFSET);
  struct thread_context* ctx = (struct thread_context*)msg->context;
  uint64_t nr = ctx->regs[ORIG_RAX];
  ctx->regs[RAX] = (uint64_t)-ENOSYS;
  ctx->regs[FS_BASE] = get_fs(q);
  ctx->fpstate_changed = 1;
  ctx->signo = SIGSYS;
  ctx->sig_error = 0;
  /* The siginfo seccomp's SIGSYS would carry (si_signo, si_errno, si_code, si_call_addr,
   * si_syscall, si_arch). */
  volatile uint8_t* si = ctx->siginfo;
  *(volatile int32_t*)(si + 0) = SIGSYS;
  *(volatile int32_t*)(si + 4) = 0;
  *(volatile int32_t*)(si + 8) = SYS_SECCOMP_CODE;
  *(volatile uint64_t*)(si + 16) = ctx->regs[RIP];
  *(volatile int32_t*)(si + 24) = (int32_t)nr;
  *(volatile uint32_t*)(si + 28) = AUDIT_ARCH_X86_64;
  struct thread_context* next;
  const uint64_t args[6] = {ctx->regs[RDI], ctx->regs[RSI], ctx->regs[RDX], ctx->regs[R10], ctx->regs[R8], ctx->regs[R9]};
  int64_t ret;
  if (systrap_ring_call(base, context_id(base, ctx), nr, args, 0, &ret)) {
    /* Made and recorded here (an observed call): on with the same context at once. */
    ctx->regs[RAX] = (uint64_t)ret;
    return resume_at_once(q, msg, base, ctx, ctx);
  }
  next = publish_and_wait(q, msg, base, ctx, CONTEXT_STATE_SYSCALL_TRAP);
  sync_attrs(q, msg);
  msg->context = (uint64_t)next;
  next->thread_id = msg->thread_id;
  if (next != ctx || next->fpstate_changed == 2) {
    msg->resume_prev = (uint64_t)ctx;
    __atomic_store_n(&msg->state, THREAD_STATE_RESUME, __ATOMIC_RELEASE);
    return 1;
  }
  if (get_fs(q) != next->regs[FS_BASE]) set_fs(q, next->regs[FS_BASE]);
  return resume_at_once(q, msg, base, ctx, next);
}

/* Entry: SA_SIGINFO handler on the alternate stack. */
STUB void systrap_sighandler(int signo, uint8_t* siginfo, struct k_ucontext* uc) {
  struct sysmsg* msg = sysmsg_addr();
  if (msg->self != (uint64_t)msg) crash();
  uintptr_t base = region_base();
  struct context_queue* q = (struct context_queue*)(base + STUB_QUEUE_OFFSET);
  uint32_t tstate = __atomic_load_n(&msg->state, __ATOMIC_ACQUIRE);
  uint8_t* frame_fp = (uint8_t*)uc->mc.fpstate;
  struct thread_context* prev = (struct thread_context*)msg->context;
  struct thread_context* next;
  uint64_t rip = uc->mc.rip;

  /* A fault of the trace ring's copy of program memory: the copy fails, nothing else. */
  if ((signo == SIGSEGV || signo == SIGBUS) && rip >= (uint64_t)systrap_ring_copy_start && rip < (uint64_t)systrap_ring_copy_end && is_fault(signo, siginfo)) {
    uc->mc.rip = (uint64_t)systrap_ring_copy_fault;
    return;
  }

  if (tstate == THREAD_STATE_PREP || tstate == THREAD_STATE_ASLEEP || tstate == THREAD_STATE_RESUME) {
    /* This thread was in the syshandler path (this handler blocks every signal it takes while
     * it runs, so it is not itself what was interrupted). */
    if (tstate == THREAD_STATE_RESUME && signo == SIGILL && rip == (uint64_t)systrap_syshandler_resume) {
      prev = (struct thread_context*)msg->resume_prev;
      next = (struct thread_context*)msg->context;
      __atomic_store_n(&msg->state, THREAD_STATE_PREP, __ATOMIC_RELEASE);
      goto run;
    }
    if (is_fault(signo, siginfo)) crash(); /* the stub's own code faulted */
    /* A signal for the program goes to the sentry; an interrupt (its flag is on the context)
     * was seen by direct_wait or get_context, or, past them, sends the syshandler's jump to
     * the kick. Not before the syshandler has read Msg.ret_addr as the program's RIP (in the
     * trampoline, outside the stub, or before systrap_syshandler_ret_read): the kick would be
     * taken for the program's RIP, and the flag is looked at later anyway. */
    int before_read = rip < (uint64_t)base || rip >= (uint64_t)base + STUB_RO_SIZE ||
                      (rip >= (uint64_t)systrap_syshandler && rip < (uint64_t)systrap_syshandler_ret_read);
    if (signo != SIGCHLD) defer(q, msg, signo, siginfo);
    else if (!before_read) __atomic_store_n(&msg->ret_addr, (uint64_t)systrap_syshandler_kick, __ATOMIC_RELAXED);
    return;
  }
  if (tstate == THREAD_STATE_NONE && (rip == (uint64_t)systrap_syshandler_jmp || rip == (uint64_t)systrap_syshandler_kick)) {
    /* The syshandler's last jump (or its kick): the context's registers are loaded from its
     * slot, which holds them all; the frame's are not the program's to save. */
    struct thread_context* ctx = prev;
    __atomic_store_n(&msg->state, THREAD_STATE_PREP, __ATOMIC_RELEASE);
    int sig = signo;
    if (rip == (uint64_t)systrap_syshandler_kick && signo == SIGILL) {
      if (!__atomic_exchange_n(&ctx->interrupt, 0, __ATOMIC_ACQ_REL)) {
        next = ctx; /* nothing after all: on with it */
        goto run;
      }
      sig = SIGCHLD;
    }
    publish_signal(q, msg, ctx, sig, siginfo);
    next = get_context(q, msg, base);
    goto run;
  }

  if (tstate != THREAD_STATE_INITIALIZING) {
    /* An interrupt (SIGCHLD) that arrives while this thread is between contexts is postponed:
     * the context's interrupt flag catches it when it is next picked. */
    if (signo == SIGCHLD && tstate != THREAD_STATE_NONE) return;
    if (signo == SIGSYS && tstate == THREAD_STATE_NONE && prev && is_fault(signo, siginfo) &&
        *(const volatile int32_t*)(siginfo + SI_SYSCALL_OFF) == (int32_t)uc->mc.rax) {
      /* An observed call this thread makes and records itself (trace_ring.c): back into the
       * program with its result, no round trip. Signals it blocks now come after it returns. */
      const uint64_t args[6] = {uc->mc.rdi, uc->mc.rsi, uc->mc.rdx, uc->mc.r10, uc->mc.r8, uc->mc.r9};
      int64_t ret;
      if (systrap_ring_call(base, context_id(base, prev), uc->mc.rax, args, rip, &ret)) {
        uc->mc.rax = (uint64_t)ret;
        return;
      }
    }
    __atomic_store_n(&msg->state, THREAD_STATE_PREP, __ATOMIC_RELEASE);
    struct thread_context* ctx = prev;
    save_regs(q, ctx, uc);
    if (frame_fp) {
      uint32_t len = fp_len(frame_fp);
      copy64((volatile uint64_t*)ctx->fpstate, (const volatile uint64_t*)frame_fp, len);
      ctx->fpstate_changed = len != 0;
    }
    for (int i = 0; i < 128; i++) ((volatile uint8_t*)ctx->siginfo)[i] = siginfo[i];
    ctx->signo = signo;
    uint32_t state;
    if (signo == SIGSYS) {
      ctx->regs[ORIG_RAX] = ctx->regs[RAX];
      ctx->regs[RAX] = (uint64_t)-ENOSYS;
      state = CONTEXT_STATE_SYSCALL;
    } else {
      ctx->regs[ORIG_RAX] = (uint64_t)-1;
      ctx->sig_error = signo == SIGSEGV && uc->mc.trapno == 14 ? uc->mc.err : 0;
      state = CONTEXT_STATE_FAULT;
    }
    next = publish_and_wait(q, msg, base, ctx, state);
    goto run;
  }
  /* This thread's first signal: its FP layout, as the kernel writes it in its signal frames,
   * is what the syshandler writes too (see systrap_syshandler). */
  for (int i = 0; i < 48; i++) msg->fpx_sw[i] = frame_fp && fp_len(frame_fp) > 512 ? frame_fp[464 + i] : 0;
  prev = 0;
  next = get_context(q, msg, base);
run:;
  sync_attrs(q, msg);
  struct thread_context* ctx = next;
  msg->context = (uint64_t)ctx;
  ctx->thread_id = msg->thread_id;
  /* The frame's FP state is the previous context's: load this one's unless it is the same, or
   * the sentry replaced it (fpstate_changed == 2: a signal frame returned, a new thread). */
  uint64_t changed = ctx->fpstate_changed;
  if (frame_fp && (ctx != prev ? changed != 0 : changed == 2)) {
    uint32_t len = fp_len(frame_fp);
    copy64((volatile uint64_t*)frame_fp, (const volatile uint64_t*)ctx->fpstate, len);
  }
  __atomic_store_n(&msg->state, THREAD_STATE_NONE, __ATOMIC_RELEASE);
  load_regs(q, ctx, uc);
}

/* The restorer (SA_RESTORER): the host vDSO is unmapped, so the stub brings its own. */
__asm__(
    ".pushsection systrap_stub,\"ax\",@progbits\n"
    ".globl systrap_restore_rt\n"
    ".hidden systrap_restore_rt\n"
    "systrap_restore_rt:\n"
    "  mov $15, %eax\n"
    "  syscall\n"
    "  ud2\n"
    ".popsection\n");

/* The passthrough gadget: the sentry points a trapped context's RIP here to have its syscall
 * executed by the stub on the program's behalf (registers as the program left them); the ud2
 * right after traps back (SIGILL at gadget+2) with the result in RAX. The seccomp filter of a
 * program allows syscalls whose return address is gadget+2, except those only the sentry may do. */
__asm__(
    ".pushsection systrap_stub,\"ax\",@progbits\n"
    ".globl systrap_syscall_gadget\n"
    ".hidden systrap_syscall_gadget\n"
    "systrap_syscall_gadget:\n"
    "  syscall\n"
    "  ud2\n"
    ".popsection\n");
