// The forker: one native thread, started on first use and never stopped, that creates source
// stubs (and runs the other forks whose children must die with Node: RunOnForkerThread, used by
// sandbox.cc). Why a dedicated thread: PR_SET_PDEATHSIG fires when the *thread* that forked the stub
// exits. Stubs forked from a worker would die with that worker; stubs forked from this thread
// die exactly when the Node process dies. Later stubs are cloned from a source stub with
// CLONE_PARENT, so they share this thread as parent.
//
// Between the raw clone and the jump into stub code the child runs raw syscalls only: Node is
// multithreaded, and a lock held by another thread at fork time would never be released in the
// child (no malloc, no libc, no libuv).
#include <signal.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <deque>
#include <map>
#include <vector>
#include <mutex>
#include <thread>

#include "errors.h"
#include "forker.h"
#include "stub/stub_abi.h"
#include "stub/raw_syscall.h"

namespace systrap {

uintptr_t StubRegionStart();
uintptr_t StubEntry();

static inline long RawSyscall(long n, long a = 0, long b = 0, long c = 0, long d = 0, long e = 0, long f = 0) {
  return raw_syscall(n, a, b, c, d, e, f);
}

struct KernelSigaction {
  unsigned long handler, flags, restorer, mask;
};

[[noreturn]] static void ChildExit(int code) {
  for (;;) RawSyscall(SYS_exit_group, code);
}

// StubChildSetup runs in the new process. Raw syscalls only.
void StubChildSetup(int memfd, int chan) {
  // A session of its own: terminal job-control signals meant for Node never reach stubs.
  RawSyscall(SYS_setsid);
  KernelSigaction dfl = {0, 0, 0, 0};
  for (int s = 1; s <= 64; s++)
    if (s != SIGKILL && s != SIGSTOP) RawSyscall(SYS_rt_sigaction, s, (long)&dfl, 0, 8);
  // Node's fd table is not ours to share: keep only the memory file, at a fixed number.
  if (memfd != STUB_MEMFD && RawSyscall(SYS_dup2, memfd, STUB_MEMFD) < 0) ChildExit(2);
  // The fd channel (see SendFds): its stub end at STUB_FDCHAN, inherited by every clone.
  if (RawSyscall(SYS_dup2, chan, STUB_FDCHAN) < 0) ChildExit(2);
  if (RawSyscall(SYS_close_range, 0, STUB_MEMFD - 1, 0) < 0) ChildExit(3);
  static_assert(STUB_FDCHAN == STUB_MEMFD + 1, "the stub's fds are adjacent");
  if (RawSyscall(SYS_close_range, STUB_FDCHAN + 1, ~0U, 0) < 0) ChildExit(3);
  uint64_t empty = 0;
  RawSyscall(SYS_rt_sigprocmask, SIG_SETMASK, (long)&empty, 0, 8);
}

// StubChild runs in the new process. Raw syscalls only.
[[noreturn]] static void StubChild(int memfd, int chan, long ppid, uintptr_t entry) {
  StubChildSetup(memfd, chan);
  // Into the stub code with R15 = the expected parent pid (see stub.S).
  asm volatile("mov %%rcx, %%r15\n\tjmp *%%rax" ::"a"(entry), "c"(ppid) : "memory");
  __builtin_unreachable();
}

struct ForkRequest {
  int memfd = -1;
  int chan = -1;  // the stub's end of the fd channel
  long pid = 0;  // result: > 0 pid, < 0 -errno
  bool done = false;
  // When set, the forker thread runs job(arg) instead of forking a source stub (RunOnForkerThread).
  void (*job)(void*) = nullptr;
  void* arg = nullptr;
};

// Heap-allocated and never freed on purpose: the forker thread waits on forkCv until the process
// ends, and glibc's pthread_cond_destroy (run by a static destructor at exit) blocks while a
// thread waits, which would hang Node's exit.
static std::mutex& forkMu = *new std::mutex;
static std::condition_variable& forkCv = *new std::condition_variable;
static std::deque<ForkRequest*>& forkQueue = *new std::deque<ForkRequest*>;
static bool forkerStarted = false;  // protected by forkMu
// Node's end of each source stub's fd channel, by source pid. Protected by forkMu. Process-wide
// (the addon is loaded once per process): the source is forked on a tracer worker, fds are
// sent from the main thread.
static std::map<long, int>& fdChannels = *new std::map<long, int>;

static void ForkerMain() {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);  // the child inherits this mask until it resets it
  // A forked child inherits the rseq registration of the forking thread, whose area lives in
  // this thread's TLS. The stub unmaps that memory, after which the kernel's next rseq update
  // kills it with SIGSEGV. This thread runs no code that uses rseq, so it drops its own.
  if (__rseq_size > 0) {
    void* area = static_cast<char*>(__builtin_thread_pointer()) + __rseq_offset;
    syscall(SYS_rseq, area, __rseq_size < 32 ? 32 : __rseq_size, RSEQ_FLAG_UNREGISTER, RSEQ_SIG);
  }
  long ppid = getpid();
  for (;;) {
    ForkRequest* req;
    {
      std::unique_lock<std::mutex> l(forkMu);
      forkCv.wait(l, [] { return !forkQueue.empty(); });
      req = forkQueue.front();
      forkQueue.pop_front();
    }
    long pid = 0;
    if (req->job) {
      req->job(req->arg);
    } else {
      uintptr_t entry = StubEntry();
      pid = RawSyscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
      if (pid == 0) StubChild(req->memfd, req->chan, ppid, entry);
    }
    {
      std::lock_guard<std::mutex> l(forkMu);
      req->pid = pid;
      req->done = true;
    }
    forkCv.notify_all();
  }
}

// Queues `req` for the forker thread (starting it on first use) and waits until it is done.
static void RunOnForker(ForkRequest& req) {
  std::unique_lock<std::mutex> l(forkMu);
  if (!forkerStarted) {
    std::thread(ForkerMain).detach();
    forkerStarted = true;
  }
  forkQueue.push_back(&req);
  forkCv.notify_all();
  forkCv.wait(l, [&] { return req.done; });
}

void RunOnForkerThread(void (*job)(void*), void* arg) {
  ForkRequest req;
  req.job = job;
  req.arg = arg;
  RunOnForker(req);
}

void RegisterFdChannel(long pid, int fd) {
  std::lock_guard<std::mutex> l(forkMu);
  auto it = fdChannels.find(pid);
  if (it != fdChannels.end()) close(it->second);  // a dead stub's, whose pid was reused
  fdChannels[pid] = fd;
}

// forkSourceStub(memfd) -> pid. Precondition: stubRegionInit() has run. The new stub stops
// itself with SIGSTOP; the caller (a tracer worker) waits for that stop and attaches.
static Napi::Value ForkSourceStub(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int memfd = ArgInt(info, 0, "memfd");
  if (memfd < 0) ThrowType(env, "memfd must be a file descriptor");
  if (StubRegionStart() == 0) throw Napi::Error::New(env, "stubRegionInit() must run before forkSourceStub()");
  // The fd channel: Node keeps one end (close-on-exec), the source stub the other; stubs cloned
  // from the source inherit it, so fds (stdio for `systrap run`) can be passed into a stub.
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) == -1) ThrowErrno(env, errno, "socketpair");
  ForkRequest req;
  req.memfd = memfd;
  req.chan = pair[1];
  RunOnForker(req);
  close(pair[1]);
  if (req.pid < 0) {
    close(pair[0]);
    ThrowErrno(env, (int)-req.pid, "clone");
  }
  RegisterFdChannel(req.pid, pair[0]);
  return Napi::Number::New(env, (double)req.pid);
}

// sendFds(sourcePid, fds[]) -> undefined: one SCM_RIGHTS message with `fds` on the fd channel of
// that source stub; a stub cloned from it receives them with recvmsg(STUB_FDCHAN). Precondition:
// the caller serialises send and receive (every stub of the source shares the channel).
static Napi::Value SendFds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  long source = ArgInt(info, 0, "sourcePid");
  if (info.Length() < 2 || !info[1].IsArray()) ThrowType(env, "fds must be an array of file descriptors");
  Napi::Array arr = info[1].As<Napi::Array>();
  if (arr.Length() == 0 || arr.Length() > 16) ThrowType(env, "fds must hold 1 to 16 file descriptors");
  std::vector<int> fds;
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value v = arr.Get(i);
    if (!v.IsNumber() || v.As<Napi::Number>().Int32Value() < 0) ThrowType(env, "fds must be an array of file descriptors");
    fds.push_back(v.As<Napi::Number>().Int32Value());
  }
  int sock;
  {
    std::lock_guard<std::mutex> l(forkMu);
    auto it = fdChannels.find(source);
    if (it == fdChannels.end()) throw Napi::Error::New(env, "no fd channel for this source stub");
    sock = it->second;
  }
  char byte = 0;
  struct iovec iov = {&byte, 1};
  std::vector<char> ctl(CMSG_SPACE(sizeof(int) * fds.size()));
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = ctl.data();
  msg.msg_controllen = ctl.size();
  struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
  memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  if (sendmsg(sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT) == -1) ThrowErrno(env, errno, "sendmsg");
  return env.Undefined();
}

// closeFdChannel(sourcePid): closes Node's end (the source stub is gone).
static Napi::Value CloseFdChannel(const Napi::CallbackInfo& info) {
  long source = ArgInt(info, 0, "sourcePid");
  std::lock_guard<std::mutex> l(forkMu);
  auto it = fdChannels.find(source);
  if (it != fdChannels.end()) {
    close(it->second);
    fdChannels.erase(it);
  }
  return info.Env().Undefined();
}

void InitForker(Napi::Env env, Napi::Object exports) {
  exports.Set("forkSourceStub", Napi::Function::New(env, ForkSourceStub));
  exports.Set("sendFds", Napi::Function::New(env, SendFds));
  exports.Set("closeFdChannel", Napi::Function::New(env, CloseFdChannel));
}

}  // namespace systrap
