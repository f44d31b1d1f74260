/*
 * Shared-memory layouts between the sentry (src/abi/sysmsg.ts) and the stub's signal handler
 * (gVisor's sysmsg.h / sysmsg.go). Both sides are checked against each other by
 * test/layout.test.ts, which compiles a program printing these offsets.
 *
 * Everything here lives in memory the application can write: the sentry validates every value
 * it reads back (states, ids, lengths).
 */
#ifndef SYSTRAP_SYSMSG_H
#define SYSTRAP_SYSMSG_H

#include <stdint.h>

/* Per sysmsg thread: the last page of its per-thread area (gVisor's struct sysmsg / Msg).
 * The offsets up to `context` are used by assembly and must not move. */
struct sysmsg {
  uint64_t self;             /* stub address of this struct; checked by the handler */
  uint64_t ret_addr;
  uint64_t syshandler;
  uint64_t syshandler_stack;
  uint64_t app_stack;
  uint32_t interrupt;
  uint32_t state;            /* enum thread_state */
  uint64_t context;          /* stub address of the ThreadContext being run */
  int32_t fault_jump;
  int32_t err;               /* stub panic code (STUB_ERROR_BASE + n), 0 if none */
  int32_t err_additional;
  int32_t line;
  uint64_t debug;
  uint32_t thread_id;        /* this thread's index, written by the sentry */
  uint32_t attrs_gen;        /* the task_attrs generation this thread holds (see sync_attrs) */
  /* The syshandler path (patched call sites, see systrap_syshandler in stub.S). Written by this
   * thread only (the program can scribble on all of it, and hurts only itself). */
  uint32_t deferred_head;    /* deferred[]: signals sent to the stub's process that this thread */
  uint32_t deferred_tail;    /* took in the syshandler path; the handler adds (tail), the sentry takes (head) */
  uint64_t resume_prev;      /* RESUME: the context whose FP state this thread holds */
  uint8_t fpx_sw[48];        /* the kernel's _fpx_sw_bytes of this thread's signal frames */
  struct deferred_signal {
    int32_t signo;
    int32_t pad;
    uint8_t info[128];
  } deferred[16];
};

enum thread_state {
  THREAD_STATE_NONE = 0,
  THREAD_STATE_DONE = 1,
  THREAD_STATE_PREP = 2,
  THREAD_STATE_ASLEEP = 3,
  THREAD_STATE_INITIALIZING = 4,
  /* The syshandler chose a context that needs a signal frame to run (another context, or FP
   * state the sentry replaced): its ud2 enters the handler, which loads it. */
  THREAD_STATE_RESUME = 5,
};

enum context_state {
  CONTEXT_STATE_NONE = 0,
  CONTEXT_STATE_SYSCALL = 1,
  CONTEXT_STATE_FAULT = 2,
  CONTEXT_STATE_SYSCALL_TRAP = 3,
  CONTEXT_STATE_SYSCALL_NEED_TRAP = 4,
  CONTEXT_STATE_UNEXPECTED_DEATH = 5,
  CONTEXT_STATE_INVALID = 6,
};

#define MAX_FPSTATE_LEN 3584
#define ALLOCATED_SIZEOF_THREAD_CONTEXT 4096
#define MAX_GUEST_CONTEXTS 4095
#define INVALID_CONTEXT_ID 0xfefefefeu
#define INVALID_THREAD_ID 0xfefefefeu
#define STUB_ERROR_BASE 0x0bad0000

/* ThreadContext.sentry_fast_path: the thread that published the context spins for it; the
 * sentry swaps SPINNING to RESUMED (or RESUMED_RAX) to hand it back without the queue. Each value carries the
 * stub's token (context_queue.direct_token << 2): slots are shared by every stub, and a thread
 * of another stub still spinning on a reused slot must never take a context that is not its. */
#define DIRECT_NONE 0u
#define DIRECT_SPINNING 1u
#define DIRECT_RESUMED 2u
/* RESUMED, with the call's result in fast_rax rather than regs[RAX] (see the handshake line). */
#define DIRECT_RESUMED_RAX 3u

/* Per application context: a 4 KiB slot (gVisor's ThreadContext). */
struct thread_context {
  uint8_t fpstate[MAX_FPSTATE_LEN]; /* XSAVE/FXSAVE image, 64-byte aligned (slots are 4 KiB aligned) */
  uint64_t fpstate_changed;
  uint64_t regs[27];                /* user_regs_struct order */
  uint8_t siginfo[128];
  int64_t signo;
  uint32_t thread_id;
  uint32_t last_thread_id;
  uint64_t sig_error;               /* page-fault error code (x86 trap 14) */
  uint64_t pad0;
  /* The call line, stub-written as a syscall is published: what of the call the handshake line
   * has no room for, a call's 5th and 6th arguments (r8, r9) and rsp as in regs, read by a
   * sentry only for a call that takes them (or prints, or passes the call on). With the
   * handshake line it makes one aligned 128-byte pair. */
  uint64_t call_args_hi[2];
  uint64_t call_rsp;
  uint64_t pad1[5];
  /* The handshake line: the words both sides write on every trap of the direct path, in one
   * cache line of their own, with the published call's rip and first four arguments (rdi, rsi,
   * rdx, r10: all of most calls'). A call of up to four arguments answered with
   * DIRECT_RESUMED_RAX moves this line to the sentry's CPU and back and nothing else: regs and
   * the call line stay in the stub's cache (each other line the sentry read or wrote costs two
   * more moves per call, ~75 ns each on the VMs measured). */
  uint32_t state;                   /* enum context_state */
  uint32_t interrupt;
  uint32_t sentry_fast_path;        /* direct-resume handshake: DIRECT_* above */
  int32_t fast_sysno;               /* stub: (int)regs[ORIG_RAX] as published, for the sentry's first look */
  uint64_t fast_rax;                /* sentry: the result a DIRECT_RESUMED_RAX resume puts in regs[RAX] */
  uint64_t call_rip;                /* stub: regs[RIP] as published */
  uint64_t call_args[4];            /* stub: rdi, rsi, rdx, r10 as published */
};


#define CONTEXT_QUEUE_SIZE 4096u

/* Attributes Linux keeps per task (credentials, resource limits, nice, CPU affinity) that every
 * thread of a stub must hold alike, since the program's threads are multiplexed over them and
 * its forks are made by the stub's syscall thread. The sentry writes the process's values after
 * one of its calls changed them on the sysmsg thread that made it, then bumps gen; each sysmsg
 * thread takes them on before it next runs a context. Program memory: a program that scribbles
 * here changes only what its own threads could change themselves. */
#define ATTR_GROUPS_MAX 64
#define ATTR_RLIMITS 16
#define ATTR_AFFINITY_MAX 128
#define ATTR_CREDS 1u     /* uid, gid, groups */
#define ATTR_NICE 2u
#define ATTR_AFFINITY 4u
#define ATTR_CAPS 8u      /* capabilities and PR_SET_KEEPCAPS */
#define ATTR_RLIMIT_SHIFT 8 /* bit ATTR_RLIMIT_SHIFT + r: rlimit r */
struct task_attrs {
  uint32_t gen;
  uint32_t set;
  uint32_t uid[4];                  /* real, effective, saved, filesystem */
  uint32_t gid[4];
  uint32_t ngroups;
  int32_t nice;
  uint32_t affinity_len;
  uint32_t pad;
  uint32_t groups[ATTR_GROUPS_MAX];
  uint64_t rlimit[ATTR_RLIMITS][2]; /* cur, max */
  uint8_t affinity[ATTR_AFFINITY_MAX];
  uint64_t caps[3];                 /* effective, permitted, inheritable */
  uint32_t keepcaps;
  uint32_t pad2;
};

/* The lock-free queue of contexts waiting for a sysmsg thread, cache-line padded by writer
 * (gVisor's contextQueue). Entries are (index << 32) | contextID; INVALID_CONTEXT_ID when empty. */
struct context_queue {
  uint32_t end;                     /* sentry: producer index */
  uint32_t pad0[15];
  uint32_t start;                   /* stubs: consumer index */
  uint32_t pad1[15];
  uint32_t fast_path_disabled;      /* sentry */
  uint32_t num_awake_contexts;      /* sentry */
  uint32_t pad2[14];
  uint32_t num_active_threads;      /* stubs */
  uint32_t num_spinning_threads;    /* stubs */
  uint32_t num_published;           /* stubs: bumped on every trap published (the doorbell) */
  uint32_t num_sentry_waiters;      /* sentry: threads futex-waiting on the doorbell (wake only then) */
  uint32_t fsgsbase;                /* sentry: 1 if the handler may use rd/wrfsbase (HWCAP2_FSGSBASE) */
  uint32_t direct_token;            /* sentry: this stub's token for direct resumes (see DIRECT_*) */
  uint32_t num_deferred;            /* stubs: bumped when a thread's Msg.deferred gets a signal */
  uint32_t usertrap_next;           /* Node: the next free trampoline entry (src/shm/usertrap.ts) */
  uint32_t usertrap_lock;           /* Node: 1 while a runner worker patches (a try-lock) */
  uint32_t xsaveopt;                /* sentry: 1 if the syshandler may save FP state with XSAVEOPT */
  uint32_t pad3[6];
  uint32_t num_threads_to_wakeup;   /* both; futex word of sleeping stub threads */
  uint32_t pad4[15];
  uint32_t num_active_contexts;     /* both */
  uint32_t used_fast_path;          /* both */
  uint32_t pad5[14];
  uint64_t ringbuffer[CONTEXT_QUEUE_SIZE];
  struct task_attrs attrs;          /* sentry */
};

_Static_assert(sizeof(struct thread_context) <= ALLOCATED_SIZEOF_THREAD_CONTEXT, "ThreadContext fits its slot");
_Static_assert(__builtin_offsetof(struct thread_context, call_args_hi) % 128 == 0 &&
               __builtin_offsetof(struct thread_context, call_args_hi) + 64 == __builtin_offsetof(struct thread_context, state),
               "the call line, then the handshake line: one aligned pair");
_Static_assert(__builtin_offsetof(struct thread_context, state) % 64 == 0 &&
               __builtin_offsetof(struct thread_context, call_args) + sizeof(uint64_t) * 4 == __builtin_offsetof(struct thread_context, state) + 64,
               "the handshake line is one cache line");
_Static_assert(__builtin_offsetof(struct sysmsg, context) == 0x30, "Msg.context is used by assembly");
_Static_assert(__builtin_offsetof(struct sysmsg, fpx_sw) == 0x68, "Msg.fpx_sw is used by assembly");
_Static_assert(sizeof(struct sysmsg) <= 4096, "Msg fits its page");
_Static_assert(__builtin_offsetof(struct context_queue, ringbuffer) == 384, "contextQueue layout");
_Static_assert(__builtin_offsetof(struct context_queue, attrs) == 33152, "task_attrs after the ring");
_Static_assert(sizeof(struct task_attrs) == 728, "task_attrs size");

/*
 * The observe-only trace ring (native/stub/trace_ring.c, src/sentry/kernel/traceRing.ts): a call
 * that is only observed (traced or counted; no deny, injection, policy or emulation) is made by
 * the stub thread itself, which appends one record of it here; the sentry drains the ring
 * asynchronously. Header at STUB_TRACE_RING_OFFSET, then STUB_TRACE_RING_DATA bytes of records.
 * Positions count bytes and wrap at 2^32 (the data size divides it). Program memory: the
 * sentry checks everything it reads, and writes tail from its own count.
 */
struct trace_ring {
  uint32_t head;            /* stubs: bytes reserved (a CAS claims a record's room) */
  uint32_t pad0[15];
  uint32_t tail;            /* sentry: bytes consumed; the futex word of threads waiting for room */
  uint32_t pad1[15];
  uint32_t waiters;         /* stubs: threads waiting for room now (the sentry wakes them) */
  uint32_t full_waits;      /* stubs: times a thread found the ring full and waited */
  uint32_t records;         /* stubs: calls recorded */
  uint32_t faults;          /* stubs: captures cut short by a fault (another thread unmapped them) */
  uint32_t lost;            /* stubs: calls not recorded, the ring being written over (head or tail
                               out of line): the program's doing, never a full ring's */
};

/* One record: this header, then a struct trace_capture per captured argument, each followed by
 * its bytes (`room` of them, a multiple of 8). `kind` is written last: 0 while being written. */
struct trace_record {
  uint32_t size;            /* bytes, this header included; a multiple of 8 */
  uint32_t kind;            /* TRACE_RECORD_* */
  uint32_t context;         /* the ThreadContext's id (whose program thread made the call) */
  uint32_t sysno;
  uint64_t args[6];
  int64_t ret;
  uint64_t entry_ns;        /* CLOCK_MONOTONIC, 0 unless the spec asks for times */
  uint64_t exit_ns;
  uint64_t site;            /* the program's rip past its `syscall` when the call came by a
                               signal (the sentry may patch the site), 0 from a patched site */
};
struct trace_capture {
  uint64_t addr;            /* the program address the bytes were copied from */
  uint32_t len;             /* bytes copied (0: unreadable) */
  uint32_t room;            /* bytes reserved after this header */
};
#define TRACE_RECORD_CALL 1u
#define TRACE_RECORD_PAD 2u   /* the rest of the data area up to its end: skip it */

/* Which calls go through the ring, written by the sentry at STUB_TRACE_SPEC_OFFSET of the rules
 * area (read-only in the stub, so a program cannot widen it). calls[nr]: the capture of argument
 * i in bits 4i..4i+3 (TRACE_CAPTURE_*), when (TRACE_WHEN_*) in bits 24..27, the argument the
 * condition looks at in bits 28..30. */
#define TRACE_SPEC_MAGIC 0x474e5254u   /* "TRNG" */
#define TRACE_SPEC_TIMES 1u            /* flags: record entry and exit times */
#define TRACE_SPEC_CALLS 508
struct trace_spec {
  uint32_t magic;
  uint32_t flags;
  uint32_t data_size;       /* bytes of the data area used: a power of two, 4096..STUB_TRACE_RING_DATA */
  uint32_t pad;
  uint32_t calls[TRACE_SPEC_CALLS];
};
#define TRACE_CAPTURE_NONE 0u
#define TRACE_CAPTURE_STR 1u       /* in: a NUL-terminated string (4096 bytes at most) */
#define TRACE_CAPTURE_OUT_RET 2u   /* out: `ret` bytes when ret > 0 (65536 at most) */
#define TRACE_CAPTURE_STAT 3u      /* out, on success: struct stat (144 bytes) */
#define TRACE_CAPTURE_STATX 4u     /* out, on success: struct statx (256) */
#define TRACE_CAPTURE_UTSNAME 5u   /* out, on success: struct utsname (390) */
#define TRACE_CAPTURE_STATFS 6u    /* out, on success: struct statfs (120) */
#define TRACE_CAPTURE_FDS 7u       /* out, on success: int[2] (8) */
#define TRACE_CAPTURE_SYSINFO 8u   /* out, on success: struct sysinfo (112) */
#define TRACE_WHEN_NEVER 0u
#define TRACE_WHEN_ALWAYS 1u
#define TRACE_WHEN_NONBLOCKING_OPEN 2u /* the flags argument has O_NONBLOCK, O_DIRECTORY or O_PATH */
#define TRACE_WHEN_PLAIN_FCNTL 3u      /* the command neither waits nor takes a pointer */
#define TRACE_WHEN_CLEAR 4u            /* [arg, arg + next arg) is clear of the stub region */
#define TRACE_WHEN_MMAP 5u             /* mmap without MAP_FIXED, or clear of the stub region */
#define TRACE_STR_MAX 4096u
#define TRACE_OUT_MAX 65536u

_Static_assert(sizeof(struct trace_spec) == 2048, "trace_spec fills the rules area's last 2 KiB");
_Static_assert(sizeof(struct trace_record) == 96, "trace_record layout");
_Static_assert(sizeof(struct trace_ring) <= 4096, "trace_ring header fits its page");

#endif
