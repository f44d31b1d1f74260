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
#include "sysmsg_asm.h"

#define SYS_lseek 8
#define SYS_mmap 9
#define SYS_mprotect 10
#define SYS_munmap 11
#define SYS_rt_sigaction 13
#define SYS_rt_sigprocmask 14
#define SYS_close 3
#define SYS_exit 60
#define SYS_sigaltstack 131
#define SYS_arch_prctl 158
#define ARCH_SET_GS 0x1001
#define SYS_gettid 186
#define SYS_seccomp 317
#define SYS_memfd_create 319
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
#define PR_SET_NO_NEW_PRIVS 38
#define SECCOMP_SET_MODE_FILTER 1
#define PROT_READ 1
#define PROT_RW 3
#define MAP_SHARED_FIXED 0x11
#define MAP_PRIVATE_ANON_FIXED 0x32
#define MAP_PRIVATE_ANON_FIXED_NORESERVE 0x4032
#define MFD_CLOEXEC_SEALING 3
#define SEEK_END 2
#define SIG_SETMASK 2
#define ENOMEM 12
#define SIGKILL 9
#define SIGSTOP 19
#define FUTEX_WAIT 0
#define FUTEX_WAKE 1
#define __WALL 0x40000000
#define ECHILD 10

/*
 * Answers the request being served (state R13D, message R12) with RAX: the reply word, then the
 * done word, then a wake of the done word (Node may sleep on it). No stack: inlined. The wake's
 * unused arguments are zero, as the sysmsg-thread filter requires of stub futex calls.
 */
/* clone(RDI = flags) with no new stack, tid pointers or TLS; then RAX tested (0: the child). */
.macro CLONE
	mov $SYS_clone, %eax
	xor %esi, %esi
	xor %edx, %edx
	xor %r10d, %r10d
	xor %r8d, %r8d
	syscall
	test %rax, %rax
.endm

.macro ANSWER reply, done
	mov %rax, \reply(%r12)
	mov %r13d, \done(%r12)
	lea \done(%r12), %rdi
	mov $FUTEX_WAKE, %esi
	mov $1, %edx
	xor %r10d, %r10d
	xor %r8d, %r8d
	xor %r9d, %r9d
	mov $SYS_futex, %eax
	syscall
.endm

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
	.hidden __start_systrap_stub
	.globl systrap_syshandler
	.globl systrap_syshandler_jmp
	.globl systrap_syshandler_resume
	.globl systrap_syshandler_kick
	.globl systrap_syshandler_ret_read
	.hidden systrap_syshandler_ret_read
	.hidden systrap_syshandler
	.hidden systrap_syshandler_jmp
	.hidden systrap_syshandler_resume
	.hidden systrap_syshandler_kick
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
	cmp $STUB_REQUEST_NEW_THREAD, %rax
	je .Lnew_thread
	cmp $STUB_REQUEST_FORK, %rax
	je .Lfork
	cmp $STUB_REQUEST_BATCH, %rax
	je .Lbatch
	syscall
.Lreply:
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
 * STUB_REQUEST_BATCH: the entries in page 0, in order (see stub_abi.h). The count is Node's,
 * clamped all the same. RBX = entries run, RBP = the current entry, R15 = the count: the loop
 * needs none of them (R12 and R13 are kept; R14 is set again before the next spin).
 */
.Lbatch:
	mov %rdi, %r15
	cmp $SYSMSG_BATCH_MAX, %r15
	jbe 1f
	mov $SYSMSG_BATCH_MAX, %r15
1:	xor %ebx, %ebx
	lea SYSMSG_BATCH(%r12), %rbp
2:	cmp %r15, %rbx
	jae 3f
	mov 0(%rbp), %eax
	mov 8(%rbp), %rdi
	mov 16(%rbp), %rsi
	mov 24(%rbp), %rdx
	mov 32(%rbp), %r10
	mov 40(%rbp), %r8
	mov 48(%rbp), %r9
	syscall
	mov %rax, SYSMSG_BATCH_RESULTS(%r12,%rbx,8)
	inc %rbx
	add $SYSMSG_BATCH_ENTRY, %rbp
	testl $SYSMSG_BATCH_STOP, 4-SYSMSG_BATCH_ENTRY(%rbp)
	jz 2b
	cmp 56-SYSMSG_BATCH_ENTRY(%rbp), %rax
	je 2b
3:	mov %rbx, %rax
	jmp .Lreply

/*
 * STUB_REQUEST_NEW_THREAD (gVisor's createSysmsgThread, without a tracer): clone a thread of the
 * stub (the flags are Node's: CLONE_THREAD, so a fatal signal's death is the stub's), which
 * prepares itself as requestThread's tracer would and enters the signal handler. The loop
 * does not answer: the new thread does, once it is ready (or failed: then it exits, and its
 * exit signal ends the stub). Until that answer Node writes no request, so the page still holds
 * this one's arguments for the new thread to read.
 */
.Lnew_thread:
	CLONE
	jz .Lthread_child
	js .Lreply
	jmp .Lsyscall_loop
.Lthread_child:
	mov $SYS_prctl, %eax
	mov $PR_SET_PDEATHSIG, %edi
	mov $SIGKILL, %esi
	syscall
	test %rax, %rax
	jnz .Lthread_fail
	/* Its private stack (the signal stack and Msg are in the control memory, mapped already). */
	mov $SYS_mmap, %eax
	mov SYSMSG_ARGS+8(%r12), %rdi
	mov SYSMSG_ARGS+16(%r12), %rsi
	mov $PROT_RW, %edx
	mov $MAP_PRIVATE_ANON_FIXED, %r10d
	mov $-1, %r8
	xor %r9d, %r9d
	syscall
	cmp SYSMSG_ARGS+8(%r12), %rax
	je 1f
	mov $-ENOMEM, %rax
	jmp .Lthread_fail
1:	mov $SYS_sigaltstack, %eax
	mov SYSMSG_ARGS+24(%r12), %rdi
	xor %esi, %esi
	syscall
	test %rax, %rax
	jnz .Lthread_fail
	/* GS base: this thread's Msg (its signal stack's ss_sp + MSG_IN_SHARED), where a patched
	 * call site's trampoline finds it (see systrap_syshandler). Programs cannot change it:
	 * the sentry refuses ARCH_SET_GS. */
	mov SYSMSG_ARGS+24(%r12), %rsi
	mov (%rsi), %rsi
	add $MSG_IN_SHARED, %rsi
	mov $SYS_arch_prctl, %eax
	mov $ARCH_SET_GS, %edi
	syscall
	test %rax, %rax
	jnz .Lthread_fail
	/* The handlers, for each signal of the mask (in the table the stub's threads share). */
	mov SYSMSG_THREAD_SIGNALS(%r12), %r14
	xor %r15d, %r15d
2:	bt %r15, %r14
	jnc 3f
	mov $SYS_rt_sigaction, %eax
	lea 1(%r15), %rdi
	mov SYSMSG_ARGS+32(%r12), %rsi
	xor %edx, %edx
	mov $8, %r10d
	syscall
	test %rax, %rax
	jnz .Lthread_fail
3:	inc %r15d
	cmp $64, %r15d
	jb 2b
	/* The loop runs with every signal blocked; the handler's signals must not be (a blocked
	 * fault or seccomp trap kills). */
	mov $SYS_rt_sigprocmask, %eax
	mov $SIG_SETMASK, %edi
	lea SYSMSG_THREAD_MASK(%r12), %rsi
	xor %edx, %edx
	mov $8, %r10d
	syscall
	test %rax, %rax
	jnz .Lthread_fail
	mov $SYS_gettid, %eax
	syscall
	mov %rax, %rbx
	mov $SYS_prctl, %eax
	mov $PR_SET_NO_NEW_PRIVS, %edi
	mov $1, %esi
	xor %edx, %edx
	xor %r10d, %r10d
	xor %r8d, %r8d
	syscall
	test %rax, %rax
	jnz .Lthread_fail
	mov $SYS_seccomp, %eax
	mov $SECCOMP_SET_MODE_FILTER, %edi
	xor %esi, %esi
	mov SYSMSG_ARGS+40(%r12), %rdx
	syscall
	test %rax, %rax
	jnz .Lthread_fail
	/* Ready: answer (a futex wake of stub memory is all its filter leaves it)... */
	mov %rbx, %rax
	ANSWER SYSMSG_REPLY, SYSMSG_DONE
	/* ...and enter the handler: a fault, taken in state INITIALIZING, picks a context. */
	ud2
.Lthread_fail:
	ANSWER SYSMSG_REPLY, SYSMSG_DONE
	mov $SYS_exit, %eax
	mov $1, %edi
	syscall
	ud2

/*
 * The syshandler (gVisor's __export_syshandler): where a patched call site's trampoline jumps
 * instead of taking SIGSYS. The trampoline (written by src/shm/usertrap.ts) has set
 * Msg.state to PREP (interrupts postponed, see systrap_sighandler), put the program's RSP in
 * Msg.app_stack and the address after its site in Msg.ret_addr, switched RSP to this thread's
 * syshandler stack (its signal stack: a signal taken here nests below), loaded EAX with the
 * syscall number and jumped here through RCX; nothing else of the program's state has changed.
 *
 * Here: every register into the running context (Msg.context) as the signal handler would save
 * them, the FP state as the kernel writes it in a signal frame (XSAVE of the features in this
 * thread's Msg.fpx_sw, those software bytes, the end marker), then the C part publishes the
 * call and picks what runs next. When that is the same context with its FP state untouched
 * (the usual answer: the call's result), its registers are loaded here and the program goes on
 * with no signal at all; anything else goes through the handler (the ud2 at
 * systrap_syshandler_resume), which loads a context into a signal frame.
 */
systrap_syshandler:
	pushfq
	push %rcx
	/* The C part runs with the direction and alignment-check flags clear. */
	pushq $0x202
	popfq
	mov %gs:MSG_CONTEXT, %rcx
	mov %r15, TC_R15(%rcx)
	mov %r14, TC_R14(%rcx)
	mov %r13, TC_R13(%rcx)
	mov %r12, TC_R12(%rcx)
	mov %rbp, TC_RBP(%rcx)
	mov %rbx, TC_RBX(%rcx)
	mov %r11, TC_R11(%rcx)
	mov %r10, TC_R10(%rcx)
	mov %r9, TC_R9(%rcx)
	mov %r8, TC_R8(%rcx)
	mov %rax, TC_RAX(%rcx)
	mov %rax, TC_ORIG_RAX(%rcx)
	mov %rdx, TC_RDX(%rcx)
	mov %rsi, TC_RSI(%rcx)
	mov %rdi, TC_RDI(%rcx)
	/* RCX and R11 as the `syscall` instruction leaves them (the return address, the flags): the
	 * trampoline used RCX for its jump, as the instruction would have clobbered it. */
	pop %rax
	pop %rax
	mov %rax, TC_EFLAGS(%rcx)
	mov %rax, TC_R11(%rcx)
	mov %gs:MSG_APP_STACK, %rax
	mov %rax, TC_RSP(%rcx)
	mov %gs:MSG_RET_ADDR, %rax
	/* Msg.ret_addr is read: from here on an interrupt may send the last jump to the kick (an
	 * earlier one would make the kick the program's RIP; see the handler). */
systrap_syshandler_ret_read:
	mov %rax, TC_RIP(%rcx)
	mov %rax, TC_RCX(%rcx)
	movq $0x33, TC_CS(%rcx)
	movq $0x2b, TC_SS(%rcx)
	cmpl $FP_XSTATE_MAGIC1, %gs:MSG_FPX_SW
	jne 2f
	mov %gs:MSG_FPX_SW+8, %eax
	mov %gs:MSG_FPX_SW+12, %edx
	/* XSAVEOPT where the CPU has it (the sentry says so in the queue): the same image, with
	 * the components in their initial state (AVX-512's, usually) left unwritten and marked so
	 * in its header, which is all that reads it (XRSTOR on sigreturn). */
	testl $1, __start_systrap_stub+STUB_QUEUE_OFFSET+Q_XSAVEOPT(%rip)
	jz 4f
	xsaveopt64 TC_FPSTATE(%rcx)
	jmp 5f
4:	xsave64 TC_FPSTATE(%rcx)
5:
	/* The software bytes (48, at 464: XSAVE leaves them alone) and the end marker. */
	xor %edx, %edx
1:	mov %gs:MSG_FPX_SW(%rdx), %rax
	mov %rax, TC_FPSTATE+464(%rcx,%rdx)
	add $8, %edx
	cmp $48, %edx
	jb 1b
	mov %gs:MSG_FPX_SW+16, %eax
	cmp $(3584 - 4), %eax
	ja 3f
	movl $FP_XSTATE_MAGIC2, TC_FPSTATE(%rcx,%rax)
	jmp 3f
2:	fxsave64 TC_FPSTATE(%rcx)
3:	call systrap_syshandler_c
	test %eax, %eax
	jnz systrap_syshandler_resume
	/* The same context, on at once: Msg.ret_addr holds its RIP (the C part wrote it). */
	mov %gs:MSG_CONTEXT, %rcx
	push TC_RSP(%rcx)
	push TC_EFLAGS(%rcx)
	mov TC_R15(%rcx), %r15
	mov TC_R14(%rcx), %r14
	mov TC_R13(%rcx), %r13
	mov TC_R12(%rcx), %r12
	mov TC_RBP(%rcx), %rbp
	mov TC_RBX(%rcx), %rbx
	mov TC_R11(%rcx), %r11
	mov TC_R10(%rcx), %r10
	mov TC_R9(%rcx), %r9
	mov TC_R8(%rcx), %r8
	mov TC_RAX(%rcx), %rax
	mov TC_RDX(%rcx), %rdx
	mov TC_RSI(%rcx), %rsi
	mov TC_RDI(%rcx), %rdi
	mov TC_RCX(%rcx), %rcx
	popfq
	mov (%rsp), %rsp
	/* From here on a signal finds state NONE with RIP at the jmp below (or at the kick, where a
	 * signal postponed meanwhile sends it): the context holds everything (see the handler). */
	movl $THREAD_STATE_NONE_ASM, %gs:MSG_STATE
systrap_syshandler_jmp:
	jmp *%gs:MSG_RET_ADDR
systrap_syshandler_resume:
	ud2
systrap_syshandler_kick:
	ud2

/*
 * STUB_REQUEST_FORK (a program's fork, AddressSpace.fork): the kernel's fork of this thread is
 * the copy-on-write copy of the whole address space; the child then needs control memory of
 * its own, which Node must take in before anything touches it (see stub_abi.h). The loop
 * answers the clone's result. The child keeps the stub's parent (CLONE_PARENT): the same
 * PDEATHSIG bond as every stub (R15: the parent it must have, taken before the clone).
 */
.Lfork:
	mov $SYS_getppid, %eax
	syscall
	mov %rax, %r15
	CLONE
	jnz .Lreply
	mov $SYS_prctl, %eax
	mov $PR_SET_PDEATHSIG, %edi
	mov $SIGKILL, %esi
	syscall
	test %rax, %rax
	jnz .Lfork_fail
	mov $SYS_getppid, %eax
	syscall
	cmp %r15, %rax
	jne .Lfork_fail
	mov $SYS_memfd_create, %eax
	mov SYSMSG_ARGS+8(%r12), %rdi
	mov $MFD_CLOEXEC_SEALING, %esi
	syscall
	test %rax, %rax
	js .Lfork_fail
	mov %rax, %r14
	/* The arguments into registers first: once Node has the answer below it acknowledges and
	 * may post the parent's next request in this very page (shared until the mmap below), so
	 * nothing here may be read after it. Three registers survive ANSWER, the futex wait and
	 * lseek, and R13 holds the state until the ack: the file's size is the control memory's
	 * plus the rules area (STUB_RULES_SIZE), as Node sizes it, so it needs none of its own. */
	mov SYSMSG_ARGS+24(%r12), %r15
	mov SYSMSG_ARGS+32(%r12), %rbp
	mov SYSMSG_ARGS+40(%r12), %rbx
	/* The parent's message is still shared with this copy: say which fd it is there... */
	ANSWER SYSMSG_FORK_REPLY, SYSMSG_FORK_DONE
	/* ...and wait until Node took, sized and sealed it: a page of it touched before is a SIGBUS.
	 * An ack of a later fork counts too (serial-number order): Node may ack the parent's next
	 * fork before this copy runs again, and the word then never holds this one's state. */
4:	mov SYSMSG_FORK_ACK(%r12), %eax
	mov %eax, %edx
	sub %r13d, %edx
	jns 5f
	mov %eax, %edx
	lea SYSMSG_FORK_ACK(%r12), %rdi
	mov $FUTEX_WAIT, %esi
	xor %r10d, %r10d
	mov $SYS_futex, %eax
	syscall
	jmp 4b
	/* The ack is program-writable memory: check the size Node gave the file. */
5:	mov $SYS_lseek, %eax
	mov %r14, %rdi
	xor %esi, %esi
	mov $SEEK_END, %edx
	syscall
	lea STUB_RULES_SIZE(%rbp), %r13
	cmp %r13, %rax
	jne .Lfork_fail
	/* R15 = file size, R13 = control memory's address from here on. */
	mov %r15, %r13
	mov %rax, %r15
	mov $SYS_mmap, %eax
	mov %r13, %rdi
	mov %rbp, %rsi
	mov $PROT_RW, %edx
	mov $MAP_SHARED_FIXED, %r10d
	mov %r14, %r8
	xor %r9d, %r9d
	syscall
	cmp %r13, %rax
	jne .Lfork_fail
	mov $SYS_mmap, %eax
	mov %rbx, %rdi
	mov %r15, %rsi
	sub %rbp, %rsi
	mov $PROT_READ, %edx
	mov $MAP_SHARED_FIXED, %r10d
	mov %r14, %r8
	mov %rbp, %r9
	syscall
	cmp %rbx, %rax
	jne .Lfork_fail
	/* The request page read-only, as initStub maps it: no program thread may rewrite a request
	 * between Node's write and the loop's read. */
	mov $SYS_mprotect, %eax
	mov %r12, %rdi
	mov $4096, %esi
	mov $PROT_READ, %edx
	syscall
	test %rax, %rax
	jnz .Lfork_fail
	/* Neither the memory file nor the fd channel (a stub that ran a program closed them already),
	 * nor the new memfd's fd: Node has its own by now (it acknowledged after taking it), and the
	 * mappings keep the file. Closed here, before the loop serves anything, it never reaches the
	 * program, and Node needs no round trip to close it. */
	mov $SYS_close, %eax
	mov %r14, %rdi
	syscall
	mov $SYS_close, %eax
	mov $STUB_MEMFD, %edi
	syscall
	mov $SYS_close, %eax
	mov $STUB_FDCHAN, %edi
	syscall
	/* A new message, its state 0. */
	xor %r13d, %r13d
	jmp .Lsyscall_loop
.Lfork_fail:
	mov $SYS_exit_group, %eax
	mov $4, %edi
	syscall
	jmp .Lfork_fail

/*
 * The sandbox's pid 1 (native/sandbox.cc) forks the sandbox's stub here, after it has marked
 * every mapping outside the stub region MADV_DONTFORK: the stub then starts with nothing but the
 * stub region, instead of a copy of Node's address space (whose page tables cost about as much
 * to copy as to tear down again). Called as long systrap_sandbox_fork(flags, 0, &pidfd, msgAddr,
 * msgFileOffset, rulesFileOffset): a raw clone. The parent returns its result; the child has no
 * stack and no other code, so it does here what StubChild (forker.cc) does, minus what it
 * inherits already done (default signal dispositions, an empty mask, the memory file and fd
 * channel at STUB_MEMFD and STUB_FDCHAN). With msgAddr 0 it then enters stub_init with R15 = 1,
 * its parent's pid in the sandbox, for a tracer to prepare it. Otherwise it prepares itself as
 * createSandbox and initStub's tracer would (.Lsandbox_self_init) and stops with its loop as
 * what follows: Node's SIGCONT starts it serving, no ptrace needed. The three values go to
 * R12, R14 and R13, which the child keeps (the parent's are restored from its stack).
 */
systrap_sandbox_fork:
	push %r12
	push %r13
	push %r14
	mov %rcx, %r12
	mov %r8, %r14
	mov %r9, %r13
	mov $SYS_clone, %eax
	xor %r10d, %r10d
	xor %r8d, %r8d
	syscall
	test %rax, %rax
	jz .Lsandbox_stub
	pop %r14
	pop %r13
	pop %r12
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
	test %r12, %r12
	jnz .Lsandbox_self_init
	mov $1, %r15d
	jmp systrap_stub_init
/*
 * R12 = the syscall thread's message address, R14 its offset in the memory file, R13 the rules'
 * offset there; RBX = the stub region's start. Nothing is left but the stub region, its rest
 * reserved (createSandbox's steps), then the message's two pages and the rules are mapped
 * (initStub's), the parent-death bond made (stub_init's), and the stub stops itself in the
 * middle of the kill that RBX = STUB_MODE_RUN_SYSCALL_LOOP turns into its loop once continued.
 * Any failure exits: the init reports a stub that died before it stopped.
 */
.Lsandbox_self_init:
	/* The loop runs with every signal blocked (detachIntoLoop's mask): a signal for the stub's
	 * process is for the threads that run program code, and its default action would kill. */
	mov $SYS_rt_sigprocmask, %eax
	mov $SIG_SETMASK, %edi
	lea .Lall_signals(%rip), %rsi
	xor %edx, %edx
	mov $8, %r10d
	syscall
	test %rax, %rax
	jnz .Lsandbox_stub_fail
	lea __start_systrap_stub(%rip), %rbx
	mov $SYS_munmap, %eax
	xor %edi, %edi
	mov %rbx, %rsi
	syscall
	test %rax, %rax
	jnz .Lsandbox_stub_fail
	mov $SYS_munmap, %eax
	lea STUB_RO_SIZE(%rbx), %rdi
	mov $STUB_TASK_SIZE, %rsi
	sub %rdi, %rsi
	syscall
	test %rax, %rax
	jnz .Lsandbox_stub_fail
	mov $SYS_mmap, %eax
	lea STUB_RO_SIZE(%rbx), %rdi
	mov $(STUB_REGION_SIZE - STUB_RO_SIZE), %esi
	xor %edx, %edx
	mov $MAP_PRIVATE_ANON_FIXED_NORESERVE, %r10d
	mov $-1, %r8
	xor %r9d, %r9d
	syscall
	cmp %rdi, %rax
	jne .Lsandbox_stub_fail
	mov $SYS_mmap, %eax
	mov %r12, %rdi
	mov $4096, %esi
	mov $PROT_READ, %edx
	mov $MAP_SHARED_FIXED, %r10d
	mov $STUB_MEMFD, %r8d
	mov %r14, %r9
	syscall
	cmp %rdi, %rax
	jne .Lsandbox_stub_fail
	mov $SYS_mmap, %eax
	lea 4096(%r12), %rdi
	mov $4096, %esi
	mov $PROT_RW, %edx
	mov $MAP_SHARED_FIXED, %r10d
	mov $STUB_MEMFD, %r8d
	lea 4096(%r14), %r9
	syscall
	cmp %rdi, %rax
	jne .Lsandbox_stub_fail
	mov $SYS_mmap, %eax
	lea STUB_RULES_OFFSET(%rbx), %rdi
	mov $STUB_RULES_SIZE, %esi
	mov $PROT_READ, %edx
	mov $MAP_SHARED_FIXED, %r10d
	mov $STUB_MEMFD, %r8d
	mov %r13, %r9
	syscall
	cmp %rdi, %rax
	jne .Lsandbox_stub_fail
	mov $SYS_prctl, %eax
	mov $PR_SET_PDEATHSIG, %edi
	mov $SIGKILL, %esi
	syscall
	test %rax, %rax
	jnz .Lsandbox_stub_fail
	/* PDEATHSIG is armed; a parent other than the sandbox's init died before that. */
	mov $SYS_getppid, %eax
	syscall
	cmp $1, %rax
	jne .Lsandbox_stub_fail
	mov $SYS_getpid, %eax
	syscall
	mov %rax, %rdi
	mov $SIGSTOP, %esi
	mov $SYS_kill, %eax
	mov $STUB_MODE_RUN_SYSCALL_LOOP, %ebx
	xor %r13d, %r13d
	jmp systrap_stub_syscall
	.p2align 3
.Lall_signals:
	.quad -1
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
