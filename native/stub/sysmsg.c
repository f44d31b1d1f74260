/*
 * The sysmsg signal handler (gVisor's sighandler_amd64.c role), freestanding: it runs inside
 * stub threads whose address space holds only the stub region and application memory. Built
 * with -ffreestanding -fno-stack-protector -mgeneral-regs-only, no libc, no data, and placed in
 * section systrap_stub, which is copied as a whole into the stub region (all calls are
 * PC-relative inside it).
 *
 * This first version runs one context per sysmsg thread at a time: on a trap the handler saves
 * the application's registers into the context's ThreadContext, publishes the new state, wakes
 * the sentry, and sleeps until the sentry hands it a context in state NONE (the same one, or
 * another one through Msg.context); then it loads that context's registers into the signal
 * frame and returns into them. The shared context queue comes next (see the issue note).
 */
#include <stdint.h>
#include "sysmsg.h"
#include "stub_abi.h"

#define STUB __attribute__((section("systrap_stub"), used, visibility("hidden")))
#define STUB_INLINE static inline __attribute__((always_inline))

#define SYS_futex 202
#define SYS_arch_prctl 158
#define SYS_rt_sigreturn 15
#define FUTEX_WAIT 0
#define FUTEX_WAKE 1
#define ARCH_SET_FS 0x1002
#define ARCH_GET_FS 0x1003
#define SIGSYS 31
#define SIGSEGV 11
#define ENOSYS 38
#define PER_THREAD_MEM_SIZE (32 * 1024)

STUB_INLINE long raw_syscall(long n, long a, long b, long c, long d, long e, long f) {
  long ret;
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9) : "rcx", "r11", "memory");
  return ret;
}

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

/* The Msg of the current thread, found from the stack pointer: per-thread areas are aligned to
 * their size and the Msg is their last page. */
STUB_INLINE struct sysmsg* sysmsg_addr(void) {
  uintptr_t sp;
  __asm__("mov %%rsp, %0" : "=r"(sp));
  return (struct sysmsg*)((sp & ~(uintptr_t)(PER_THREAD_MEM_SIZE - 1)) + PER_THREAD_MEM_SIZE - 4096);
}

STUB_INLINE void crash(void) {
  /* A write below 4096 faults with the signal blocked: the kernel kills the thread, whose exit
   * signal kills the stub; the sentry sees ESTUBDEAD. */
  __asm__ volatile("movl $0, 0x10" ::: "memory");
}

STUB_INLINE void save_regs(struct thread_context* ctx, struct k_ucontext* uc) {
  struct k_sigcontext* m = &uc->mc;
  uint64_t* r = ctx->regs;
  r[R15] = m->r15; r[R14] = m->r14; r[R13] = m->r13; r[R12] = m->r12; r[RBP] = m->rbp; r[RBX] = m->rbx;
  r[R11] = m->r11; r[R10] = m->r10; r[R9] = m->r9; r[R8] = m->r8; r[RAX] = m->rax; r[RCX] = m->rcx;
  r[RDX] = m->rdx; r[RSI] = m->rsi; r[RDI] = m->rdi; r[RIP] = m->rip; r[EFLAGS] = m->eflags; r[RSP] = m->rsp;
  r[CS] = m->cs; r[SS] = m->ss;
  uint64_t fs = 0;
  raw_syscall(SYS_arch_prctl, ARCH_GET_FS, (long)&fs, 0, 0, 0, 0);
  r[FS_BASE] = fs;
}

STUB_INLINE void load_regs(struct thread_context* ctx, struct k_ucontext* uc) {
  struct k_sigcontext* m = &uc->mc;
  const uint64_t* r = ctx->regs;
  m->r15 = r[R15]; m->r14 = r[R14]; m->r13 = r[R13]; m->r12 = r[R12]; m->rbp = r[RBP]; m->rbx = r[RBX];
  m->r11 = r[R11]; m->r10 = r[R10]; m->r9 = r[R9]; m->r8 = r[R8]; m->rax = r[RAX]; m->rcx = r[RCX];
  m->rdx = r[RDX]; m->rsi = r[RSI]; m->rdi = r[RDI]; m->rip = r[RIP]; m->rsp = r[RSP];
  /* The application may not change privileged flags; the kernel masks them on sigreturn. */
  m->eflags = r[EFLAGS];
  uint64_t fs = 0;
  raw_syscall(SYS_arch_prctl, ARCH_GET_FS, (long)&fs, 0, 0, 0, 0);
  if (fs != r[FS_BASE]) raw_syscall(SYS_arch_prctl, ARCH_SET_FS, (long)r[FS_BASE], 0, 0, 0, 0);
}

/* Entry: SA_SIGINFO handler on the alternate stack. */
STUB void systrap_sighandler(int signo, uint8_t* siginfo, struct k_ucontext* uc) {
  struct sysmsg* msg = sysmsg_addr();
  if (msg->self != (uint64_t)msg) crash();
  struct thread_context* ctx = (struct thread_context*)msg->context;

  if (__atomic_load_n(&msg->state, __ATOMIC_ACQUIRE) != THREAD_STATE_INITIALIZING) {
    save_regs(ctx, uc);
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
    ctx->last_thread_id = msg->thread_id;
    ctx->thread_id = INVALID_THREAD_ID;
    __atomic_store_n(&ctx->state, state, __ATOMIC_RELEASE);
    raw_syscall(SYS_futex, (long)&ctx->state, FUTEX_WAKE, 1, 0, 0, 0);
  }

  /* Wait for the sentry to hand a context to run (state NONE). The sentry may give this thread
   * another context meanwhile (Msg.context changes, then it wakes the old state word), so the
   * context is read again on every round. */
  __atomic_store_n(&msg->state, THREAD_STATE_ASLEEP, __ATOMIC_RELEASE);
  for (;;) {
    ctx = (struct thread_context*)__atomic_load_n(&msg->context, __ATOMIC_ACQUIRE);
    uint32_t s = __atomic_load_n(&ctx->state, __ATOMIC_ACQUIRE);
    if (s == CONTEXT_STATE_NONE) break;
    raw_syscall(SYS_futex, (long)&ctx->state, FUTEX_WAIT, s, 0, 0, 0);
  }
  ctx->thread_id = msg->thread_id;
  __atomic_store_n(&msg->state, THREAD_STATE_NONE, __ATOMIC_RELEASE);
  load_regs(ctx, uc);
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
