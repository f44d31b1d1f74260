/*
 * Constants shared by the stub code (stub.S), the native addon and, mirrored by hand,
 * src/abi/stub.ts (a test checks the TypeScript values against this file).
 *
 * The stub code runs in a process whose address space holds nothing but the stub region,
 * so it may use no stack, no libc and no absolute addresses.
 */
#ifndef SYSTRAP_STUB_ABI_H
#define SYSTRAP_STUB_ABI_H

/* What the stub code does after its `syscall` instruction, selected by RBX (gVisor's values). */
#define STUB_MODE_TRAP 0             /* fall through to int3: the tracer sees SIGTRAP */
#define STUB_MODE_NEW_STUB 1         /* after clone: the child restarts the init sequence */
#define STUB_MODE_RUN_SYSCALL_LOOP 5 /* serve syscall-thread requests through futexes */

/* The fd number the memory file has in every stub; every other fd is closed. */
#define STUB_MEMFD 1000
/* The stub's end of the fd channel (a SOCK_SEQPACKET socket shared by the source stub and its
 * clones) through which Node passes fds into a fresh stub; closed once a stub runs contexts. */
#define STUB_FDCHAN 1001

/* Syscall-thread message: page 0 is read-only in the stub, page 1 read-write. */
#define SYSMSG_STATE 0  /* u32, written by the sentry only */
#define SYSMSG_SYSNO 8  /* u64 */
#define SYSMSG_ARGS 16  /* u64[6] */
#define SYSMSG_SPIN 64  /* u64: TSC cycles the loop spins before it sleeps (0 on one CPU) */
/* u32s in page 0 that only Node's threads use (the stub never reads them): which thread of Node
 * posts requests now (SYSMSG_OWNER_*; see src/shm/syscallThreadLock.ts), and how many wait
 * for it to let go. */
#define SYSMSG_OWNER 96
#define SYSMSG_OWNER_WAITERS 100
#define SYSMSG_REPLY 4096 /* u64 ret, written by the stub (untrusted) */
#define SYSMSG_DONE 4104  /* u32: the last state served, written by the stub (untrusted hint) */

/*
 * Requests that are no syscall: the loop makes a process or a thread itself, so that neither
 * needs a ptrace transaction (see stub.S). Numbers no kernel syscall has.
 */
/* A sysmsg thread. ARGS: clone flags, private stack address and size, stack_t address,
 * sigaction address, sock_fprog address; SYSMSG_THREAD_SIGNALS: the signals given that action
 * (bit n-1 for signal n). The new thread answers (its tid, as its own pid namespace numbers it),
 * not the loop. */
#define STUB_REQUEST_NEW_THREAD 0x10001
/* A fork of the stub (CLONE_PARENT). ARGS: clone flags, memfd name address, control file size
 * (control memory size + STUB_RULES_SIZE), control memory address and size, rules address. The
 * loop answers the clone's result; the child answers SYSMSG_FORK_REPLY/DONE (its memfd's fd
 * number) in this message, which it still shares, then waits for SYSMSG_FORK_ACK (this state or
 * a later one) before it maps the memfd over the control memory. The child reads its arguments
 * before it answers: once acknowledged, Node posts the parent's next request in this page. */
#define STUB_REQUEST_FORK 0x10002
/* Several syscalls in one round trip. ARGS: the number of entries (at most SYSMSG_BATCH_MAX),
 * which lie at SYSMSG_BATCH in page 0, SYSMSG_BATCH_ENTRY bytes each: u32 sysno, u32 flags,
 * u64 args[6], u64 expected result. The loop runs them in order, writes each result at
 * SYSMSG_BATCH_RESULTS (u64 each, in page 1: untrusted), and stops after an entry whose flags
 * hold SYSMSG_BATCH_STOP and whose result is not the expected one. It answers how many ran. */
#define STUB_REQUEST_BATCH 0x10003
#define SYSMSG_BATCH 2048
#define SYSMSG_BATCH_ENTRY 64
#define SYSMSG_BATCH_MAX 32
#define SYSMSG_BATCH_STOP 1
#define SYSMSG_BATCH_RESULTS 4352
#define SYSMSG_THREAD_SIGNALS 72 /* u64 in page 0 */
#define SYSMSG_THREAD_MASK 80    /* u64 in page 0: the new thread's signal mask (the loop blocks all) */
#define SYSMSG_FORK_REPLY 4112   /* u64, written by the fork child (untrusted) */
#define SYSMSG_FORK_DONE 4120    /* u32: the fork request's state, written by the fork child */
#define SYSMSG_FORK_ACK 4124     /* u32: the same state, written by Node once it adopted the memfd */
/* Default spin of the syscall thread for a new request before it futex-sleeps (~20 us). */
#define SYSMSG_SPIN_CYCLES 50000
/* How long a sysmsg thread spins on the context queue before it sleeps (~20 us, gVisor's
 * deep-sleep timeout). */
#define QUEUE_SPIN_CYCLES 50000
#define SYSMSG_SIZE 8192

/*
 * The stub region (gVisor's stubStart..stubEnd). Only the first STUB_RO_SIZE bytes (code) are
 * mapped in Node; the rest is reserved (PROT_NONE) so that nothing of Node lands there and
 * survives into a stub. src/abi/stub.ts lays out the rest of the region.
 */
#define STUB_RO_SIZE (64 * 1024)
#define STUB_REGION_SIZE (32 * 1024 * 1024)
/* Layout of the rest of the region (offsets from its start), shared with src/abi/stub.ts. */
#define STUB_RULES_OFFSET STUB_RO_SIZE
/* Room for the kernel's longest filter (4096 instructions) after its sock_fprog. */
#define STUB_RULES_SIZE (36 * 1024)
#define STUB_PER_THREAD_MEM_SIZE (32 * 1024)
#define STUB_MAX_THREAD_SLOTS 128
#define STUB_THREADS_MIN_OFFSET (STUB_RULES_OFFSET + STUB_RULES_SIZE + 4096)
#define STUB_QUEUE_OFFSET (STUB_THREADS_MIN_OFFSET + (STUB_MAX_THREAD_SLOTS + 1) * STUB_PER_THREAD_MEM_SIZE + 4096)
#define STUB_QUEUE_SIZE (9 * 4096)
#define STUB_CONTEXTS_OFFSET (STUB_QUEUE_OFFSET + STUB_QUEUE_SIZE + 4096)

/* The observe-only trace ring (struct trace_ring in sysmsg.h): a header page, then the records,
 * right after the 4095 ThreadContext slots and mapped with them. */
#define STUB_TRACE_RING_OFFSET (STUB_CONTEXTS_OFFSET + 4095 * 4096)
#define STUB_TRACE_RING_DATA (1024 * 1024)
#define STUB_TRACE_RING_SIZE (4096 + STUB_TRACE_RING_DATA)
/* Its spec (struct trace_spec): the rules area's last 2 KiB, read-only in the stub; the filter
 * before it keeps to the rest (the kernel's 4096 instructions take 32 KiB + 16). */
#define STUB_TRACE_SPEC_OFFSET (STUB_RULES_SIZE - 2048)

/* The application's maximum address (gVisor's maxStubUserAddress); the stub lives above it. */
#define STUB_MAX_USER_ADDRESS 0x7f0000000000ULL
#define STUB_TASK_SIZE 0x7ffffffff000ULL

#endif
