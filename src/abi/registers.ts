/**
 * x86-64 general registers in the layout of Linux's `user_regs_struct` (what PTRACE_GETREGSET
 * with NT_PRSTATUS returns): 27 unsigned 64-bit words.
 */
export const REGISTER_NAMES = [
  'r15', 'r14', 'r13', 'r12', 'rbp', 'rbx', 'r11', 'r10', 'r9', 'r8', 'rax', 'rcx', 'rdx', 'rsi',
  'rdi', 'orig_rax', 'rip', 'cs', 'eflags', 'rsp', 'ss', 'fs_base', 'gs_base', 'ds', 'es', 'fs', 'gs',
] as const;

/** One register name of `user_regs_struct`. */
export type RegisterName = (typeof REGISTER_NAMES)[number];

/** Registers as an object of bigints, keyed by their `user_regs_struct` names. */
export type Registers = Record<RegisterName, bigint>;

/** Index of each register in the 27-word array. */
export const REG = Object.fromEntries(REGISTER_NAMES.map((n, i) => [n, i])) as Record<RegisterName, number>;

/** Number of 64-bit words in `user_regs_struct`. */
export const REGISTER_COUNT = REGISTER_NAMES.length;

/** Registers that carry syscall arguments 1..6, in order (the kernel's convention). */
export const SYSCALL_ARG_REGS = ['rdi', 'rsi', 'rdx', 'r10', 'r8', 'r9'] as const;

/**
 * Converts a raw register array to an object.
 *
 * @example
 * ```ts
 * const regs = registersFromArray(raw);
 * console.log(regs.rip.toString(16));
 * ```
 */
export function registersFromArray(a: BigUint64Array): Registers {
  const o = {} as Registers;
  for (let i = 0; i < REGISTER_COUNT; i++) o[REGISTER_NAMES[i]] = a[i];
  return o;
}

/**
 * Converts a register object to the raw 27-word array.
 *
 * @example
 * ```ts
 * native.ptraceSetRegs(tid, registersToArray(regs));
 * ```
 */
export function registersToArray(r: Registers, out = new BigUint64Array(REGISTER_COUNT)): BigUint64Array {
  for (let i = 0; i < REGISTER_COUNT; i++) out[i] = BigInt.asUintN(64, r[REGISTER_NAMES[i]]);
  return out;
}
