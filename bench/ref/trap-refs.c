// Reference costs of one intercepted getppid, measured here so benchmarks print ratios from
// one run on one machine. usage: trap-refs MODE N   (prints ns per call)
//   native       getppid, no interception
//   sigsys-spin  seccomp RET_TRAP -> SIGSYS handler -> shared memory -> spinning supervisor thread
//   sysemu       ptrace PTRACE_SYSEMU supervisor (GETREGS/SETREGS per stop)
//   unotify      seccomp user notification (RECV/SEND ioctls) from a supervisor thread
#define _GNU_SOURCE
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

static long n;
static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

static int install(int action, unsigned flags) {
  struct sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, action),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog p = {4, f};
  prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &p);
}

static volatile uint32_t req, rep;
static volatile long answer;
static void on_sigsys(int sig, siginfo_t* si, void* ucv) {
  ucontext_t* uc = ucv;
  uint32_t r = req + 1;
  __atomic_store_n(&req, r, __ATOMIC_RELEASE);
  while (__atomic_load_n(&rep, __ATOMIC_ACQUIRE) != r) __builtin_ia32_pause();
  uc->uc_mcontext.gregs[REG_RAX] = answer;
}
static void* spin_supervisor(void* arg) {
  uint32_t seen = 0;
  for (long i = 0; i < n; i++) {
    while (__atomic_load_n(&req, __ATOMIC_ACQUIRE) == seen) __builtin_ia32_pause();
    seen++;
    answer = 7;
    __atomic_store_n(&rep, seen, __ATOMIC_RELEASE);
  }
  return 0;
}

static int listener = -1;
static void* unotify_supervisor(void* arg) {
  while (__atomic_load_n(&listener, __ATOMIC_ACQUIRE) < 0) __builtin_ia32_pause();
  struct seccomp_notif* nt = calloc(1, 4096);
  struct seccomp_notif_resp* rs = calloc(1, 4096);
  for (long i = 0; i < n; i++) {
    memset(nt, 0, sizeof *nt);
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, nt)) return 0;
    rs->id = nt->id;
    rs->val = 7;
    rs->error = 0;
    rs->flags = 0;
    ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, rs);
  }
  return 0;
}

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  const char* mode = argv[1];
  n = atol(argv[2]);
  double t0, t1;
  if (!strcmp(mode, "native")) {
    t0 = now_ns();
    for (long i = 0; i < n; i++) syscall(SYS_getppid);
    t1 = now_ns();
  } else if (!strcmp(mode, "sigsys-spin")) {
    pthread_t th;
    pthread_create(&th, 0, spin_supervisor, 0);
    struct sigaction sa = {0};
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSYS, &sa, 0);
    if (install(SECCOMP_RET_TRAP, 0)) return 3;
    t0 = now_ns();
    for (long i = 0; i < n; i++)
      if (syscall(SYS_getppid) != 7) return 4;
    t1 = now_ns();
    pthread_join(th, 0);
  } else if (!strcmp(mode, "unotify")) {
    pthread_t th;
    pthread_create(&th, 0, unotify_supervisor, 0);
    int fd = install(SECCOMP_RET_USER_NOTIF, SECCOMP_FILTER_FLAG_NEW_LISTENER);
    if (fd < 0) return 3;
    __atomic_store_n(&listener, fd, __ATOMIC_RELEASE);
    t0 = now_ns();
    for (long i = 0; i < n; i++)
      if (syscall(SYS_getppid) != 7) return 4;
    t1 = now_ns();
    pthread_join(th, 0);
  } else if (!strcmp(mode, "sysemu")) {
    pid_t child = fork();
    if (child == 0) {
      ptrace(PTRACE_TRACEME, 0, 0, 0);
      raise(SIGSTOP);
      for (long i = 0; i < n; i++)
        if (syscall(SYS_getppid) != 7) _exit(4);
      _exit(0);
    }
    int st;
    waitpid(child, &st, 0);
    t0 = now_ns();
    struct user_regs_struct r;
    for (long i = 0; i < n; i++) {
      ptrace(PTRACE_SYSEMU, child, 0, 0);
      waitpid(child, &st, 0);
      ptrace(PTRACE_GETREGS, child, 0, &r);
      r.rax = 7;
      ptrace(PTRACE_SETREGS, child, 0, &r);
    }
    t1 = now_ns();
    ptrace(PTRACE_CONT, child, 0, 0);
    waitpid(child, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) return 5;
  } else {
    return 2;
  }
  printf("%.1f\n", (t1 - t0) / n);
  return 0;
}
