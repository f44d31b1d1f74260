// MemoryFile: a memfd shared by Node and every stub (gVisor's pgalloc.MemoryFile role), and the
// sentry side of the syscall-thread protocol, which lives in that memory.
//
// Node maps the file inside a reserved window so that growing never moves existing views.
// Views are exact external ArrayBuffers over allocated ranges: nothing outside the file is ever
// reachable from JS (touching past EOF would be SIGBUS, a crash of Node). close() replaces the
// window with anonymous zero pages rather than unmapping it, so a view kept past close() reads
// zeros instead of faulting.
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include <atomic>
#include <functional>
#include <sys/stat.h>

#include "errors.h"
#include "liveness.h"
#include "stub/stub_abi.h"

namespace systrap {

static long Futex(uint32_t* addr, int op, uint32_t val, const struct timespec* ts) {
  return syscall(SYS_futex, addr, op, val, ts, nullptr, 0);
}

// A stub's liveness: see liveness.cc (a sandboxed stub is not Node's child).
static bool StubExited(pid_t pid) { return ProcessExited(pid); }

static int64_t NowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

// How long the sentry side spins on the reply before it futex-sleeps. Cross-CPU wake-ups cost
// tens of microseconds in a VM; a spinning waiter sees the reply in about one.
// Zero when the process may run on one CPU only: both sides spinning there only delay each other.
static const int64_t kSpinNs = [] {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) < 2) return (int64_t)0;
  return (int64_t)30 * 1000;
}();

// The syscall-thread protocol, sentry side. Post bumps `state` and wakes the loop (it may sleep
// on it); the loop runs the call, writes `ret`, then `done = state` and wakes `done`. The done
// word and ret are written by the stub, so they are hints from an untrusted party: a lying
// program only gets a wrong answer about its own address space.
// Precondition for all three: msg is Node's mapping of that thread's 2-page message, and the
// caller serialises requests per thread.

// SyscallThreadPost writes a request and returns the state the reply will carry. Never blocks.
static uint32_t SyscallThreadPost(uint8_t* msg, uint64_t sysno, const uint64_t* args) {
  uint32_t* state = reinterpret_cast<uint32_t*>(msg + SYSMSG_STATE);
  __atomic_store_n(reinterpret_cast<uint64_t*>(msg + SYSMSG_SYSNO), sysno, __ATOMIC_RELAXED);
  for (int i = 0; i < 6; i++)
    __atomic_store_n(reinterpret_cast<uint64_t*>(msg + SYSMSG_ARGS + 8 * i), args[i], __ATOMIC_RELAXED);
  uint32_t next = __atomic_add_fetch(state, 1, __ATOMIC_SEQ_CST);
  Futex(state, FUTEX_WAKE, 1, nullptr);
  return next;
}

// SyscallThreadPoll spins up to spinNs for the reply to `next`. Never sleeps.
static bool SyscallThreadPoll(uint8_t* msg, uint32_t next, int64_t spinNs, uint64_t* ret) {
  uint32_t* done = reinterpret_cast<uint32_t*>(msg + SYSMSG_DONE);
  int64_t start = spinNs > 0 ? NowNs() : 0;
  for (;;) {
    if (__atomic_load_n(done, __ATOMIC_ACQUIRE) == next) {
      *ret = __atomic_load_n(reinterpret_cast<uint64_t*>(msg + SYSMSG_REPLY), __ATOMIC_ACQUIRE);
      return true;
    }
    if (spinNs <= 0 || NowNs() - start >= spinNs) return false;
    __builtin_ia32_pause();
  }
}

// SyscallThreadWait sleeps until the reply to `next`. Returns 0 and *ret, or a negative errno:
// -ESRCH if the stub died, -ETIMEDOUT after timeoutMs (< 0: no limit). Blocks: a libuv pool
// thread or a worker, never the event loop thread.
static int SyscallThreadWait(uint8_t* msg, pid_t pid, uint32_t next, int64_t timeoutMs, uint64_t* ret) {
  uint32_t* done = reinterpret_cast<uint32_t*>(msg + SYSMSG_DONE);
  int64_t start = NowNs();
  for (;;) {
    if (SyscallThreadPoll(msg, next, 0, ret)) return 0;
    uint32_t d = __atomic_load_n(done, __ATOMIC_ACQUIRE);
    // Poll liveness every 20 ms: a stub killed while serving never wakes us.
    struct timespec ts = {0, 20 * 1000 * 1000};
    long r = Futex(done, FUTEX_WAIT, d, &ts);
    if (r == 0 || errno == EAGAIN || errno == EINTR) continue;
    if (errno != ETIMEDOUT) return -errno;
    if (StubExited(pid)) return -ESRCH;
    if (timeoutMs >= 0 && (NowNs() - start) / 1000000 > timeoutMs) return -ETIMEDOUT;
  }
}

// ReleaseOwner lets go of the message's SYSMSG_OWNER word (see src/shm/syscallThreadLock.ts)
// for its holder, waking whoever counted themselves in SYSMSG_OWNER_WAITERS.
static void ReleaseOwner(uint8_t* msg) {
  uint32_t* owner = reinterpret_cast<uint32_t*>(msg + SYSMSG_OWNER);
  uint32_t* waiters = reinterpret_cast<uint32_t*>(msg + SYSMSG_OWNER_WAITERS);
  __atomic_store_n(owner, 0, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(waiters, __ATOMIC_SEQ_CST) != 0) Futex(owner, FUTEX_WAKE, 1 << 30, nullptr);
}

// SyscallThreadRoundTrip: post, spin, then sleep.
static int SyscallThreadRoundTrip(uint8_t* msg, pid_t pid, uint64_t sysno, const uint64_t* args,
                                  int64_t timeoutMs, uint64_t* ret) {
  uint32_t next = SyscallThreadPost(msg, sysno, args);
  if (SyscallThreadPoll(msg, next, kSpinNs, ret)) return 0;
  return SyscallThreadWait(msg, pid, next, timeoutMs, ret);
}

static Napi::Error RoundTripError(Napi::Env env, int code) {
  Napi::Error e = ErrnoError(env, -code, "syscall-thread");
  if (code == -ESRCH) {
    e.Set("code", "ESTUBDEAD");
    e.Set("message", "ESTUBDEAD: the stub process died, syscall-thread");
  }
  return e;
}

// The type tag of MemoryFile objects (napi_type_tag_object): a random, fixed 128-bit value.
static const napi_type_tag kMemoryFileTag = {0x5f3c9a2e71b04d8cULL, 0xa1e6d2b7c4f80913ULL};

class MemoryFile : public Napi::ObjectWrap<MemoryFile> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "MemoryFile",
                       {
                           InstanceAccessor<&MemoryFile::Fd>("fd"),
                           InstanceAccessor<&MemoryFile::Size>("size"),
                           InstanceAccessor<&MemoryFile::MaxSize>("maxSize"),
                           InstanceMethod<&MemoryFile::Grow>("grow"),
                           InstanceMethod<&MemoryFile::Refresh>("refresh"),
                           InstanceMethod<&MemoryFile::PunchHole>("punchHole"),
                           InstanceMethod<&MemoryFile::Buffer>("buffer"),
                           InstanceMethod<&MemoryFile::Close>("close"),
                           InstanceMethod<&MemoryFile::FutexWake>("futexWake"),
                           InstanceMethod<&MemoryFile::FutexWait>("futexWait"),
                           InstanceMethod<&MemoryFile::FutexWaitv>("futexWaitv"),
                           InstanceMethod<&MemoryFile::WaitWordChange>("waitWordChange"),
                           InstanceMethod<&MemoryFile::SyscallThreadCall>("syscallThreadCall"),
                           InstanceMethod<&MemoryFile::SyscallThreadPostOnly>("syscallThreadPost"),
                           InstanceMethod<&MemoryFile::SyscallThreadAwait>("syscallThreadAwait"),
                           InstanceMethod<&MemoryFile::SyscallThreadCallSync>("syscallThreadCallSync"),
                       });
  }

  // new MemoryFile(name: string, maxSize: number, fd?: number)
  // Without fd: creates a memfd. With fd: maps an existing one (a worker's view of the file).
  MemoryFile(const Napi::CallbackInfo& info) : Napi::ObjectWrap<MemoryFile>(info) {
    Napi::Env env = info.Env();
    // Tagged, so that a MemoryFile passed back in (futexWaitv's files) is known to be one.
    napi_type_tag_object(env, info.This(), &kMemoryFileTag);
    if (info.Length() < 1 || !info[0].IsString()) ThrowType(env, "name must be a string");
    std::string name = info[0].As<Napi::String>();
    window_ = ArgU64(info, 1, "maxSize");
    if (window_ == 0 || window_ % 4096) ThrowType(env, "maxSize must be a positive multiple of 4096");
    bool own = !(info.Length() > 2 && info[2].IsNumber());
    if (own) {
      fd_ = (int)syscall(SYS_memfd_create, name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
      if (fd_ == -1) ThrowErrno(env, errno, "memfd_create");
      // Nobody may ever shrink the file (a page Node maps that leaves the file is a SIGBUS in
      // Node, which kills every program) or add seals (one forbidding writes or growth would
      // stop the platform). Growing stays allowed: only Node grows it.
      if (fcntl(fd_, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_SEAL) == -1) {
        int e = errno;
        close(fd_);
        ThrowErrno(env, e, "fcntl(F_ADD_SEALS)");
      }
    } else {
      fd_ = fcntl(ArgInt(info, 2, "fd"), F_DUPFD_CLOEXEC, 0);
      if (fd_ == -1) ThrowErrno(env, errno, "fcntl");
    }
    void* base = mmap(nullptr, window_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) {
      int e = errno;
      close(fd_);
      ThrowErrno(env, e, "mmap");
    }
    base_ = static_cast<uint8_t*>(base);
    window_ref_ = new Window{base_, window_, {1}};
    if (!own) {
      struct stat st;
      if (fstat(fd_, &st) == 0 && st.st_size > 0) MapUpTo(env, (uint64_t)st.st_size);
    }
  }

  ~MemoryFile() {
    Release();
    UnrefWindow(window_ref_);
  }

 private:
  void MapUpTo(Napi::Env env, uint64_t newSize) {
    if (newSize <= size_) return;
    void* p = mmap(base_ + size_, newSize - size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd_, size_);
    if (p == MAP_FAILED) ThrowErrno(env, errno, "mmap");
    size_ = newSize;
  }

  // The reserved window and who still points into it: this object and every ArrayBuffer view
  // made by buffer() (V8 finalizes those whenever it collects them, possibly after this object).
  // The window is unmapped once nothing points into it, so a memory file per stub (a forked
  // process's control memory) costs no address space once gone. Atomic: a worker's views are
  // finalized on that worker's thread.
  struct Window {
    uint8_t* base;
    uint64_t size;
    std::atomic<int> refs;
  };

  static void UnrefWindow(Window* w) {
    if (w && w->refs.fetch_sub(1) == 1) {
      munmap(w->base, w->size);
      delete w;
    }
  }

  void Release() {
    if (closed_) return;
    closed_ = true;
    // Keep the address range but drop the file: stale views read zeros, never fault.
    mmap(base_, window_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
    close(fd_);
    fd_ = -1;
  }

  void CheckOpen(Napi::Env env) {
    if (closed_) throw Napi::Error::New(env, "memory file is closed");
  }

  uint8_t* Range(const Napi::CallbackInfo& info, size_t i, uint64_t len) {
    uint64_t off = ArgU64(info, i, "offset");
    if (off > size_ || len > size_ - off) throw Napi::RangeError::New(info.Env(), "range is outside the memory file");
    return base_ + off;
  }

  Napi::Value Fd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }
  Napi::Value Size(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), (double)size_); }
  Napi::Value MaxSize(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), (double)window_); }

  // grow(newSize): extends the file (sparse) and Node's mapping of it.
  Napi::Value Grow(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    uint64_t n = ArgU64(info, 0, "size");
    if (n % 4096) ThrowType(env, "size must be a multiple of 4096");
    if (n > window_) throw Napi::RangeError::New(env, "size exceeds the memory file's maximum");
    if (n <= size_) return env.Undefined();
    // Someone holding the fd may have grown the file already: a smaller ftruncate would be a
    // shrink, which the seal refuses. Grow only what is missing.
    struct stat st;
    if (fstat(fd_, &st) == -1) ThrowErrno(env, errno, "fstat");
    if ((uint64_t)st.st_size < n && ftruncate(fd_, (off_t)n) == -1) ThrowErrno(env, errno, "ftruncate");
    MapUpTo(env, n);
    return env.Undefined();
  }

  // refresh(): a view of a file another thread grows (a worker's) maps what was added since.
  // Existing views stay valid: the mapping only extends inside the reserved window.
  Napi::Value Refresh(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    struct stat st;
    if (fstat(fd_, &st) == -1) ThrowErrno(env, errno, "fstat");
    uint64_t n = (uint64_t)st.st_size;
    if (n > window_) n = window_;
    MapUpTo(env, n & ~(uint64_t)4095);
    return Napi::Number::New(env, (double)size_);
  }

  // punchHole(offset, length): gives the pages of a freed range back to the host.
  Napi::Value PunchHole(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    uint64_t len = ArgU64(info, 1, "length");
    uint8_t* p = Range(info, 0, len);
    if (fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)(p - base_), (off_t)len) == -1)
      ThrowErrno(env, errno, "fallocate");
    return env.Undefined();
  }

  // buffer(offset, length): an ArrayBuffer over exactly that range of the file.
  Napi::Value Buffer(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    uint64_t len = ArgU64(info, 1, "length");
    uint8_t* p = Range(info, 0, len);
    window_ref_->refs.fetch_add(1);
    return Napi::ArrayBuffer::New(env, p, len, [](Napi::Env, void*, Window* w) { UnrefWindow(w); }, window_ref_);
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Release();
    return info.Env().Undefined();
  }

  // futexWake(offset, count) -> woken: a shared (not private) futex: stubs are other processes.
  Napi::Value FutexWake(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    uint32_t* w = reinterpret_cast<uint32_t*>(Range(info, 0, 4));
    long r = Futex(w, FUTEX_WAKE, (uint32_t)ArgInt(info, 1, "count"), nullptr);
    if (r == -1) ThrowErrno(env, errno, "futex");
    return Napi::Number::New(env, (double)r);
  }

  // futexWait(offset, expected, timeoutMs) -> 'woken' | 'changed' | 'timeout' | 'interrupted'.
  // Blocks: call only from a worker thread.
  Napi::Value FutexWait(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    uint32_t* w = reinterpret_cast<uint32_t*>(Range(info, 0, 4));
    uint32_t expected = (uint32_t)ArgU64(info, 1, "expected");
    int ms = ArgInt(info, 2, "timeoutMs");
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    long r = Futex(w, FUTEX_WAIT, expected, ms < 0 ? nullptr : &ts);
    if (r == 0) return Napi::String::New(env, "woken");
    if (errno == EAGAIN) return Napi::String::New(env, "changed");
    if (errno == ETIMEDOUT) return Napi::String::New(env, "timeout");
    if (errno == EINTR) return Napi::String::New(env, "interrupted");
    ThrowErrno(env, errno, "futex");
  }

  // futexWaitv(offsets: Uint32Array, expected: Uint32Array, timeoutMs) -> index | -1 (timeout)
  // | -2 (a word no longer read as expected: look again) | -3 (interrupted): one sleep on up to
  // 128 words of the file at once (futex_waitv, Linux 5.16), each a shared futex (the other
  // side is a stub process). A sentry host waits on every program's doorbell this way. Blocks:
  // call only from a worker thread.
  Napi::Value FutexWaitv(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    if (info.Length() < 3 || !info[0].IsTypedArray() || !info[1].IsTypedArray())
      ThrowType(env, "futexWaitv(offsets: Uint32Array, expected: Uint32Array, timeoutMs: number)");
    Napi::TypedArray offs = info[0].As<Napi::TypedArray>();
    Napi::TypedArray exps = info[1].As<Napi::TypedArray>();
    if (offs.TypedArrayType() != napi_uint32_array || exps.TypedArrayType() != napi_uint32_array)
      ThrowType(env, "offsets and expected must be Uint32Arrays");
    size_t n = offs.ElementLength();
    if (n == 0 || n > 128 || exps.ElementLength() != n) throw Napi::RangeError::New(env, "1 to 128 words, as many expected values");
    int ms = ArgInt(info, 2, "timeoutMs");
    uint32_t* o = offs.As<Napi::Uint32Array>().Data();
    uint32_t* e = exps.As<Napi::Uint32Array>().Data();
    struct FutexWaitv {
      uint64_t val;
      uint64_t uaddr;
      uint32_t flags;
      uint32_t reserved;
    } w[128];
    const uint32_t FUTEX2_SIZE_U32 = 0x02;  // shared: no FUTEX2_PRIVATE
    // files (optional): the memory file word i is in, when not this one (a forked process's
    // control memory is a file of its own).
    Napi::Array files;
    if (info.Length() > 3 && !info[3].IsUndefined()) {
      if (!info[3].IsArray() || info[3].As<Napi::Array>().Length() != n) ThrowType(env, "files must be an array with one entry per word");
      files = info[3].As<Napi::Array>();
    }
    for (size_t i = 0; i < n; i++) {
      MemoryFile* f = this;
      if (!files.IsEmpty()) {
        Napi::Value v = files.Get((uint32_t)i);
        if (v.IsObject()) {
          Napi::Object obj = v.As<Napi::Object>();
          bool ours = false;
          if (napi_check_object_type_tag(env, obj, &kMemoryFileTag, &ours) != napi_ok || !ours)
            ThrowType(env, "files entries must be MemoryFiles or undefined");
          f = Napi::ObjectWrap<MemoryFile>::Unwrap(obj);
          f->CheckOpen(env);
        }
      }
      if ((uint64_t)o[i] + 4 > f->size_ || (o[i] & 3)) throw Napi::RangeError::New(env, "a word is outside its memory file or unaligned");
      w[i] = {e[i], (uint64_t)(uintptr_t)(f->base_ + o[i]), FUTEX2_SIZE_U32, 0};
    }
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += ms / 1000;
    deadline.tv_nsec += (long)(ms % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000) {
      deadline.tv_sec++;
      deadline.tv_nsec -= 1000000000;
    }
    long r = syscall(SYS_futex_waitv, w, (unsigned)n, 0, ms < 0 ? nullptr : &deadline, CLOCK_MONOTONIC);
    if (r >= 0) return Napi::Number::New(env, (double)r);
    if (errno == ETIMEDOUT) return Napi::Number::New(env, -1);
    if (errno == EAGAIN) return Napi::Number::New(env, -2);
    if (errno == EINTR) return Napi::Number::New(env, -3);
    ThrowErrno(env, errno, "futex_waitv");
  }

  struct Call {
    uint8_t* msg;
    pid_t pid;
    uint64_t sysno;
    uint64_t args[6];
    int64_t timeoutMs;
  };

  // The message named by argument i: a page-aligned SYSMSG_SIZE range of the open file.
  uint8_t* MessageArg(const Napi::CallbackInfo& info, size_t i) {
    CheckOpen(info.Env());
    uint8_t* msg = Range(info, i, SYSMSG_SIZE);
    if ((msg - base_) % 4096) throw Napi::RangeError::New(info.Env(), "message offset must be page aligned");
    return msg;
  }

  // A wait's spinNs (argument i) and optional releaseOwner (argument i + 1).
  static void WaitArgs(const Napi::CallbackInfo& info, size_t i, int64_t* spinNs, bool* release) {
    *spinNs = ArgInt(info, i, "spinNs");
    if (*spinNs < 0 || *spinNs > 1000000) throw Napi::RangeError::New(info.Env(), "spinNs must be in 0..1000000");
    *release = false;
    if (info.Length() > i + 1 && !info[i + 1].IsUndefined()) {
      if (!info[i + 1].IsBoolean()) throw Napi::TypeError::New(info.Env(), "releaseOwner must be a boolean");
      *release = info[i + 1].As<Napi::Boolean>().Value();
    }
  }

  Call ReadCall(const Napi::CallbackInfo& info) {
    Call c = {};
    c.msg = MessageArg(info, 0);
    c.pid = ArgInt(info, 1, "pid");
    c.sysno = ArgU64(info, 2, "sysno");
    uint64_t* a = ArgU64Array(info, 3, "args", 6);
    for (int i = 0; i < 6; i++) c.args[i] = a[i];
    c.timeoutMs = ArgInt(info, 4, "timeoutMs");
    return c;
  }

  // WaitWorker runs a blocking wait on libuv's pool (futex waits are not bound to a thread,
  // unlike ptrace) and settles a Promise with its result: a bigint or a number, or the error
  // for a negative errno code.
  class WaitWorker : public Napi::AsyncWorker {
   public:
    using Fn = std::function<int(uint64_t*)>;
    WaitWorker(Napi::Env env, Fn fn, bool bigint, Napi::Object keep)
        : Napi::AsyncWorker(env, "systrap:wait"), fn_(std::move(fn)), bigint_(bigint),
          deferred_(Napi::Promise::Deferred::New(env)) {
      keep_ = Napi::Persistent(keep);  // the MemoryFile must outlive the wait
    }
    static Napi::Promise Start(Napi::Env env, Fn fn, bool bigint, Napi::Object keep) {
      auto* w = new WaitWorker(env, std::move(fn), bigint, keep);
      Napi::Promise p = w->deferred_.Promise();
      w->Queue();
      return p;
    }
    void Execute() override { code_ = fn_(&ret_); }
    void OnOK() override {
      Napi::Env env = Env();
      if (code_ != 0)
        deferred_.Reject(RoundTripError(env, code_).Value());
      else if (bigint_)
        deferred_.Resolve(Napi::BigInt::New(env, ret_));
      else
        deferred_.Resolve(Napi::Number::New(env, (double)ret_));
    }

   private:
    Fn fn_;
    bool bigint_;
    Napi::Promise::Deferred deferred_;
    Napi::ObjectReference keep_;
    int code_ = 0;
    uint64_t ret_ = 0;
  };

  // waitWordChange(offset, value, pid, timeoutMs, waitersOffset?) -> Promise<number>: resolves
  // with the word's value once it differs from `value`, or after timeoutMs (< 0: none) with
  // whatever it is (futex wait on libuv's pool); ESTUBDEAD if process pid exits. With
  // waitersOffset, the u32 there counts this waiter while it waits (the stub wakes the word only
  // when someone waits).
  Napi::Value WaitWordChange(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    uint32_t* w = reinterpret_cast<uint32_t*>(Range(info, 0, 4));
    uint32_t value = (uint32_t)ArgU64(info, 1, "value");
    pid_t pid = ArgInt(info, 2, "pid");
    int64_t timeoutMs = ArgInt(info, 3, "timeoutMs");
    uint32_t* waiters = nullptr;
    if (info.Length() > 4 && !info[4].IsUndefined()) waiters = reinterpret_cast<uint32_t*>(Range(info, 4, 4));
    auto wait = [w, value, pid, timeoutMs, waiters](uint64_t* out) -> int {
      struct Count {
        uint32_t* c;
        explicit Count(uint32_t* p) : c(p) { if (c) __atomic_add_fetch(c, 1, __ATOMIC_SEQ_CST); }
        ~Count() { if (c) __atomic_sub_fetch(c, 1, __ATOMIC_SEQ_CST); }
      } count(waiters);
      int64_t start = NowNs();
      for (;;) {
        uint32_t v = __atomic_load_n(w, __ATOMIC_ACQUIRE);
        if (v != value) {
          *out = v;
          return 0;
        }
        struct timespec ts = {0, 20 * 1000 * 1000};
        if (Futex(w, FUTEX_WAIT, value, &ts) == -1 && errno == ETIMEDOUT) {
          if (StubExited(pid)) return -ESRCH;
          // Bounded: give the pool thread back now and then (libuv's pool is small and shared).
          if (timeoutMs >= 0 && (NowNs() - start) / 1000000 >= timeoutMs) {
            *out = v;
            return 0;
          }
        }
      }
    };
    return WaitWorker::Start(env, wait, false, info.This().As<Napi::Object>());
  }

  // syscallThreadCall(msgOffset, pid, sysno, args: BigUint64Array(6), timeoutMs, spinNs,
  //   releaseOwner?: boolean) -> bigint | Promise<bigint>
  // Posts the request, spins up to spinNs on this thread (bounded: the event loop thread may
  // call it), and returns the result if it came; else the wait moves to libuv's pool (a futex
  // wait is not bound to a thread, unlike ptrace) and a Promise is returned. With releaseOwner,
  // a Promise that resolves has let go of the message's SYSMSG_OWNER word already, on the pool
  // thread, as soon as the answer came (the caller holds it and reads nothing more of the
  // message): the other side need not wait for the caller's event loop to hear the answer.
  Napi::Value SyscallThreadCall(const Napi::CallbackInfo& info) {
    Call c = ReadCall(info);
    int64_t spinNs;
    bool release;
    WaitArgs(info, 5, &spinNs, &release);
    uint32_t next = SyscallThreadPost(c.msg, c.sysno, c.args);
    return AwaitAnswer(info.Env(), c.msg, c.pid, next, c.timeoutMs, spinNs, release, info.This().As<Napi::Object>());
  }

  // The answer to request `next` of the message at msg: at once if it comes within spinNs,
  // else a Promise settled from libuv's pool (see syscallThreadCall for `release`).
  static Napi::Value AwaitAnswer(Napi::Env env, uint8_t* msg, pid_t pid, uint32_t next, int64_t timeoutMs,
                                 int64_t spinNs, bool release, Napi::Object keep) {
    uint64_t ret = 0;
    if (SyscallThreadPoll(msg, next, spinNs, &ret)) {
      // Answered here, on the caller's thread: the caller lets go of the word itself.
      return Napi::BigInt::New(env, ret);
    }
    auto wait = [msg, pid, next, timeoutMs, release](uint64_t* out) {
      int code = SyscallThreadWait(msg, pid, next, timeoutMs, out);
      if (code == 0 && release) ReleaseOwner(msg);
      return code;
    };
    return WaitWorker::Start(env, wait, true, keep);
  }

  // syscallThreadPost(msgOffset, sysno, args: BigUint64Array(6)) -> number: posts a request and
  // returns the state its answer will carry (for syscallThreadAwait). Never blocks. For a
  // request written before the stub's loop runs (a fork child's first thread: see forkStub),
  // which the loop finds as it starts. Precondition: the caller holds the message's owner word
  // and no request of it is unanswered.
  Napi::Value SyscallThreadPostOnly(const Napi::CallbackInfo& info) {
    uint8_t* msg = MessageArg(info, 0);
    uint64_t sysno = ArgU64(info, 1, "sysno");
    uint64_t* a = ArgU64Array(info, 2, "args", 6);
    return Napi::Number::New(info.Env(), (double)SyscallThreadPost(msg, sysno, a));
  }

  // syscallThreadAwait(msgOffset, pid, next, timeoutMs, spinNs, releaseOwner?) -> bigint |
  // Promise<bigint>: the answer to the request syscallThreadPost posted as `next`, as
  // syscallThreadCall returns it.
  Napi::Value SyscallThreadAwait(const Napi::CallbackInfo& info) {
    uint8_t* msg = MessageArg(info, 0);
    pid_t pid = ArgInt(info, 1, "pid");
    uint64_t next = ArgU64(info, 2, "next");
    if (next > 0xffffffffULL) throw Napi::RangeError::New(info.Env(), "next must be a u32");
    int64_t timeoutMs = ArgInt(info, 3, "timeoutMs");
    int64_t spinNs;
    bool release;
    WaitArgs(info, 4, &spinNs, &release);
    return AwaitAnswer(info.Env(), msg, pid, (uint32_t)next, timeoutMs, spinNs, release, info.This().As<Napi::Object>());
  }

  // syscallThreadCallSync(...) -> bigint. Blocks: workers and benchmarks only.
  Napi::Value SyscallThreadCallSync(const Napi::CallbackInfo& info) {
    Call c = ReadCall(info);
    uint64_t ret = 0;
    int code = SyscallThreadRoundTrip(c.msg, c.pid, c.sysno, c.args, c.timeoutMs, &ret);
    if (code != 0) throw RoundTripError(info.Env(), code);
    return Napi::BigInt::New(info.Env(), ret);
  }

  int fd_ = -1;
  uint8_t* base_ = nullptr;
  uint64_t window_ = 0;  // reserved bytes at base_
  Window* window_ref_ = nullptr;  // base_'s window, shared with the views (see Window)
  uint64_t size_ = 0;    // file size == mapped bytes at base_
  bool closed_ = false;
};

void InitMemoryFile(Napi::Env env, Napi::Object exports) { exports.Set("MemoryFile", MemoryFile::Define(env)); }

}  // namespace systrap
