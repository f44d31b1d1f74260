// execProbe: what execve's checks read of a file (is it there, a regular file, executable, its
// first bytes), in one task on libuv's pool. The sentry checks a program before execve's point
// of no return (src/sentry/exec/check.ts); done with fs.promises that took six pool round trips
// (open, fstat, access, two reads, close), each one a wake-up of the event loop. Blocking calls
// stay off the event loop thread: a file on a filesystem that hangs holds one pool thread, as
// it would natively hold only the program that execs it.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "errors.h"

namespace systrap {

// Most bytes one probe reads: the ELF header, the program headers and PT_INTERP's path of any
// ordinary executable lie in the first pages (check.ts reads further itself when they do not).
static const int64_t kMaxProbe = 1 << 16;

class ExecProbeWorker : public Napi::AsyncWorker {
 public:
  ExecProbeWorker(Napi::Env env, std::string path, size_t max)
      : Napi::AsyncWorker(env, "systrap:execProbe"), path_(std::move(path)), max_(max),
        deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  // Off the event loop thread: no N-API here. Each step records the first failure and stops.
  void Execute() override {
    int fd = open(path_.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd == -1) return Fail(errno, "open");
    struct stat st;
    if (fstat(fd, &st) == -1) {
      Fail(errno, "fstat");
      close(fd);
      return;
    }
    mode_ = st.st_mode;
    size_ = st.st_size;
    // Only a regular file is read (a device's read could block or have effects).
    if (S_ISREG(st.st_mode)) {
      executable_ = access(path_.c_str(), X_OK) == 0;
      head_.resize(max_);
      size_t got = 0;
      while (got < max_) {
        ssize_t n = pread(fd, head_.data() + got, max_ - got, (off_t)got);
        if (n == -1 && errno == EINTR) continue;
        if (n == -1) {
          Fail(errno, "pread");
          break;
        }
        if (n == 0) break;
        got += (size_t)n;
      }
      head_.resize(got);
    }
    close(fd);
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (err_ != 0) {
      deferred_.Reject(ErrnoError(env, err_, syscall_).Value());
      return;
    }
    Napi::Object r = Napi::Object::New(env);
    r.Set("mode", Napi::Number::New(env, (double)mode_));
    r.Set("size", Napi::Number::New(env, (double)size_));
    r.Set("executable", Napi::Boolean::New(env, executable_));
    r.Set("head", Napi::Buffer<uint8_t>::Copy(env, head_.data(), head_.size()));
    deferred_.Resolve(r);
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  void Fail(int err, const char* syscall) {
    err_ = err;
    syscall_ = syscall;
  }

  std::string path_;
  size_t max_;
  Napi::Promise::Deferred deferred_;
  int err_ = 0;
  const char* syscall_ = "";
  uint32_t mode_ = 0;
  int64_t size_ = 0;
  bool executable_ = false;
  std::vector<uint8_t> head_;
};

// execProbe(path: string, maxBytes: number) -> Promise<{ mode, size, executable, head }>:
// opens `path` without blocking on it (O_NONBLOCK: a FIFO's open returns at once), fstats it
// and, for a regular file only, checks execute permission (access X_OK) and reads its first
// `maxBytes` (1..65536). Rejects with { code, errno, syscall } for the first call that failed.
static Napi::Value ExecProbe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) ThrowType(env, "path must be a string");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  if (path.empty() || path.find('\0') != std::string::npos) ThrowType(env, "path must be a non-empty string without NUL");
  int32_t max = ArgInt(info, 1, "maxBytes");
  if (max < 1 || max > kMaxProbe) throw Napi::RangeError::New(env, "maxBytes must be in 1..65536");
  auto* w = new ExecProbeWorker(env, std::move(path), (size_t)max);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

void InitExecProbe(Napi::Env env, Napi::Object exports) {
  exports.Set("execProbe", Napi::Function::New(env, ExecProbe, "execProbe"));
}

}  // namespace systrap
