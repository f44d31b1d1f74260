/*
 * Offsets of struct sysmsg and struct thread_context (sysmsg.h) that the syshandler's assembly
 * (stub.S) uses, as numbers: a .S file cannot include the C structs. sysmsg.c checks each one
 * against offsetof (a mismatch fails the build).
 */
#ifndef SYSTRAP_SYSMSG_ASM_H
#define SYSTRAP_SYSMSG_ASM_H

#define MSG_RET_ADDR 0x08
#define MSG_SYSHANDLER 0x10
#define MSG_SYSHANDLER_STACK 0x18
#define MSG_APP_STACK 0x20
#define MSG_STATE 0x2c
#define MSG_CONTEXT 0x30
#define MSG_FPX_SW 0x68 /* 48 bytes: magic1 u32, extended_size u32, xfeatures u64, xstate_size u32 */

/* The Msg page's offset in a sysmsg thread's shared area (src/abi/stub.ts PER_THREAD.msgOffset). */
#define MSG_IN_SHARED 12288

#define TC_FPSTATE 0
#define TC_REGS 3592
#define TC_REG(i) (TC_REGS + 8 * (i))
/* user_regs_struct order. */
#define TC_R15 TC_REG(0)
#define TC_R14 TC_REG(1)
#define TC_R13 TC_REG(2)
#define TC_R12 TC_REG(3)
#define TC_RBP TC_REG(4)
#define TC_RBX TC_REG(5)
#define TC_R11 TC_REG(6)
#define TC_R10 TC_REG(7)
#define TC_R9 TC_REG(8)
#define TC_R8 TC_REG(9)
#define TC_RAX TC_REG(10)
#define TC_RCX TC_REG(11)
#define TC_RDX TC_REG(12)
#define TC_RSI TC_REG(13)
#define TC_RDI TC_REG(14)
#define TC_ORIG_RAX TC_REG(15)
#define TC_RIP TC_REG(16)
#define TC_CS TC_REG(17)
#define TC_EFLAGS TC_REG(18)
#define TC_RSP TC_REG(19)
#define TC_SS TC_REG(20)

/* context_queue.xsaveopt (the queue is at STUB_QUEUE_OFFSET in the region). */
#define Q_XSAVEOPT 228

/* Thread states only the syshandler path uses (see enum thread_state). */
#define THREAD_STATE_NONE_ASM 0

#define FP_XSTATE_MAGIC1 0x46505853
#define FP_XSTATE_MAGIC2 0x46505845

#endif
