/**
 * systrap: gVisor's systrap platform as a Node.js actor runtime.
 *
 * @example
 * ```ts
 * import { createPlatform, SYS } from 'systrap';
 * const platform = await createPlatform();
 * const as = await platform.newAddressSpace();
 * console.log(await as.syscall(SYS.getpid)); // the stub's pid
 * await platform.close();
 * ```
 */
export { createPlatform, Platform, type PlatformOptions } from './platform.js';
export { AddressSpace, type Access, type SyscallCall } from './addressSpace.js';
export { MemoryFile, type FileRange, type MemoryFileOptions } from './memoryFile.js';
export { SystrapError, Errors, type SystrapErrorCode } from './errors.js';
export { SYS, syscallName, type SyscallName } from './abi/syscalls.js';
export { type Registers, type RegisterName, REGISTER_NAMES } from './abi/registers.js';
export { subprocessMachine } from './machines/subprocess.js';
export { syscallThreadMachine } from './machines/syscallThread.js';
export { poolMachine } from './machines/pool.js';
export { sysmsgThreadMachine } from './machines/sysmsgThread.js';
export { platformContextMachine } from './machines/platformContext.js';
export { PlatformContext, type SwitchEvent } from './actors/platformContext.js';
export type { InjectResult, TransactionFault } from './tracer/protocol.js';
export { runProgram, type RunProgramOptions, type RunTraceOptions, type DenySpec, type ProgramHandle } from './sentry/run.js';
export { DEFAULT_STYLE, type TraceStyle, type CallStatus } from './sentry/strace/style.js';
export type { SentryResult, TraceOptions } from './sentry/protocol.js';
export { loadProgram, type LoadOptions, type LoadedProgram } from './sentry/exec/loader.js';
export { programFilter, type ProgramFilterSpec } from './sentry/filter.js';
export { formatSyscall } from './sentry/strace/decoder.js';
export type { MemoryReader } from './sentry/strace/decode/umove.js';
export { parseTraceSet } from './sentry/strace/traceSpec.js';
export { parseInject, parseDeny } from './sentry/strace/inject.js';
export { InspectionRecorder, describeMachine, inspectMeta, MACHINES, type InspectMeta, type InspectRecord, type MachineDef } from './inspect/record.js';
export { startInspectorServer, type InspectorServer, type InspectorServerOptions, type InspectorMode } from './inspect/server.js';
export { connectInspector } from './inspect/relay.js';
