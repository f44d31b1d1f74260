// Taking a stub's fd into Node (pidfd_getfd), and making a memfd a stub created fit for Node to
// map. Used for a forked process's control memory: a fork child holds no fd to the platform's
// memory file (programs never do), so it creates a memfd of its own, which Node takes, checks,
// sizes and seals before anything maps it.
#include <fcntl.h>
#include <linux/memfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>

#include "errors.h"

namespace systrap {

#ifndef F_SEAL_SEAL
#define F_SEAL_SEAL 0x0001
#define F_SEAL_SHRINK 0x0002
#define F_SEAL_GROW 0x0004
#endif

// pidfdGetfd(pid, fd) -> fd: a duplicate in Node (close-on-exec) of fd `fd` of process `pid`.
// Precondition: Node may ptrace pid (a tracer attached to it, or root).
static Napi::Value PidfdGetfd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  pid_t pid = ArgInt(info, 0, "pid");
  int target = ArgInt(info, 1, "fd");
  if (pid <= 0 || target < 0) throw Napi::RangeError::New(env, "pid must be positive and fd non-negative");
  int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (pidfd == -1) ThrowErrno(env, errno, "pidfd_open");
  int fd = (int)syscall(SYS_pidfd_getfd, pidfd, target, 0);
  int e = errno;
  close(pidfd);
  if (fd == -1) ThrowErrno(env, e, "pidfd_getfd");
  return Napi::Number::New(env, fd);
}

// adoptMemfd(fd, size): checks that fd is a fresh memfd (empty, sealable, no seal yet: not a
// file the program prepared), sizes it to `size` and seals it against shrinking, growing and
// further seals. After this no holder of the file can make a page Node maps disappear (a
// SIGBUS in Node) or stop Node writing it. Throws EINVAL for anything else.
static Napi::Value AdoptMemfd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgInt(info, 0, "fd");
  uint64_t size = ArgU64(info, 1, "size");
  if (size == 0 || size % 4096) throw Napi::RangeError::New(env, "size must be a positive multiple of 4096");
  char link[64];
  char target[256] = {0};
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, target, sizeof target - 1);
  if (n < 0) ThrowErrno(env, errno, "readlink");
  if (std::string(target, (size_t)n).rfind("/memfd:", 0) != 0) ThrowErrno(env, EINVAL, "adoptMemfd: not a memfd");
  struct stat st;
  if (fstat(fd, &st) == -1) ThrowErrno(env, errno, "fstat");
  if (st.st_size != 0) ThrowErrno(env, EINVAL, "adoptMemfd: not empty");
  int seals = fcntl(fd, F_GET_SEALS);
  if (seals != 0) ThrowErrno(env, seals == -1 ? errno : EINVAL, "adoptMemfd: seals");
  if (ftruncate(fd, (off_t)size) == -1) ThrowErrno(env, errno, "ftruncate");
  if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == -1) ThrowErrno(env, errno, "fcntl(F_ADD_SEALS)");
  return env.Undefined();
}

// pidfdInode(pid) -> number: the inode of a pidfd for `pid` (pidfd_open, fstat, close). Since
// Linux 6.9 (pidfs) each process's pidfds share an inode no other process has, which stays what
// /proc/PID/fdinfo shows for them after the process is gone; before, every pidfd has the same.
static Napi::Value PidfdInode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  pid_t pid = ArgInt(info, 0, "pid");
  if (pid <= 0) throw Napi::RangeError::New(env, "pid must be positive");
  int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (pidfd == -1) ThrowErrno(env, errno, "pidfd_open");
  struct stat st;
  int r = fstat(pidfd, &st);
  int e = errno;
  close(pidfd);
  if (r == -1) ThrowErrno(env, e, "fstat");
  return Napi::Number::New(env, (double)st.st_ino);
}

// closeFd(fd): closes an fd Node took (pidfdGetfd) and no longer needs.
static Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  if (close(ArgInt(info, 0, "fd")) == -1) ThrowErrno(info.Env(), errno, "close");
  return info.Env().Undefined();
}

void InitProcFd(Napi::Env env, Napi::Object exports) {
  exports.Set("pidfdGetfd", Napi::Function::New(env, PidfdGetfd));
  exports.Set("adoptMemfd", Napi::Function::New(env, AdoptMemfd));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd));
  exports.Set("pidfdInode", Napi::Function::New(env, PidfdInode));
}

}  // namespace systrap
