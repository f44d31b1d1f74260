// execProbe: what execve's checks read of a file (is it there, a regular file, executable, its
// first bytes), in one task on libuv's pool. The sentry checks a program before execve's point
// of no return (src/sentry/exec/check.ts); done with fs.promises that took six pool round trips
// (open, fstat, access, two reads, close), each one a wake-up of the event loop. Blocking calls
// stay off the event loop thread: a file on a filesystem that hangs holds one pool thread, as
// it would natively hold only the program that execs it.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "errors.h"

namespace systrap {

// Most bytes one probe reads: the ELF header, the program headers and PT_INTERP's path of any
// ordinary executable lie in the first pages (check.ts reads further itself when they do not).
static const int64_t kMaxProbe = 1 << 16;

// The credentials a check is made with: the program's filesystem uid and gid and its groups.
struct ProbeCreds {
  uint32_t uid;
  uint32_t gid;
  std::vector<gid_t> groups;
};

// Runs `fn` with this thread's filesystem ids and groups set to `c`, then puts them back.
// Raw syscalls: Linux keeps credentials per thread, and glibc's wrappers would change every
// thread of Node (setxid broadcast). Only a pool thread's own credentials change, for the
// length of one probe. Returns false (errno set) when they could not be taken on or put back;
// a thread that cannot get its own back ends the process (it would serve Node with the
// program's rights).
template <typename F>
static bool AsProgram(const ProbeCreds& c, F fn) {
  gid_t saved[256];
  long n = syscall(SYS_getgroups, 256, saved);
  if (n < 0) return false;
  uid_t uid = (uid_t)syscall(SYS_setfsuid, -1);
  gid_t gid = (gid_t)syscall(SYS_setfsgid, -1);
  if (syscall(SYS_setgroups, c.groups.size(), c.groups.data()) != 0) return false;
  syscall(SYS_setfsgid, c.gid);
  syscall(SYS_setfsuid, c.uid);
  fn();
  int err = errno;
  syscall(SYS_setfsuid, uid);
  syscall(SYS_setfsgid, gid);
  if (syscall(SYS_setgroups, n, saved) != 0 || (uid_t)syscall(SYS_setfsuid, -1) != uid) abort();
  errno = err;
  return true;
}

// One probe's work and result, run on whichever thread the caller chose (libuv's pool for
// execProbe, the calling worker for execProbeSync). No N-API inside Run.
struct Probe {
  std::string path;
  size_t max = 0;
  std::unique_ptr<ProbeCreds> creds;
  int err = 0;
  const char* syscall = "";
  uint32_t mode = 0;
  int64_t size = 0;
  bool executable = false;
  std::vector<uint8_t> head;

  // With credentials, as the program would.
  void Run() {
    if (!creds) return Look();
    if (!AsProgram(*creds, [this] { Look(); })) Fail(errno, "setgroups");
  }

  // Each step records the first failure and stops.
  void Look() {
    int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd == -1) return Fail(errno, "open");
    struct stat st;
    if (fstat(fd, &st) == -1) {
      Fail(errno, "fstat");
      close(fd);
      return;
    }
    mode = st.st_mode;
    size = st.st_size;
    // Only a regular file is read (a device's read could block or have effects).
    if (S_ISREG(st.st_mode)) {
      // AT_EACCESS: by the filesystem ids (the program's), as execve checks, not the real ones.
      executable = faccessat(AT_FDCWD, path.c_str(), X_OK, AT_EACCESS) == 0;
      head.resize(max);
      size_t got = 0;
      while (got < max) {
        ssize_t n = pread(fd, head.data() + got, max - got, (off_t)got);
        if (n == -1 && errno == EINTR) continue;
        if (n == -1) {
          Fail(errno, "pread");
          break;
        }
        if (n == 0) break;
        got += (size_t)n;
      }
      head.resize(got);
    }
    close(fd);
  }

  void Fail(int e, const char* call) {
    err = e;
    syscall = call;
  }

  // The result as JS sees it (precondition: err == 0).
  Napi::Object ToObject(Napi::Env env) const {
    Napi::Object r = Napi::Object::New(env);
    r.Set("mode", Napi::Number::New(env, (double)mode));
    r.Set("size", Napi::Number::New(env, (double)size));
    r.Set("executable", Napi::Boolean::New(env, executable));
    r.Set("head", Napi::Buffer<uint8_t>::Copy(env, head.data(), head.size()));
    return r;
  }
};

class ExecProbeWorker : public Napi::AsyncWorker {
 public:
  ExecProbeWorker(Napi::Env env, std::unique_ptr<Probe> probe)
      : Napi::AsyncWorker(env, "systrap:execProbe"), probe_(std::move(probe)),
        deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  // Off the event loop thread: no N-API here.
  void Execute() override { probe_->Run(); }

  void OnOK() override {
    Napi::Env env = Env();
    if (probe_->err != 0)
      deferred_.Reject(ErrnoError(env, probe_->err, probe_->syscall).Value());
    else
      deferred_.Resolve(probe_->ToObject(env));
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  std::unique_ptr<Probe> probe_;
  Napi::Promise::Deferred deferred_;
};

// The optional credentials argument: { uid, gid, groups: number[] } (at most 256 groups).
static std::unique_ptr<ProbeCreds> CredsArg(const Napi::CallbackInfo& info, size_t i) {
  Napi::Env env = info.Env();
  if (info.Length() <= i || info[i].IsUndefined()) return nullptr;
  if (!info[i].IsObject()) ThrowType(env, "creds must be an object { uid, gid, groups }");
  Napi::Object o = info[i].As<Napi::Object>();
  auto c = std::make_unique<ProbeCreds>();
  Napi::Value uid = o.Get("uid"), gid = o.Get("gid"), groups = o.Get("groups");
  if (!uid.IsNumber() || !gid.IsNumber()) ThrowType(env, "creds.uid and creds.gid must be numbers");
  if (!groups.IsArray()) ThrowType(env, "creds.groups must be an array of numbers");
  c->uid = uid.As<Napi::Number>().Uint32Value();
  c->gid = gid.As<Napi::Number>().Uint32Value();
  Napi::Array a = groups.As<Napi::Array>();
  if (a.Length() > 256) throw Napi::RangeError::New(env, "creds.groups holds at most 256 groups");
  for (uint32_t k = 0; k < a.Length(); k++) {
    Napi::Value g = a.Get(k);
    if (!g.IsNumber()) ThrowType(env, "creds.groups must be an array of numbers");
    c->groups.push_back((gid_t)g.As<Napi::Number>().Uint32Value());
  }
  return c;
}

// The arguments both forms take: (path, maxBytes, creds?), each checked.
static std::unique_ptr<Probe> ProbeArgs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) ThrowType(env, "path must be a string");
  auto p = std::make_unique<Probe>();
  p->path = info[0].As<Napi::String>().Utf8Value();
  if (p->path.empty() || p->path.find('\0') != std::string::npos) ThrowType(env, "path must be a non-empty string without NUL");
  int32_t max = ArgInt(info, 1, "maxBytes");
  if (max < 1 || max > kMaxProbe) throw Napi::RangeError::New(env, "maxBytes must be in 1..65536");
  p->max = (size_t)max;
  p->creds = CredsArg(info, 2);
  return p;
}

// execProbe(path: string, maxBytes: number, creds?) -> Promise<{ mode, size, executable, head }>:
// opens `path` without blocking on it (O_NONBLOCK: a FIFO's open returns at once), fstats it
// and, for a regular file only, checks execute permission (faccessat X_OK by the filesystem
// ids) and reads its first `maxBytes` (1..65536). With `creds`, all of it as a process with
// those filesystem ids and groups would (a program that dropped root). Rejects with
// { code, errno, syscall } for the first call that failed.
static Napi::Value ExecProbe(const Napi::CallbackInfo& info) {
  auto* w = new ExecProbeWorker(info.Env(), ProbeArgs(info));
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// execProbeSync(path, maxBytes, creds?) -> { mode, size, executable, head }: the same on the
// calling thread, which it blocks for as long as the file system takes (a sentry worker, whose
// exec needs the answer before it goes on; never the event loop thread). Throws what
// execProbe rejects with.
static Napi::Value ExecProbeSync(const Napi::CallbackInfo& info) {
  std::unique_ptr<Probe> p = ProbeArgs(info);
  p->Run();
  if (p->err != 0) throw ErrnoError(info.Env(), p->err, p->syscall);
  return p->ToObject(info.Env());
}

void InitExecProbe(Napi::Env env, Napi::Object exports) {
  exports.Set("execProbe", Napi::Function::New(env, ExecProbe, "execProbe"));
  exports.Set("execProbeSync", Napi::Function::New(env, ExecProbeSync, "execProbeSync"));
}

}  // namespace systrap
