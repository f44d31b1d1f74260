// Thin synchronous wrappers over ptrace, wait4, signals and cross-process memory access.
//
// Precondition for every ptrace request: it is issued by the OS thread that attached the tracee
// (the kernel answers ESRCH otherwise). That is why these are synchronous and meant to be called
// from a tracer worker thread, never through Napi::AsyncWorker (which runs on libuv's pool).
#include <elf.h>
#include <linux/ptrace.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include "errors.h"

namespace systrap {

static constexpr size_t kRegsCount = sizeof(struct user_regs_struct) / 8;  // 27 on x86-64
static_assert(kRegsCount == 27, "user_regs_struct layout");

static long Ptrace(Napi::Env env, long req, pid_t tid, unsigned long addr, unsigned long data) {
  long r = syscall(SYS_ptrace, req, tid, addr, data);
  if (r == -1) ThrowErrno(env, errno, "ptrace");
  return r;
}

static Napi::Value PtraceAttach(const Napi::CallbackInfo& info) {
  Ptrace(info.Env(), PTRACE_ATTACH, ArgInt(info, 0, "tid"), 0, 0);
  return info.Env().Undefined();
}

static Napi::Value PtraceDetach(const Napi::CallbackInfo& info) {
  Ptrace(info.Env(), PTRACE_DETACH, ArgInt(info, 0, "tid"), 0, ArgInt(info, 1, "signal"));
  return info.Env().Undefined();
}

static Napi::Value PtraceCont(const Napi::CallbackInfo& info) {
  Ptrace(info.Env(), PTRACE_CONT, ArgInt(info, 0, "tid"), 0, ArgInt(info, 1, "signal"));
  return info.Env().Undefined();
}

static Napi::Value PtraceSetOptions(const Napi::CallbackInfo& info) {
  Ptrace(info.Env(), PTRACE_SETOPTIONS, ArgInt(info, 0, "tid"), 0, ArgInt(info, 1, "options"));
  return info.Env().Undefined();
}

// ptraceGetRegs(tid, out: BigUint64Array(27)): fills `out` with user_regs_struct.
static Napi::Value PtraceGetRegs(const Napi::CallbackInfo& info) {
  pid_t tid = ArgInt(info, 0, "tid");
  uint64_t* regs = ArgU64Array(info, 1, "regs", kRegsCount);
  struct iovec iov = {regs, kRegsCount * 8};
  Ptrace(info.Env(), PTRACE_GETREGSET, tid, NT_PRSTATUS, (unsigned long)&iov);
  return info.Env().Undefined();
}

static Napi::Value PtraceSetRegs(const Napi::CallbackInfo& info) {
  pid_t tid = ArgInt(info, 0, "tid");
  uint64_t* regs = ArgU64Array(info, 1, "regs", kRegsCount);
  struct iovec iov = {regs, kRegsCount * 8};
  Ptrace(info.Env(), PTRACE_SETREGSET, tid, NT_PRSTATUS, (unsigned long)&iov);
  return info.Env().Undefined();
}

static Napi::Value PtraceGetSiginfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  siginfo_t si = {};
  Ptrace(env, PTRACE_GETSIGINFO, ArgInt(info, 0, "tid"), 0, (unsigned long)&si);
  Napi::Object o = Napi::Object::New(env);
  o.Set("signo", si.si_signo);
  o.Set("errno", si.si_errno);
  o.Set("code", si.si_code);
  o.Set("pid", si.si_pid);
  o.Set("addr", Napi::BigInt::New(env, (uint64_t)(uintptr_t)si.si_addr));
  return o;
}

static Napi::Value PtraceGetEventMsg(const Napi::CallbackInfo& info) {
  unsigned long msg = 0;
  Ptrace(info.Env(), PTRACE_GETEVENTMSG, ArgInt(info, 0, "tid"), 0, (unsigned long)&msg);
  return Napi::Number::New(info.Env(), (double)msg);
}

// ptraceSetSigmask(tid, mask: bigint): the tracee's blocked-signal mask (64 bits).
static Napi::Value PtraceSetSigmask(const Napi::CallbackInfo& info) {
  pid_t tid = ArgInt(info, 0, "tid");
  uint64_t mask = ArgU64(info, 1, "mask");
  Ptrace(info.Env(), PTRACE_SETSIGMASK, tid, sizeof mask, (unsigned long)&mask);
  return info.Env().Undefined();
}

// DecodeStatus turns a wait status into { kind, pid, signal, event, status }.
static Napi::Object DecodeStatus(Napi::Env env, pid_t pid, int status) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("pid", pid);
  if (WIFSTOPPED(status)) {
    o.Set("kind", "stopped");
    o.Set("signal", WSTOPSIG(status));
    o.Set("event", (status >> 16) & 0xff);  // PTRACE_EVENT_* or 0
  } else if (WIFEXITED(status)) {
    o.Set("kind", "exited");
    o.Set("status", WEXITSTATUS(status));
  } else if (WIFSIGNALED(status)) {
    o.Set("kind", "signaled");
    o.Set("signal", WTERMSIG(status));
  } else if (WIFCONTINUED(status)) {
    o.Set("kind", "continued");
  } else {
    o.Set("kind", "unknown");
    o.Set("status", status);
  }
  return o;
}

// wait4(tid, options): waits for that one tid (never -1: libuv reaps its own children and a
// wildcard wait would steal them). Retries EINTR. Returns null when WNOHANG found nothing.
static Napi::Value Wait4(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  pid_t tid = ArgInt(info, 0, "tid");
  int options = ArgInt(info, 1, "options");
  if (tid <= 0) ThrowType(env, "tid must be a positive pid");
  int status = 0;
  pid_t r;
  do {
    r = wait4(tid, &status, options, nullptr);
  } while (r == -1 && errno == EINTR);
  if (r == -1) ThrowErrno(env, errno, "wait4");
  if (r == 0) return env.Null();
  return DecodeStatus(env, r, status);
}

static Napi::Value Tgkill(const Napi::CallbackInfo& info) {
  if (syscall(SYS_tgkill, ArgInt(info, 0, "tgid"), ArgInt(info, 1, "tid"), ArgInt(info, 2, "signal")) == -1)
    ThrowErrno(info.Env(), errno, "tgkill");
  return info.Env().Undefined();
}

static Napi::Value Kill(const Napi::CallbackInfo& info) {
  if (kill(ArgInt(info, 0, "pid"), ArgInt(info, 1, "signal")) == -1) ThrowErrno(info.Env(), errno, "kill");
  return info.Env().Undefined();
}

static Napi::Value SetPriority(const Napi::CallbackInfo& info) {
  if (setpriority(ArgInt(info, 0, "which"), ArgInt(info, 1, "who"), ArgInt(info, 2, "prio")) == -1)
    ThrowErrno(info.Env(), errno, "setpriority");
  return info.Env().Undefined();
}

static Napi::Value Gettid(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), (double)syscall(SYS_gettid));
}

// processVmReadv(pid, addr, length) -> Buffer with the bytes read (may be short).
static Napi::Value ProcessVmReadv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  pid_t pid = ArgInt(info, 0, "pid");
  uint64_t addr = ArgU64(info, 1, "addr");
  uint64_t len = ArgU64(info, 2, "length");
  if (len > (1u << 30)) ThrowType(env, "length must be at most 1 GiB");
  Napi::Buffer<uint8_t> buf = Napi::Buffer<uint8_t>::New(env, len);
  struct iovec local = {buf.Data(), len};
  struct iovec remote = {(void*)(uintptr_t)addr, len};
  ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
  if (n == -1) ThrowErrno(env, errno, "process_vm_readv");
  return Napi::Buffer<uint8_t>::Copy(env, buf.Data(), (size_t)n);
}

// processVmWritev(pid, addr, data: Uint8Array) -> bytes written.
static Napi::Value ProcessVmWritev(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  pid_t pid = ArgInt(info, 0, "pid");
  uint64_t addr = ArgU64(info, 1, "addr");
  if (info.Length() < 3 || !info[2].IsTypedArray()) ThrowType(env, "data must be a Uint8Array");
  auto data = info[2].As<Napi::Uint8Array>();
  struct iovec local = {data.Data(), data.ByteLength()};
  struct iovec remote = {(void*)(uintptr_t)addr, data.ByteLength()};
  ssize_t n = process_vm_writev(pid, &local, 1, &remote, 1, 0);
  if (n == -1) ThrowErrno(env, errno, "process_vm_writev");
  return Napi::Number::New(env, (double)n);
}

void InitPtrace(Napi::Env env, Napi::Object exports) {
  exports.Set("ptraceAttach", Napi::Function::New(env, PtraceAttach));
  exports.Set("ptraceDetach", Napi::Function::New(env, PtraceDetach));
  exports.Set("ptraceCont", Napi::Function::New(env, PtraceCont));
  exports.Set("ptraceSetOptions", Napi::Function::New(env, PtraceSetOptions));
  exports.Set("ptraceGetRegs", Napi::Function::New(env, PtraceGetRegs));
  exports.Set("ptraceSetRegs", Napi::Function::New(env, PtraceSetRegs));
  exports.Set("ptraceGetSiginfo", Napi::Function::New(env, PtraceGetSiginfo));
  exports.Set("ptraceGetEventMsg", Napi::Function::New(env, PtraceGetEventMsg));
  exports.Set("ptraceSetSigmask", Napi::Function::New(env, PtraceSetSigmask));
  exports.Set("wait4", Napi::Function::New(env, Wait4));
  exports.Set("tgkill", Napi::Function::New(env, Tgkill));
  exports.Set("kill", Napi::Function::New(env, Kill));
  exports.Set("setpriority", Napi::Function::New(env, SetPriority));
  exports.Set("gettid", Napi::Function::New(env, Gettid));
  exports.Set("processVmReadv", Napi::Function::New(env, ProcessVmReadv));
  exports.Set("processVmWritev", Napi::Function::New(env, ProcessVmWritev));
}

}  // namespace systrap
