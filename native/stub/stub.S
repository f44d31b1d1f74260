/*
 * The stub code: copied into the stub region of every stub process (gVisor's stub_amd64.s role).
 *
 * Entry (stub_init) with R15 = the pid the stub's parent must have. It sets PDEATHSIG, checks
 * the parent is still the one expected (else it exits: the parent died before PDEATHSIG was
 * armed), and stops itself with SIGSTOP. The `syscall` instruction at stub_syscall is the one
 * every later ptrace injection executes (the tracer's initRegs point at it); what runs after it
 * is chosen by RBX. The code uses no stack (RSP is 0 in injected registers) and reads
 * syscall-thread requests only from the page the stub maps read-only.
 *
 * Two routines at the end serve the sandbox's init (native/sandbox.cc) rather than stubs: the
 * fork of the sandbox's stub, and the init's reaper loop.
 */
#include "stub_abi.h"

#define SYS_munmap 11
#define SYS_getpid 39
#define SYS_clone 56
#define SYS_wait4 61
#define SYS_kill 62
#define SYS_getppid 110
#define SYS_setsid 112
#define SYS_prctl 157
#define SYS_futex 202
#define SYS_exit_group 231
#define SYS_close_range 436
#define PR_SET_PDEATHSIG 1
#define PR_SET_DUMPABLE 4
#define SIGKILL 9
#define SIGSTOP 19
#define FUTEX_WAIT 0
#define FUTEX_WAKE 1
#define __WALL 0x40000000
#define ECHILD 10

	/* Everything copied into the stub region lives in section systrap_stub (see sysmsg.c). */
	.section systrap_stub,"ax",@progbits
	.p2align 12
	.globl systrap_stub_init
	.globl systrap_stub_syscall
	.globl systrap_sandbox_reaper
	.globl systrap_sandbox_fork
	.hidden systrap_stub_init
	.hidden systrap_stub_syscall
	.hidden systrap_sandbox_reaper
	.hidden systrap_sandbox_fork
systrap_stub_init:
	mov $SYS_prctl, %eax
	mov $PR_SET_PDEATHSIG, %edi
	mov $SIGKILL, %esi
	syscall
	test %rax, %rax
	jnz .Lfail
	/* PDEATHSIG is armed; if the parent is already someone else, it died before that. */
	mov $SYS_getppid, %eax
	syscall
	cmp %r15, %rax
	jne .Lfail
	mov $SYS_getpid, %eax
	syscall
	mov %rax, %rdi
	mov $SIGSTOP, %esi
	mov $SYS_kill, %eax
	xor %ebx, %ebx
systrap_stub_syscall:
	syscall
	/* Dispatch on RBX (set by the tracer in injected registers). */
	cmp $STUB_MODE_NEW_STUB, %rbx
	je .Lnew_stub
	cmp $STUB_MODE_RUN_SYSCALL_LOOP, %rbx
	je .Lsyscall_loop
.Ltrap:
	int3
	jmp .Ltrap
.Lnew_stub:
	/* clone returned: the parent (rax != 0) traps to its tracer, the child starts over. */
	test %rax, %rax
	jz systrap_stub_init
	jmp .Ltrap
.Lfail:
	mov $SYS_exit_group, %eax
	mov $1, %edi
	syscall
	jmp .Lfail

/*
 * The syscall-thread loop. R12 = stub address of the message (page 0 read-only here),
 * R13d = the last request state served. A request is pending when state != R13d.
 * Requests that arrive faster than they are served coalesce: the loop serves the newest.
 *
 * After serving, the loop spins for the sentry-chosen SYSMSG_SPIN cycles before it sleeps: requests come in
 * bursts (mmap after mmap), and a futex wake-up across CPUs costs tens of microseconds in a VM
 * while a spinning thread sees the new state in well under one. R14 = spin start (TSC).
 */
.Lsyscall_loop:
	rdtsc
	shl $32, %rdx
	or %rdx, %rax
	mov %rax, %r14
.Lspin:
	mov SYSMSG_STATE(%r12), %eax
	cmp %r13d, %eax
	jne .Lrun
	pause
	rdtsc
	shl $32, %rdx
	or %rdx, %rax
	sub %r14, %rax
	cmp SYSMSG_SPIN(%r12), %rax
	jb .Lspin
.Lsleep:
	mov SYSMSG_STATE(%r12), %eax
	cmp %r13d, %eax
	jne .Lrun
	mov %eax, %edx
	mov %r12, %rdi
	mov $FUTEX_WAIT, %esi
	xor %r10d, %r10d
	mov $SYS_futex, %eax
	syscall
	jmp .Lsleep
.Lrun:
	mov %eax, %r13d
	mov SYSMSG_SYSNO(%r12), %rax
	mov SYSMSG_ARGS+0(%r12), %rdi
	mov SYSMSG_ARGS+8(%r12), %rsi
	mov SYSMSG_ARGS+16(%r12), %rdx
	mov SYSMSG_ARGS+24(%r12), %r10
	mov SYSMSG_ARGS+32(%r12), %r8
	mov SYSMSG_ARGS+40(%r12), %r9
	syscall
	mov %rax, SYSMSG_REPLY(%r12)
	/* Publish "served" (the sentry may be spinning on it), then wake it in case it sleeps. */
	mov %r13d, SYSMSG_DONE(%r12)
	lea SYSMSG_DONE(%r12), %rdi
	mov $FUTEX_WAKE, %esi
	mov $1, %edx
	mov $SYS_futex, %eax
	syscall
	jmp .Lsyscall_loop

/*
 * The sandbox's pid 1 (native/sandbox.cc) forks the sandbox's stub here, after it has marked
 * every mapping outside the stub region MADV_DONTFORK: the stub then starts with nothing but the
 * stub region, instead of a copy of Node's address space (whose page tables cost about as much
 * to copy as to tear down again). Called as long systrap_sandbox_fork(flags, 0, &pidfd): a
 * raw clone. The parent returns its result; the child has no stack and no other code, so it
 * does here what StubChild (forker.cc) does, minus what it inherits already done (default
 * signal dispositions, an empty mask, the memory file and fd channel at STUB_MEMFD and
 * STUB_FDCHAN), then enters stub_init with R15 = 1, its parent's pid in the sandbox.
 */
systrap_sandbox_fork:
	mov $SYS_clone, %eax
	xor %r10d, %r10d
	xor %r8d, %r8d
	syscall
	test %rax, %rax
	jz .Lsandbox_stub
	ret
.Lsandbox_stub:
	/* A session of its own, as every stub. */
	mov $SYS_setsid, %eax
	syscall
	/* Only the stub's two fds (the init's others are 1002 and up). */
	mov $SYS_close_range, %eax
	xor %edi, %edi
	mov $(STUB_MEMFD - 1), %esi
	xor %edx, %edx
	syscall
	test %rax, %rax
	jnz .Lsandbox_stub_fail
	mov $SYS_close_range, %eax
	mov $(STUB_FDCHAN + 1), %edi
	mov $-1, %esi
	xor %edx, %edx
	syscall
	test %rax, %rax
	jnz .Lsandbox_stub_fail
	/* The init is not dumpable; the stub must be, for a tracer that is not root. */
	mov $SYS_prctl, %eax
	mov $PR_SET_DUMPABLE, %edi
	mov $1, %esi
	syscall
	test %rax, %rax
	jnz .Lsandbox_stub_fail
	mov $1, %r15d
	jmp systrap_stub_init
.Lsandbox_stub_fail:
	mov $SYS_exit_group, %eax
	mov $3, %edi
	syscall
	jmp .Lsandbox_stub_fail

/*
 * The sandbox's pid 1 (native/sandbox.cc) ends here, with RDI = the stub region's start,
 * RSI = its end and RDX = the length from there to the top of user space. It was forked from
 * Node and still holds a copy of Node's whole address space (heap, keys, everything): it unmaps
 * all of it but the stub region, so that nothing of Node stays in a process that lives as long
 * as the sandbox. Then it reaps every process of the pid
 * namespace (its own children and the orphans the kernel reparents to it) until none is left,
 * and exits 0. No stack, no memory access: there is nothing else left to use. A failed munmap
 * exits 2 (which kills the namespace) rather than keep Node's memory.
 */
systrap_sandbox_reaper:
	mov %rsi, %r12
	mov %rdx, %r13
	mov %rdi, %rsi
	xor %edi, %edi
	mov $SYS_munmap, %eax
	syscall
	test %rax, %rax
	jnz .Lreaper_fail
	mov %r12, %rdi
	mov %r13, %rsi
	mov $SYS_munmap, %eax
	syscall
	test %rax, %rax
	jnz .Lreaper_fail
.Lreap:
	mov $SYS_wait4, %eax
	mov $-1, %rdi
	xor %esi, %esi
	mov $__WALL, %edx
	xor %r10d, %r10d
	syscall
	cmp $-ECHILD, %rax
	jne .Lreap
	mov $SYS_exit_group, %eax
	xor %edi, %edi
	syscall
	jmp .Lreap
.Lreaper_fail:
	mov $SYS_exit_group, %eax
	mov $2, %edi
	syscall
	jmp .Lreaper_fail
	.section .note.GNU-stack,"",@progbits
