/**
 * A small classic-BPF assembler for seccomp filters (gVisor's pkg/bpf role): instructions with
 * symbolic forward jumps, assembled into the `struct sock_filter[]` bytes the kernel takes.
 *
 * @example
 * ```ts
 * const p = new BpfAssembler();
 * p.ldAbs(SECCOMP_DATA.nr).jeq(SYS.getpid, 'allow').ret(SECCOMP_RET.TRAP);
 * p.label('allow').ret(SECCOMP_RET.ALLOW);
 * const bytes = p.assemble();
 * ```
 */

/** Opcodes (linux/filter.h, linux/bpf_common.h). */
export const BPF = {
  LD_W_ABS: 0x20,
  JMP_JA: 0x05,
  JMP_JEQ_K: 0x15,
  JMP_JGT_K: 0x25,
  JMP_JGE_K: 0x35,
  JMP_JSET_K: 0x45,
  RET_K: 0x06,
  ALU_AND_K: 0x54,
  ALU_ADD_K: 0x04,
  ALU_ADD_X: 0x0c,
  LD_MEM: 0x60,
  ST: 0x02,
  MISC_TAX: 0x07,
  JMP_JEQ_X: 0x1d,
  JMP_JGT_X: 0x2d,
  JMP_JGE_X: 0x3d,
} as const;

/** Words of scratch memory a classic BPF program has (M[0..15]). */
export const BPF_MEMWORDS = 16;

/** Offsets in `struct seccomp_data`. */
export const SECCOMP_DATA = {
  nr: 0,
  arch: 4,
  ipLo: 8,
  ipHi: 12,
  argLo: (i: number) => 16 + 8 * i,
  argHi: (i: number) => 20 + 8 * i,
} as const;

/** seccomp return actions. */
export const SECCOMP_RET = {
  KILL_PROCESS: 0x80000000,
  KILL_THREAD: 0x00000000,
  TRAP: 0x00030000,
  ERRNO: (errno: number) => 0x00050000 | (errno & 0xffff),
  USER_NOTIF: 0x7fc00000,
  TRACE: 0x7ff00000,
  LOG: 0x7ffc0000,
  ALLOW: 0x7fff0000,
} as const;

/** AUDIT_ARCH_X86_64. */
export const AUDIT_ARCH_X86_64 = 0xc000003e;

/** The x32 ABI bit in syscall numbers. */
export const X32_SYSCALL_BIT = 0x40000000;

type Target = string | undefined; // a label, or undefined: fall through

interface Insn {
  code: number;
  jt: Target | number;
  jf: Target | number;
  k: number;
}

/** Assembles one filter program. Jumps go forward only (classic BPF). */
export class BpfAssembler {
  readonly #insns: Insn[] = [];
  readonly #labels = new Map<string, number>();

  /** Number of instructions so far. */
  get length(): number {
    return this.#insns.length;
  }

  /** Defines a label at the next instruction. */
  label(name: string): this {
    if (this.#labels.has(name)) throw new Error(`bpf: label ${name} defined twice`);
    this.#labels.set(name, this.#insns.length);
    return this;
  }

  /** A = the 32-bit word at `offset` of seccomp_data. */
  ldAbs(offset: number): this {
    return this.#emit(BPF.LD_W_ABS, 0, 0, offset);
  }

  /** A &= k. */
  and(k: number): this {
    return this.#emit(BPF.ALU_AND_K, 0, 0, k);
  }

  /** Jump to `jt` if A == k, else to `jf` (undefined: the next instruction). */
  jeq(k: number, jt?: Target, jf?: Target): this {
    return this.#emit(BPF.JMP_JEQ_K, jt, jf, k);
  }

  /** Jump if A > k (unsigned). */
  jgt(k: number, jt?: Target, jf?: Target): this {
    return this.#emit(BPF.JMP_JGT_K, jt, jf, k);
  }

  /** Jump if A >= k (unsigned). */
  jge(k: number, jt?: Target, jf?: Target): this {
    return this.#emit(BPF.JMP_JGE_K, jt, jf, k);
  }

  /** A += k (32-bit, wrapping). */
  add(k: number): this {
    return this.#emit(BPF.ALU_ADD_K, 0, 0, k);
  }

  /** A += X (32-bit, wrapping). */
  addX(): this {
    return this.#emit(BPF.ALU_ADD_X, 0, 0, 0);
  }

  /** A = M[k] (scratch memory). */
  ldMem(k: number): this {
    return this.#emit(BPF.LD_MEM, 0, 0, checkMem(k));
  }

  /** M[k] = A. */
  st(k: number): this {
    return this.#emit(BPF.ST, 0, 0, checkMem(k));
  }

  /** X = A. */
  tax(): this {
    return this.#emit(BPF.MISC_TAX, 0, 0, 0);
  }

  /** Jump if A >= X (unsigned). */
  jgeX(jt?: Target, jf?: Target): this {
    return this.#emit(BPF.JMP_JGE_X, jt, jf, 0);
  }

  /** Jump if A > X (unsigned). */
  jgtX(jt?: Target, jf?: Target): this {
    return this.#emit(BPF.JMP_JGT_X, jt, jf, 0);
  }

  /** Jump if A & k != 0. */
  jset(k: number, jt?: Target, jf?: Target): this {
    return this.#emit(BPF.JMP_JSET_K, jt, jf, k);
  }

  /** Unconditional jump (32-bit offset). */
  ja(target: string): this {
    return this.#emit(BPF.JMP_JA, 0, 0, 0, target);
  }

  /** Return `action`. */
  ret(action: number): this {
    return this.#emit(BPF.RET_K, 0, 0, action);
  }

  /** The program as `struct sock_filter[]` bytes (8 bytes per instruction, little endian). */
  assemble(): Uint8Array {
    const n = this.#insns.length;
    if (n === 0 || n > 4096) throw new Error(`bpf: a program has 1..4096 instructions (got ${n})`);
    const last = this.#insns[n - 1];
    if (last.code !== BPF.RET_K && last.code !== BPF.JMP_JA) throw new Error('bpf: a program must end with ret or ja');
    const out = new Uint8Array(n * 8);
    const dv = new DataView(out.buffer);
    this.#insns.forEach((insn, pc) => {
      let { k } = insn;
      const jaTarget = (insn as Insn & { ja?: string }).ja;
      if (jaTarget !== undefined) k = this.#offset(pc, jaTarget, 0xffffffff);
      dv.setUint16(pc * 8, insn.code, true);
      dv.setUint8(pc * 8 + 2, this.#jump(pc, insn.jt));
      dv.setUint8(pc * 8 + 3, this.#jump(pc, insn.jf));
      dv.setUint32(pc * 8 + 4, k >>> 0, true);
    });
    return out;
  }

  #jump(pc: number, t: Target | number): number {
    if (typeof t === 'number') return t;
    if (t === undefined) return 0;
    return this.#offset(pc, t, 255);
  }

  #offset(pc: number, label: string, max: number): number {
    const at = this.#labels.get(label);
    if (at === undefined) throw new Error(`bpf: undefined label ${label}`);
    const off = at - pc - 1;
    if (off < 0) throw new Error(`bpf: backward jump to ${label}`);
    if (off > max) throw new Error(`bpf: jump to ${label} is too far (${off})`);
    return off;
  }

  #emit(code: number, jt: Target | number, jf: Target | number, k: number, ja?: string): this {
    const insn: Insn & { ja?: string } = { code, jt, jf, k: k >>> 0 };
    if (ja !== undefined) insn.ja = ja;
    this.#insns.push(insn);
    return this;
  }
}

function checkMem(k: number): number {
  if (!Number.isInteger(k) || k < 0 || k >= BPF_MEMWORDS) throw new Error(`bpf: scratch word ${k} is outside M[0..${BPF_MEMWORDS - 1}]`);
  return k;
}
