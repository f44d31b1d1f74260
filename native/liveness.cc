// Liveness of stubs that are not Node's children. Node learns a child's death with
// waitid(WNOWAIT), which cannot see other processes' children: a sandboxed stub is its
// sandbox init's child, and waitid says ECHILD for it whether it runs or not. For those, Node
// holds a pidfd (readable once the process exits) in this registry from the moment it knows
// the pid until it has seen the stub gone; a pid not in it is judged as a child.
//
// Why a registry and not a pid check through /proc: a pid freed by the sandbox's init can be
// reused; a pidfd names one process for good.
#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mutex>
#include <unordered_map>

#include "errors.h"
#include "liveness.h"

namespace systrap {

// Heap-allocated and never freed: threads of the pool may ask while the process exits.
static std::mutex& registryMu = *new std::mutex;
// pid -> pidfd. Protected by registryMu.
static std::unordered_map<pid_t, int>& registry = *new std::unordered_map<pid_t, int>;

// Whether the process of a registered pidfd has exited (readable), or the fd is no longer one.
static bool PidfdExited(int fd) {
  struct pollfd p = {fd, POLLIN, 0};
  int r;
  do {
    r = poll(&p, 1, 0);
  } while (r == -1 && errno == EINTR);
  return r != 0;
}

bool ProcessExited(pid_t pid) {
  {
    std::lock_guard<std::mutex> lock(registryMu);
    auto it = registry.find(pid);
    // Readable: exited; an error here cannot be a live process we know.
    if (it != registry.end()) return PidfdExited(it->second);
  }
  siginfo_t si = {};
  int r;
  do {
    r = waitid(P_PID, pid, &si, WEXITED | WNOHANG | WNOWAIT | __WALL);
  } while (r == -1 && errno == EINTR);
  if (r == -1) return errno == ECHILD;
  // A stub traced by one of Node's threads (a transaction) is waitable here as a tracee: its
  // ptrace stop, until the tracer has waited for it, is reported whatever the flags say
  // (CLD_TRAPPED, CLD_STOPPED). Only an exit is an exit.
  if (si.si_pid == 0) return false;
  return si.si_code == CLD_EXITED || si.si_code == CLD_KILLED || si.si_code == CLD_DUMPED;
}

// trackExit(pid): registers a pidfd for pid. Returns false when the process is already gone
// (then ProcessExited(pid) says so through ECHILD). Precondition: pid is a stub Node made and
// has not seen exit (so the pid is still that stub's).
static Napi::Value TrackExit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  pid_t pid = ArgInt(info, 0, "pid");
  if (pid <= 0) throw Napi::RangeError::New(env, "pid must be positive");
  int fd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (fd == -1) {
    if (errno == ESRCH) return Napi::Boolean::New(env, false);
    ThrowErrno(env, errno, "pidfd_open");
  }
  std::lock_guard<std::mutex> lock(registryMu);
  auto [it, fresh] = registry.emplace(pid, fd);
  if (!fresh) {
    close(it->second);  // a stale entry for a pid Node no longer knows: this one is current
    it->second = fd;
  }
  return Napi::Boolean::New(env, true);
}

// untrackExit(pid): forgets pid (its pidfd closed). Call once the stub is known gone. An entry
// whose process still runs is kept: it is a newer stub's, under the number the gone one had
// (a sandbox's init reaps at once, and pid_max may be 32768: the number can come round again
// before Node forgets the old stub), and forgetting it would make that live stub look dead
// (ProcessExited would ask waitid, which says ECHILD for a process that is not Node's child).
static Napi::Value UntrackExit(const Napi::CallbackInfo& info) {
  pid_t pid = ArgInt(info, 0, "pid");
  std::lock_guard<std::mutex> lock(registryMu);
  auto it = registry.find(pid);
  if (it != registry.end() && PidfdExited(it->second)) {
    close(it->second);
    registry.erase(it);
  }
  return info.Env().Undefined();
}

// processExited(pid) -> boolean: see ProcessExited.
static Napi::Value ProcessExitedJs(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), ProcessExited(ArgInt(info, 0, "pid")));
}

void InitLiveness(Napi::Env env, Napi::Object exports) {
  exports.Set("trackExit", Napi::Function::New(env, TrackExit));
  exports.Set("untrackExit", Napi::Function::New(env, UntrackExit));
  exports.Set("processExited", Napi::Function::New(env, ProcessExitedJs));
}

}  // namespace systrap
