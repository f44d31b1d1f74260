// forkSandbox: one program's stub in a sandbox of its own, where Node's process does not exist.
//
// The forker thread (forker.cc) clones C with new pid, mount and cgroup namespaces and a new
// user namespace. C is pid 1 of the new pid namespace; it sets the namespaces up, drops every
// capability for the whole subtree, forks S (the program's stub, pid 2) and then only reaps.
// Inside, Node has no pid: kill, pidfd_open, ptrace, prlimit, setpriority, /proc/<pid> ... of
// Node's pid find nothing. Node sees C and S under their host pids and traces S as usual, or,
// with options.selfInit, S prepares itself as the tracer would (systrap_sandbox_fork in stub.S)
// and no tracer is needed at all.
//
//   forker thread (P)                         C (pid 1 inside)
//   clone(NEWUSER|NEWPID|NEWNS|NEWCGROUP) --> fd table cut to 4 fds, PDEATHSIG armed
//   setgroups=deny, uid_map, gid_map          report ARMED ---------------------------+
//   <-- wait for ARMED ---------------------------------------------------------------+
//   write GO --------------------------------> signals, setsid, mounts, ids, caps, fork S,
//                                              wait for S's SIGSTOP, report OK + pidfd ---+
//   <-- S's host pid from the pidfd --------------------------------------------------------+
//                                              unmap Node's memory, reap until no child
//
// With CAP_SYS_ADMIN (Node as root), the user namespace comes later: P clones C without it, C
// mounts its proc, then enters a new user namespace (and mount namespace) and writes its own
// map (see the proc mount in SandboxInit for why).
//
// Why the ARMED/GO round trip: C's PR_SET_PDEATHSIG must be armed while the forker thread is
// still alive, or a Node that dies right then leaves C (and the program) running, reparented.
// getppid() cannot tell (it is 0 inside the namespace for any parent outside it). The forker
// thread writes GO only after it has read ARMED, so the arming happened before that thread can
// exit, and its exit then signals C. If it never writes GO, C reads EOF once Node is gone.
//
// Between the clone and the jump into stub code (or the reaper), C and S run raw syscalls only:
// Node is multithreaded, and a lock held by another thread at fork time would never be released
// in the child (no malloc, no libc, no libuv).
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/prctl.h>
#include <linux/securebits.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "errors.h"
#include "forker.h"
#include "stub/raw_syscall.h"
#include "stub/stub_abi.h"

extern "C" {
extern const char __start_systrap_stub[];
extern const char systrap_sandbox_reaper[];  // stub.S
extern const char systrap_sandbox_fork[];    // stub.S
}

namespace systrap {

uintptr_t StubRegionStart();

namespace {

inline long Raw(long n, long a = 0, long b = 0, long c = 0, long d = 0, long e = 0, long f = 0) {
  return raw_syscall(n, a, b, c, d, e, f);
}

// C's fds after it has cut Node's fd table (adjacent, right above the stub's two).
constexpr int kMemfd = STUB_MEMFD;     // the memory file, for S
constexpr int kChan = STUB_FDCHAN;     // S's end of its fd channel
constexpr int kGo = STUB_FDCHAN + 1;   // read end of the GO pipe
constexpr int kReport = STUB_FDCHAN + 2;  // C's end of the report socket
constexpr int kFirstFree = STUB_FDCHAN + 3;
static_assert(kChan == kMemfd + 1, "the stub's fds are adjacent");

// The setup steps of C, in order. A failed step is reported with its errno and C exits with
// 100 + step, so that even a lost report names the step (see StepName).
enum Step : int {
  kStepFds = 1,
  kStepPdeathsig,
  kStepArmed,
  kStepGo,
  kStepSignals,
  kStepSetsid,
  kStepMountPrivate,
  kStepMountProc,
  kStepUnshareUser,
  kStepSelfMap,
  kStepIds,
  kStepUserNsMax,
  kStepProcSysRo,
  kStepSysrqRo,
  kStepCgroup,
  kStepSysRo,
  kStepIrqRo,
  kStepCaps,
  kStepNoNewPrivs,
  kStepDumpable,
  kStepForkStub,
  kStepStubStop,
  kStepReport,
};

// The name a failed step has in the error (its `syscall` field).
const char* StepName(int step) {
  switch (step) {
    case kStepFds: return "dup2 (fd table of the sandbox init)";
    case kStepPdeathsig: return "prctl(PR_SET_PDEATHSIG)";
    case kStepArmed: return "sendmsg (sandbox init to Node)";
    case kStepGo: return "read (Node's go-ahead)";
    case kStepSignals: return "rt_sigaction";
    case kStepIds: return "setresuid/setresgid";
    case kStepSetsid: return "setsid";
    case kStepMountPrivate: return "mount(/, MS_REC|MS_PRIVATE)";
    case kStepMountProc: return "mount(proc, /proc)";
    case kStepUnshareUser: return "unshare(CLONE_NEWUSER|CLONE_NEWNS)";
    case kStepSelfMap: return "write(/proc/self/uid_map)";
    case kStepUserNsMax: return "write(/proc/sys/user/max_user_namespaces)";
    case kStepProcSysRo: return "mount(/proc/sys, MS_BIND|MS_RDONLY)";
    case kStepSysrqRo: return "mount(/proc/sysrq-trigger, MS_BIND|MS_RDONLY)";
    case kStepCgroup: return "mount(tmpfs, /sys/fs/cgroup)";
    case kStepSysRo: return "mount_setattr(/sys, AT_RECURSIVE, MOUNT_ATTR_RDONLY)";
    case kStepIrqRo: return "mount(/proc/irq, MS_BIND|MS_RDONLY)";
    case kStepCaps: return "capset (drop every capability)";
    case kStepNoNewPrivs: return "prctl(PR_SET_NO_NEW_PRIVS)";
    case kStepDumpable: return "prctl(PR_SET_DUMPABLE)";
    case kStepForkStub: return "clone (the stub)";
    case kStepStubStop: return "wait4 (the stub's first stop)";
    case kStepReport: return "sendmsg (sandbox init to Node)";
    default: return "sandbox init";
  }
}

// One message on the report socket, C to P. OK carries the pidfd of S (SCM_RIGHTS).
enum ReportKind : int { kArmed = 1, kOk = 2, kFailed = 3 };
struct Report {
  int kind;
  int step;    // kFailed: the step
  int err;     // kFailed: its errno (kStepStubStop: 0, see status)
  int status;  // kStepStubStop: S's wait status
};

struct SandboxJob {
  // In: everything C and S need, prepared before the clone (no allocation in the children).
  int memfd, chanStub, goRead, goWrite, reportNode, reportInit;
  uintptr_t reaper, forkStub, regionStart;  // in the stub region: reaper and fork gadget
  // The stub prepares itself (see systrap_sandbox_fork) when msgAddr is not 0.
  uint64_t msgAddr, msgOffset, rulesOffset;
  uid_t uid;
  gid_t gid;
  char uidMap[40], gidMap[40];  // "<uid> <uid> 1": Node's effective ids, 1:1
  // Node may create pid and mount namespaces without a user namespace (CAP_SYS_ADMIN): C then
  // mounts its proc from there and enters its user namespace afterwards (see SandboxInit).
  bool privileged;
  const char* execPath;  // tests only: S execs this instead of entering the stub code
  char* const* execArgv;
  char* const* execEnvp;
  // Out.
  long initPid = 0, stubPid = 0;
  int err = 0;                   // errno of the failure, 0 if none
  std::string what;              // what failed (the error's `syscall`)
  int step = 0;                  // the failed step of C, 0 if the failure is Node's side
  bool usernsUnavailable = false;
};

// ---- child side: raw syscalls only ----

[[noreturn]] void Exit(int code) {
  for (;;) Raw(SYS_exit_group, code);
}

long SendReport(int sock, const Report& r, int fd) {
  struct iovec iov = {const_cast<Report*>(&r), sizeof r};
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(struct cmsghdr) char ctl[CMSG_SPACE(sizeof(int))];
  if (fd >= 0) {
    msg.msg_control = ctl;
    msg.msg_controllen = sizeof ctl;
    struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    *reinterpret_cast<int*>(CMSG_DATA(c)) = fd;
  }
  return Raw(SYS_sendmsg, sock, (long)&msg, MSG_NOSIGNAL);
}

// Reports the failed step to Node (best effort: Node may be gone) and exits 100 + step.
[[noreturn]] void Fail(int sock, int step, long negErrno, int status = 0) {
  Report r = {kFailed, step, (int)-negErrno, status};
  SendReport(sock, r, -1);
  Exit(100 + step);
}

// Writes `text` (NUL-terminated) to the file at `path`.
long WriteFile(const char* path, const char* text) {
  long len = 0;
  while (text[len]) len++;
  long fd = Raw(SYS_openat, AT_FDCWD, (long)path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return fd;
  long w = Raw(SYS_write, fd, (long)text, len);
  Raw(SYS_close, fd);
  return w < 0 ? w : (w == len ? 0 : -EIO);
}

// A bind mount of `path` over itself, then made read-only (a bind takes the flags of the
// mount it copies; only a remount sets them).
long BindReadOnly(const char* path) {
  long r = Raw(SYS_mount, (long)path, (long)path, 0, MS_BIND, 0);
  if (r < 0) return r;
  return Raw(SYS_mount, 0, (long)path, 0, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, 0);
}

// Drops every capability, for C and everything it will fork. The ids stay the mapped uid/gid:
// without capabilities, programs still have owner rights on files that uid owns (with Node as
// root and the 1:1 map, that is every root-owned file the mount namespace shows), and the
// supplementary groups Node had (setgroups is denied in the namespace, so they cannot be
// dropped here). Order: securebits and the bounding set need CAP_SETPCAP, so they go before
// capset empties the sets.
long DropCaps() {
  // Locked: uid 0 gains no capabilities on execve, nor keeps/regains any on a uid change.
  long r = Raw(SYS_prctl, PR_SET_SECUREBITS,
               SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP | SECBIT_NO_SETUID_FIXUP_LOCKED |
                   SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED);
  if (r < 0) return r;
  // Every capability the kernel knows: it answers EINVAL past the last one.
  for (long cap = 0; cap < 64; cap++) {
    r = Raw(SYS_prctl, PR_CAPBSET_DROP, cap);
    if (r == -EINVAL && cap > 0) break;
    if (r < 0) return r;
  }
  r = Raw(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  if (r < 0) return r;
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct d[2] = {};
  return Raw(SYS_capset, (long)&h, (long)d);
}

struct KernelSigaction {
  unsigned long handler, flags, restorer, mask;
};

// S with the exec option (tests only), a fork of C: what a stub does up to its SIGSTOP, then
// the program instead of the stub code. (A real S starts in the stub region: see
// systrap_sandbox_fork in stub.S.) execve makes it dumpable again.
[[noreturn]] void SandboxExecStub(const SandboxJob& job) {
  StubChildSetup(kMemfd, kChan);
  if (Raw(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL) < 0 || Raw(SYS_getppid) != 1) Exit(1);
  Raw(SYS_execve, (long)job.execPath, (long)job.execArgv, (long)job.execEnvp);
  Exit(127);
}

// C, the sandbox's init: pid 1 of the new pid namespace, Node's child.
[[noreturn]] void SandboxInit(const SandboxJob& job) {
  // Node's fd table is not ours to hold for the sandbox's lifetime (a copy of a pipe's write end
  // would keep its reader from ever seeing EOF). Keep four, at fixed numbers: first copied above
  // them (F_DUPFD never replaces an open fd), then everything else closed, then moved down.
  int report = job.reportInit;
  const int keep[4] = {job.memfd, job.chanStub, job.goRead, job.reportInit};
  int high[4];
  for (int i = 0; i < 4; i++) {
    long r = Raw(SYS_fcntl, keep[i], F_DUPFD, kFirstFree);
    if (r < 0) Fail(report, kStepFds, r);
    high[i] = (int)r;
  }
  if (long r = Raw(SYS_close_range, 0, kFirstFree - 1, 0); r < 0) Fail(high[3], kStepFds, r);
  for (int i = 0; i < 4; i++)
    if (long r = Raw(SYS_dup2, high[i], kMemfd + i); r < 0) Fail(high[3], kStepFds, r);
  report = kReport;
  if (long r = Raw(SYS_close_range, kFirstFree, ~0U, 0); r < 0) Fail(report, kStepFds, r);

  if (long r = Raw(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL); r < 0) Fail(report, kStepPdeathsig, r);
  Report armed = {kArmed, 0, 0, 0};
  if (long r = SendReport(report, armed, -1); r < 0) Fail(report, kStepArmed, r);
  char go;
  long n;
  do n = Raw(SYS_read, kGo, (long)&go, 1);
  while (n == -EINTR);
  if (n != 1) Exit(100 + kStepGo);  // Node is gone, or gave up on us: nobody to report to
  Raw(SYS_close, kGo);

  // Node's handlers must never run here, and a blocked signal would be queued (and charged to
  // the uid's RLIMIT_SIGPENDING) instead of dropped: a pid 1 without handlers ignores every
  // signal sent from inside its namespace, which is what a program's kill(1, ...) should meet.
  KernelSigaction dfl = {0, 0, 0, 0};
  for (int s = 1; s <= 64; s++)
    if (s != SIGKILL && s != SIGSTOP)
      if (long r = Raw(SYS_rt_sigaction, s, (long)&dfl, 0, 8); r < 0) Fail(report, kStepSignals, r);
  uint64_t empty = 0;
  if (long r = Raw(SYS_rt_sigprocmask, SIG_SETMASK, (long)&empty, 0, 8); r < 0) Fail(report, kStepSignals, r);

  // A session of its own: no terminal, and Node's process group is not ours.
  if (long r = Raw(SYS_setsid); r < 0) Fail(report, kStepSetsid, r);

  // Mounts. Private first: nothing we mount may propagate back into Node's namespace.
  if (long r = Raw(SYS_mount, 0, (long)"/", 0, MS_REC | MS_PRIVATE, 0); r < 0) Fail(report, kStepMountPrivate, r);
  // A proc of this pid namespace over the inherited one: it shows only the sandbox's processes.
  // (The inherited mount cannot be unmounted; covered, it is unreachable, and without
  // CAP_SYS_ADMIN nobody inside can uncover it.) The kernel lets a mount namespace owned by a
  // user namespace other than the initial one mount a proc only if an *uncovered* proc is
  // mounted already: on a host (or container) whose /proc has read-only or masked parts, that
  // fails with EPERM. Hence the privileged order: proc first, from a mount namespace the initial
  // user namespace owns, then the user namespace (and a mount namespace it owns, which locks
  // every mount inherited, the new proc included).
  if (long r = Raw(SYS_mount, (long)"proc", (long)"/proc", (long)"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, 0); r < 0)
    Fail(report, kStepMountProc, r);
  if (job.privileged) {
    if (long r = Raw(SYS_unshare, CLONE_NEWUSER | CLONE_NEWNS); r < 0) Fail(report, kStepUnshareUser, r);
    // Our own ids, 1:1, written by ourselves: the one map a process may write for its own user
    // namespace without privilege in the parent one (which it has just left).
    if (long r = WriteFile("/proc/self/setgroups", "deny"); r < 0) Fail(report, kStepSelfMap, r);
    if (long r = WriteFile("/proc/self/uid_map", job.uidMap); r < 0) Fail(report, kStepSelfMap, r);
    if (long r = WriteFile("/proc/self/gid_map", job.gidMap); r < 0) Fail(report, kStepSelfMap, r);
  }
  // The map is written; our ids become the mapped ones for real (the map alone leaves an
  // unmapped real or saved id behind when they differed from the effective ones).
  if (long r = Raw(SYS_setresgid, job.gid, job.gid, job.gid); r < 0) Fail(report, kStepIds, r);
  if (long r = Raw(SYS_setresuid, job.uid, job.uid, job.uid); r < 0) Fail(report, kStepIds, r);

  // No user namespace inside this one: a nested one would give its creator capabilities again
  // (over namespaces it owns). This is the limit of *this* user namespace (sysctls under
  // /proc/sys/user are per user namespace), written before /proc/sys becomes read-only; it is a
  // ceiling for any descendant too.
  if (long r = WriteFile("/proc/sys/user/max_user_namespaces", "0"); r < 0) Fail(report, kStepUserNsMax, r);
  if (long r = BindReadOnly("/proc/sys"); r < 0) Fail(report, kStepProcSysRo, r);
  // /proc/sysrq-trigger is root's (mode 0200) and checks no capability: with Node as root and
  // the 1:1 map, the program is its owner. Optional: kernels without CONFIG_MAGIC_SYSRQ lack it.
  if (long r = BindReadOnly("/proc/sysrq-trigger"); r < 0 && r != -ENOENT) Fail(report, kStepSysrqRo, r);
  // Hide every cgroup hierarchy under an empty read-only tmpfs: Node's own cgroup files
  // (cgroup.freeze, cgroup.kill, freezer.state) are reachable there otherwise, writable by the
  // uid that owns them. Optional: a system may have no /sys/fs/cgroup.
  if (long r = Raw(SYS_mount, (long)"tmpfs", (long)"/sys/fs/cgroup", (long)"tmpfs",
                   MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, (long)"size=4k,mode=555");
      r < 0 && r != -ENOENT)
    Fail(report, kStepCgroup, r);
  // Every file of /sys read-only, recursively (the cgroup tmpfs included): root's tunables
  // there (/sys/power/state, /sys/kernel/mm/...) check the file mode only, so with Node as root
  // and the 1:1 map the program would own them; /sys/power/state alone can suspend the machine,
  // Node with it. Making a mount more restricted is allowed even where it is locked.
  {
    struct {
      uint64_t attr_set, attr_clr, propagation, userns_fd;
    } attr = {0x1 /* MOUNT_ATTR_RDONLY */, 0, 0, 0};
    if (long r = Raw(442 /* mount_setattr */, AT_FDCWD, (long)"/sys", 0x8000 /* AT_RECURSIVE */, (long)&attr, sizeof attr);
        r < 0 && r != -ENOENT)
      Fail(report, kStepSysRo, r);
  }
  // The same for the interrupt tunables /proc keeps outside /proc/sys (root's, mode-checked).
  if (long r = BindReadOnly("/proc/irq"); r < 0 && r != -ENOENT) Fail(report, kStepIrqRo, r);

  if (long r = DropCaps(); r < 0) Fail(report, kStepCaps, r);
  if (long r = Raw(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); r < 0) Fail(report, kStepNoNewPrivs, r);
  // C still holds a copy of Node's memory (until the reaper unmaps it) and, capless and of the
  // same uid, would be open to the program's ptrace, process_vm_readv and pidfd_getfd. Not
  // dumpable, it needs CAP_SYS_PTRACE in Node's user namespace (its memory's) for those.
  if (long r = Raw(SYS_prctl, PR_SET_DUMPABLE, 0); r < 0) Fail(report, kStepDumpable, r);

  // S, the program's stub: pid 2 of the namespace, C's child. It gets none of C's copy of Node's
  // memory: every mapping outside the stub region is left out of the fork, and S starts in stub
  // code. Best effort: madvise answers ENOMEM for the holes in the ranges (and marks the rest),
  // and a mapping it refused would only be copied, then unmapped by the tracer as in a source stub.
  int pidfd = -1;
  long s;
  if (!job.execPath) {
    uintptr_t end = job.regionStart + STUB_REGION_SIZE;
    Raw(SYS_madvise, 0, job.regionStart, MADV_DONTFORK);
    Raw(SYS_madvise, end, STUB_TASK_SIZE - end, MADV_DONTFORK);
    s = reinterpret_cast<long (*)(long, long, long, long, long, long)>(job.forkStub)(SIGCHLD | CLONE_PIDFD, 0, (long)&pidfd, (long)job.msgAddr, (long)job.msgOffset, (long)job.rulesOffset);
  } else {
    s = Raw(SYS_clone, SIGCHLD | CLONE_PIDFD, 0, (long)&pidfd, 0, 0);
    if (s == 0) SandboxExecStub(job);
  }
  if (s < 0) Fail(report, kStepForkStub, s);
  if (!job.execPath) {
    // Report only once S has stopped itself: the caller attaches right away (the stub is not
    // its child, so it could not wait for that stop itself).
    int status = 0;
    long w;
    do w = Raw(SYS_wait4, s, (long)&status, WUNTRACED | __WALL, 0);
    while (w == -EINTR);
    if (w < 0) Fail(report, kStepStubStop, w);
    if (!WIFSTOPPED(status) || WSTOPSIG(status) != SIGSTOP) Fail(report, kStepStubStop, 0, status);
  }
  // The memory file and the fd channel are S's alone from here: closed before Node hears of S.
  Raw(SYS_close_range, kMemfd, kChan, 0);
  Report ok = {kOk, 0, 0, 0};
  if (long r = SendReport(report, ok, pidfd); r < 0) Fail(report, kStepReport, r);

  // From here on C only reaps: nothing of Node (no fd, no memory) stays in it. (Node may see
  // the report socket and S's pidfd here for a moment after forkSandbox has returned.)
  Raw(SYS_close_range, 0, ~0U, 0);
  // Unmapping its copy of Node costs about as much as the fork did: at the lowest priority, so
  // that it does not take the CPU from Node (which has just been told S is ready). Reaping
  // needs no hurry either.
  Raw(SYS_setpriority, PRIO_PROCESS, 0, 19);
  uintptr_t start = job.regionStart, end = start + STUB_REGION_SIZE;
  asm volatile("jmp *%%rax" ::"a"(job.reaper), "D"(start), "S"(end), "d"(STUB_TASK_SIZE - end) : "memory");
  __builtin_unreachable();
}

// ---- Node side (the forker thread) ----

// What creating a user namespace fails with when they are unavailable or used up.
bool UsernsErrno(int err) { return err == EPERM || err == ENOSPC || err == EINVAL || err == EUSERS; }

// Writes `text` to /proc/<pid>/<file>.
int WriteProcFile(long pid, const char* file, const char* text) {
  std::string path = "/proc/" + std::to_string(pid) + "/" + file;
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd == -1) return errno;
  size_t len = strlen(text);
  ssize_t n = write(fd, text, len);
  int err = n == -1 ? errno : (n == (ssize_t)len ? 0 : EIO);
  close(fd);
  return err;
}

// One report from C. Returns false on EOF (C is gone) or a broken message.
bool ReadReport(int sock, Report& r, int& fd) {
  fd = -1;
  struct iovec iov = {&r, sizeof r};
  alignas(struct cmsghdr) char ctl[CMSG_SPACE(sizeof(int))];
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = ctl;
  msg.msg_controllen = sizeof ctl;
  ssize_t n;
  do n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  while (n == -1 && errno == EINTR);
  struct cmsghdr* c = n > 0 ? CMSG_FIRSTHDR(&msg) : nullptr;
  if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(sizeof(int)))
    memcpy(&fd, CMSG_DATA(c), sizeof fd);
  if (n != (ssize_t)sizeof r || (msg.msg_flags & MSG_CTRUNC)) {
    if (fd >= 0) close(fd);
    fd = -1;
    return false;
  }
  return true;
}

// The pid, in Node's pid namespace, of the process a pidfd refers to ("Pid:" of its fdinfo;
// -1 once it has been reaped). 0 if unreadable.
long PidfdPid(int pidfd) {
  std::string path = "/proc/self/fdinfo/" + std::to_string(pidfd);
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd == -1) return 0;
  char buf[1024];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = 0;
  const char* p = strstr(buf, "\nPid:");
  return p ? strtol(p + 5, nullptr, 10) : 0;
}

// What the forker thread does for forkSandbox (see the top of the file).
void SandboxJobMain(void* arg) {
  SandboxJob& job = *static_cast<SandboxJob*>(arg);
  // A new cgroup namespace too: no barrier by itself (the tmpfs over /sys/fs/cgroup is), but
  // /proc/self/cgroup then shows "/" instead of Node's cgroup path, and a cgroupfs mounted
  // inside (impossible without capabilities anyway) would be rooted at the sandbox's cgroup.
  long flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWCGROUP | SIGCHLD;
  if (!job.privileged) flags |= CLONE_NEWUSER;
  long pid = raw_syscall(SYS_clone, flags, 0, 0, 0, 0, 0);
  if (pid == 0) SandboxInit(job);
  // C's ends are C's: ours would keep the report socket from reading EOF if C dies.
  close(job.goRead);
  close(job.reportInit);
  close(job.chanStub);
  job.goRead = job.reportInit = job.chanStub = -1;
  if (pid < 0) {
    job.err = (int)-pid;
    job.what = "clone";
    job.usernsUnavailable = !job.privileged && UsernsErrno(job.err);
    return;
  }
  job.initPid = pid;
  auto fail = [&](int err, const std::string& what, int step = 0) {
    job.err = err;
    job.what = what;
    job.step = step;
  };
  // Node's own ids, 1:1 (C writes its map itself when privileged). Only the effective ids can
  // be mapped without privilege; "deny" is what lets a process without CAP_SETGID in Node's
  // namespace write gid_map.
  if (job.privileged) {
  } else if (int e = WriteProcFile(pid, "setgroups", "deny")) {
    fail(e, "write(/proc/PID/setgroups)");
  } else if (int e = WriteProcFile(pid, "uid_map", job.uidMap)) {
    fail(e, "write(/proc/PID/uid_map)");
  } else if (int e = WriteProcFile(pid, "gid_map", job.gidMap)) {
    fail(e, "write(/proc/PID/gid_map)");
  }
  Report r;
  int fd = -1;
  if (!job.err) {
    if (!ReadReport(job.reportNode, r, fd)) fail(ESRCH, "sandbox init died before it armed PDEATHSIG");
    else if (r.kind == kFailed) fail(r.err, StepName(r.step), r.step);
    else if (r.kind != kArmed) fail(EPROTO, "sandbox init: unexpected report");
  }
  if (!job.err) {
    char go = 1;
    if (write(job.goWrite, &go, 1) != 1) fail(errno, "write (go-ahead to the sandbox init)");
  }
  if (!job.err) {
    if (!ReadReport(job.reportNode, r, fd)) {
      fail(ESRCH, "sandbox init died during setup");
    } else if (r.kind == kFailed) {
      if (r.step == kStepStubStop && r.err == 0) {
        int st = r.status;
        fail(ESRCH, WIFEXITED(st) ? "the stub exited with status " + std::to_string(WEXITSTATUS(st)) + " before its first stop"
                     : WIFSIGNALED(st) ? "the stub was killed by signal " + std::to_string(WTERMSIG(st)) + " before its first stop"
                                       : "the stub stopped on a signal other than SIGSTOP",
             r.step);
      } else {
        fail(r.err, StepName(r.step), r.step);
        job.usernsUnavailable = r.step == kStepUnshareUser && UsernsErrno(r.err);
      }
    } else if (r.kind != kOk || fd < 0) {
      fail(EPROTO, "sandbox init: unexpected report");
    } else {
      job.stubPid = PidfdPid(fd);
      if (job.stubPid <= 0) fail(ESRCH, "the stub died during setup");
    }
  }
  if (fd >= 0) close(fd);
  if (job.err) {
    // C is ours to reap; the namespace dies with it (S and anything else in it).
    kill(pid, SIGKILL);
    int st;
    while (waitpid(pid, &st, 0) == -1 && errno == EINTR) {
    }
    job.initPid = 0;
  }
}

// Reads forkSandbox's options into the job (tests only: exec a program instead of the stub).
// options.selfInit: { msgAddr: bigint, msgFileOffset, rulesFileOffset } (see systrap_sandbox_fork).
void ReadSelfInit(Napi::Env env, Napi::Value v, SandboxJob& job) {
  if (!v.IsObject() || v.IsArray() || v.IsFunction()) ThrowType(env, "options.selfInit must be an object");
  Napi::Object o = v.As<Napi::Object>();
  Napi::Value addr = o.Get("msgAddr");
  if (!addr.IsBigInt()) ThrowType(env, "options.selfInit.msgAddr must be a bigint");
  bool lossless = false;
  uint64_t a = addr.As<Napi::BigInt>().Uint64Value(&lossless);
  uint64_t start = StubRegionStart();
  // Two pages inside the region, past its code: nothing else may be mapped over.
  if (!lossless || a % 4096 != 0 || a < start + STUB_RO_SIZE || a + 8192 > start + STUB_REGION_SIZE)
    ThrowType(env, "options.selfInit.msgAddr must be a page of the stub region past its code");
  uint64_t offs[2];
  const char* names[2] = {"msgFileOffset", "rulesFileOffset"};
  for (int i = 0; i < 2; i++) {
    Napi::Value n = o.Get(names[i]);
    double d = n.IsNumber() ? n.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0 && d <= 9007199254740991.0) || (uint64_t)d % 4096 != 0)
      ThrowType(env, std::string("options.selfInit.") + names[i] + " must be a page-aligned file offset");
    offs[i] = (uint64_t)d;
  }
  job.msgAddr = a;
  job.msgOffset = offs[0];
  job.rulesOffset = offs[1];
}

void ReadOptions(const Napi::CallbackInfo& info, std::string& path, std::vector<std::string>& args, SandboxJob& job) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || info[1].IsUndefined()) return;
  if (!info[1].IsObject() || info[1].IsArray() || info[1].IsFunction()) ThrowType(env, "options must be an object");
  Napi::Object o = info[1].As<Napi::Object>();
  Napi::Array keys = o.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); i++) {
    std::string k = keys.Get(i).ToString().Utf8Value();
    if (k != "exec" && k != "args" && k != "selfInit") ThrowType(env, "options." + k + " is not an option of forkSandbox (exec, args, selfInit)");
  }
  if (!o.Get("selfInit").IsUndefined()) {
    if (!o.Get("exec").IsUndefined()) ThrowType(env, "options.selfInit and options.exec exclude each other");
    ReadSelfInit(env, o.Get("selfInit"), job);
  }
  Napi::Value exec = o.Get("exec");
  Napi::Value a = o.Get("args");
  if (!exec.IsUndefined()) {
    if (!exec.IsString()) ThrowType(env, "options.exec must be a string");
    path = exec.As<Napi::String>().Utf8Value();
    if (path.empty() || path[0] != '/') ThrowType(env, "options.exec must be an absolute path");
    if (path.find('\0') != std::string::npos) ThrowType(env, "options.exec must not contain NUL");
  }
  if (!a.IsUndefined()) {
    if (exec.IsUndefined()) ThrowType(env, "options.args needs options.exec");
    if (!a.IsArray()) ThrowType(env, "options.args must be an array of strings");
    Napi::Array arr = a.As<Napi::Array>();
    if (arr.Length() > 1024) ThrowType(env, "options.args must hold at most 1024 strings");
    for (uint32_t i = 0; i < arr.Length(); i++) {
      Napi::Value v = arr.Get(i);
      if (!v.IsString()) ThrowType(env, "options.args[" + std::to_string(i) + "] must be a string");
      args.push_back(v.As<Napi::String>().Utf8Value());
      if (args.back().find('\0') != std::string::npos)
        ThrowType(env, "options.args[" + std::to_string(i) + "] must not contain NUL");
    }
  }
}

Napi::Error SandboxError(Napi::Env env, const SandboxJob& job) {
  if (job.usernsUnavailable) {
    bool unshared = job.step == kStepUnshareUser;
    Napi::Error e = ErrnoError(env, job.err, unshared ? "unshare" : "clone");
    if (unshared) e.Set("step", Napi::Number::New(env, job.step));
    e.Set("message", Napi::String::New(env,
        std::string(errnoName(job.err)) + ": user namespaces are unavailable (" +
        (unshared ? "unshare" : "clone") + "(CLONE_NEWUSER) failed: " +
        strerror(job.err) + "). forkSandbox needs them: check `sysctl user.max_user_namespaces` (0, or the limit "
        "is reached: ENOSPC), `sysctl kernel.unprivileged_userns_clone=1` (Debian, EPERM when not root), "
        "`sysctl kernel.apparmor_restrict_unprivileged_userns=0` (Ubuntu), a seccomp profile that forbids "
        "CLONE_NEWUSER (containers: EPERM), or a kernel without CONFIG_USER_NS (EINVAL)"));
    return e;
  }
  Napi::Error e = ErrnoError(env, job.err, job.what.c_str());
  if (job.step) {
    std::string hint;
    if (job.step == kStepMountProc && job.err == EPERM)
      hint = " (the kernel mounts a new proc in a mount namespace of a user namespace other than the initial "
             "one only if the /proc it sees has no covered parts, and this one has some: a read-only /proc/sys or "
             "masked files, as container runtimes set up. Run Node as root of the initial user namespace, or "
             "where /proc is not masked)";
    e.Set("message", Napi::String::New(env, std::string(errnoName(job.err)) + ": sandbox setup failed at " +
                                                job.what + ": " + strerror(job.err) + hint));
    e.Set("step", Napi::Number::New(env, job.step));
  }
  return e;
}

// True if Node has CAP_SYS_ADMIN in its user namespace (may create mount namespaces without a
// user namespace).
bool HasCapSysAdmin() {
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct d[2] = {};
  if (syscall(SYS_capget, &h, d) == -1) return false;
  return d[CAP_SYS_ADMIN / 32].effective & (1u << (CAP_SYS_ADMIN % 32));
}

// forkSandbox(memfd, options?) -> { initPid, stubPid, channel }. See src/native.ts.
Napi::Value ForkSandbox(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int memfd = ArgInt(info, 0, "memfd");
  if (memfd < 0) ThrowType(env, "memfd must be a file descriptor");
  std::string execPath;
  std::vector<std::string> args;
  SandboxJob job = {};
  ReadOptions(info, execPath, args, job);
  if (fcntl(memfd, F_GETFD) == -1) ThrowErrno(env, errno, "fcntl(memfd)");
  if (StubRegionStart() == 0) throw Napi::Error::New(env, "stubRegionInit() must run before forkSandbox()");

  // argv and envp for the exec option, built here: the children may not allocate.
  std::vector<char*> argv, envp = {nullptr};
  if (!execPath.empty()) {
    argv.push_back(execPath.data());
    for (auto& s : args) argv.push_back(s.data());
    argv.push_back(nullptr);
  }

  job.memfd = memfd;
  job.regionStart = StubRegionStart();
  job.reaper = job.regionStart + (systrap_sandbox_reaper - __start_systrap_stub);
  job.forkStub = job.regionStart + (systrap_sandbox_fork - __start_systrap_stub);
  job.uid = geteuid();
  job.gid = getegid();
  snprintf(job.uidMap, sizeof job.uidMap, "%u %u 1", (unsigned)job.uid, (unsigned)job.uid);
  snprintf(job.gidMap, sizeof job.gidMap, "%u %u 1", (unsigned)job.gid, (unsigned)job.gid);
  job.privileged = HasCapSysAdmin();
  job.execPath = execPath.empty() ? nullptr : execPath.c_str();
  job.execArgv = argv.data();
  job.execEnvp = envp.data();
  // Close-on-exec everywhere: another thread of Node may fork and exec meanwhile. C keeps its
  // ends through dup2, which clears the flag.
  int go[2], report[2], chan[2];
  if (pipe2(go, O_CLOEXEC) == -1) ThrowErrno(env, errno, "pipe2");
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, report) == -1) {
    int e = errno;
    close(go[0]);
    close(go[1]);
    ThrowErrno(env, e, "socketpair");
  }
  // The fd channel: Node keeps one end, S gets the other at STUB_FDCHAN (see sendFds).
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, chan) == -1) {
    int e = errno;
    for (int fd : {go[0], go[1], report[0], report[1]}) close(fd);
    ThrowErrno(env, e, "socketpair");
  }
  job.goRead = go[0];
  job.goWrite = go[1];
  job.reportNode = report[0];
  job.reportInit = report[1];
  job.chanStub = chan[1];
  RunOnForkerThread(SandboxJobMain, &job);  // closes the child-side ends
  close(job.goWrite);
  close(job.reportNode);
  if (job.err) {
    close(chan[0]);
    throw SandboxError(env, job);
  }
  RegisterFdChannel(job.stubPid, chan[0]);
  Napi::Object o = Napi::Object::New(env);
  o.Set("initPid", Napi::Number::New(env, (double)job.initPid));
  o.Set("stubPid", Napi::Number::New(env, (double)job.stubPid));
  o.Set("channel", Napi::Number::New(env, chan[0]));
  return o;
}

}  // namespace

void InitSandbox(Napi::Env env, Napi::Object exports) {
  exports.Set("forkSandbox", Napi::Function::New(env, ForkSandbox));
}

}  // namespace systrap
