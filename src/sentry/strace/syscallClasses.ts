/**
 * strace's syscall classes (`-e trace=%file` and friends) for x86-64, as
 * sets of syscall numbers. Membership follows strace 6.x: it was checked
 * against strace 6.1 by tracing a program that makes every syscall.
 *
 * @module
 */

import { SYS } from '../../abi/syscalls.js';

/** Turn a space-separated list of syscall names into their numbers. */
function numbers(names: string): ReadonlySet<number> {
  const out = new Set<number>();
  for (const name of names.split(/\s+/)) {
    if (!name) continue;
    const nr = (SYS as Readonly<Record<string, number>>)[name];
    if (nr === undefined) throw new Error(`syscallClasses: unknown syscall ${name}`);
    out.add(nr);
  }
  return out;
}

/**
 * `%file`: calls that take a file name (open, openat, stat, access,
 * execve, chdir, mkdir, unlink, rename*, chmod, chown, truncate, utimensat,
 * mount, xattrs...).
 *
 * @example
 * ```ts
 * TRACE_FILE.has(SYS.openat); // true
 * TRACE_FILE.has(SYS.read);   // false
 * ```
 */
export const TRACE_FILE: ReadonlySet<number> = numbers(`
  access acct chdir chmod chown chroot creat execve execveat faccessat faccessat2 fanotify_mark fchmodat
  fchownat fsconfig fspick futimesat getcwd getxattr inotify_add_watch lchown lgetxattr link linkat listxattr
  llistxattr lremovexattr lsetxattr lstat mkdir mkdirat mknod mknodat mount mount_setattr move_mount
  name_to_handle_at newfstatat open open_tree openat openat2 pivot_root quotactl readlink readlinkat
  removexattr rename renameat renameat2 rmdir setxattr stat statfs statx swapoff swapon symlink symlinkat
  truncate umount2 unlink unlinkat uselib utime utimensat utimes`);

/**
 * `%process`: process lifecycle calls (fork, vfork, clone, clone3, execve,
 * execveat, exit, exit_group, wait4, waitid, kill, tkill, tgkill, ...).
 *
 * @example
 * ```ts
 * TRACE_PROCESS.has(SYS.clone); // true
 * ```
 */
export const TRACE_PROCESS: ReadonlySet<number> = numbers(`
  fork vfork clone clone3 execve execveat exit exit_group wait4 waitid kill tkill tgkill pidfd_send_signal
  rt_sigqueueinfo rt_tgsigqueueinfo`);

/**
 * `%network` (also `%net`): socket calls.
 *
 * @example
 * ```ts
 * TRACE_NETWORK.has(SYS.connect); // true
 * ```
 */
export const TRACE_NETWORK: ReadonlySet<number> = numbers(`
  socket socketpair connect accept accept4 bind listen shutdown sendto recvfrom sendmsg recvmsg sendmmsg
  recvmmsg getsockname getpeername setsockopt getsockopt sendfile getpmsg putpmsg`);

/**
 * `%signal`: signal-related calls (rt_sigaction, rt_sigprocmask, kill,
 * sigaltstack, signalfd, rt_sigreturn, pause, ...).
 *
 * @example
 * ```ts
 * TRACE_SIGNAL.has(SYS.rt_sigaction); // true
 * ```
 */
export const TRACE_SIGNAL: ReadonlySet<number> = numbers(`
  rt_sigaction rt_sigprocmask rt_sigpending rt_sigsuspend rt_sigtimedwait rt_sigqueueinfo rt_tgsigqueueinfo
  rt_sigreturn sigaltstack signalfd signalfd4 kill tkill tgkill pidfd_send_signal pause io_uring_enter`);

/** `%ipc`: System V IPC (msg*, sem*, shm*). */
const TRACE_IPC: ReadonlySet<number> = numbers(`
  msgctl msgget msgrcv msgsnd semctl semget semop semtimedop shmat shmctl shmdt shmget`);

/**
 * `%desc`: calls that take or return a file descriptor (read, write,
 * close, dup*, fcntl, ioctl, mmap, poll, epoll_*, the `*at` calls, ...).
 * As in strace, the socket calls are `%network`, not `%desc`.
 *
 * @example
 * ```ts
 * TRACE_DESC.has(SYS.read); // true
 * ```
 */
export const TRACE_DESC: ReadonlySet<number> = numbers(`
  bpf close copy_file_range creat dup dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_pwait
  epoll_pwait2 epoll_wait eventfd eventfd2 execveat faccessat faccessat2 fadvise64 fallocate fanotify_init
  fanotify_mark fchdir fchmod fchmodat fchown fchownat fcntl fdatasync fgetxattr finit_module flistxattr flock
  fremovexattr fsconfig fsetxattr fsmount fsopen fspick fstat fstatfs fsync ftruncate futimesat getdents
  getdents64 inotify_add_watch inotify_init inotify_init1 inotify_rm_watch io_uring_enter io_uring_register
  io_uring_setup ioctl kexec_file_load landlock_add_rule landlock_create_ruleset landlock_restrict_self linkat
  lseek memfd_create memfd_secret mkdirat mknodat mmap mount_setattr move_mount mq_getsetattr mq_notify mq_open
  mq_timedreceive mq_timedsend name_to_handle_at newfstatat open open_by_handle_at open_tree openat openat2
  perf_event_open pidfd_getfd pidfd_open pidfd_send_signal pipe pipe2 poll ppoll pread64 preadv preadv2
  process_madvise process_mrelease pselect6 pwrite64 pwritev pwritev2 quotactl_fd read readahead readlinkat
  readv renameat renameat2 select sendfile setns signalfd signalfd4 splice statx symlinkat sync_file_range
  syncfs tee timerfd_create timerfd_gettime timerfd_settime unlinkat userfaultfd utimensat vmsplice write
  writev`);

/**
 * `%memory`: memory mapping calls (mmap, munmap, mprotect, mremap, brk,
 * madvise, mlock*, msync, mincore, NUMA policy, shmat/shmdt, ...).
 *
 * @example
 * ```ts
 * TRACE_MEMORY.has(SYS.brk); // true
 * ```
 */
export const TRACE_MEMORY: ReadonlySet<number> = numbers(`
  brk get_mempolicy io_destroy io_setup io_uring_register madvise mbind migrate_pages mincore mlock mlock2
  mlockall mmap move_pages mprotect mremap msync munlock munlockall munmap pkey_mprotect remap_file_pages
  set_mempolicy set_mempolicy_home_node shmat shmdt`);

/** `%creds`: user/group identity and capability calls. */
const TRACE_CREDS: ReadonlySet<number> = numbers(`
  capget capset getegid geteuid getgid getgroups getresgid getresuid getuid prctl setfsgid setfsuid setgid
  setgroups setregid setresgid setresuid setreuid setuid`);

/** `%clock`: calls that read or change clocks. */
const TRACE_CLOCK: ReadonlySet<number> = numbers(`
  adjtimex clock_adjtime clock_getres clock_gettime clock_settime gettimeofday settimeofday time`);

/** `%pure`: argument-less calls that always succeed (getpid, getuid, ...). */
const TRACE_PURE: ReadonlySet<number> = numbers('getegid geteuid getgid getpgrp getpid getppid gettid getuid');

/**
 * Every class by the name used after `%` (`file`, `net`, `%stat`...). The
 * stat groups follow strace: `%stat` = stat, `%lstat` = lstat, `%fstat` =
 * fstat, newfstatat, statx, `%%stat` = all of them; likewise `%statfs`,
 * `%fstatfs`, `%%statfs`.
 *
 * @example
 * ```ts
 * SYSCALL_CLASSES.get('network')?.has(SYS.socket); // true
 * SYSCALL_CLASSES.get('%stat')?.has(SYS.fstat);    // true
 * ```
 */
export const SYSCALL_CLASSES: ReadonlyMap<string, ReadonlySet<number>> = new Map([
  ['file', TRACE_FILE],
  ['process', TRACE_PROCESS],
  ['network', TRACE_NETWORK],
  ['net', TRACE_NETWORK],
  ['signal', TRACE_SIGNAL],
  ['ipc', TRACE_IPC],
  ['desc', TRACE_DESC],
  ['memory', TRACE_MEMORY],
  ['creds', TRACE_CREDS],
  ['clock', TRACE_CLOCK],
  ['pure', TRACE_PURE],
  ['stat', numbers('stat')],
  ['lstat', numbers('lstat')],
  ['fstat', numbers('fstat newfstatat statx')],
  ['%stat', numbers('stat lstat fstat newfstatat statx')],
  ['statfs', numbers('statfs')],
  ['fstatfs', numbers('fstatfs')],
  ['%statfs', numbers('statfs fstatfs ustat')],
]);

/**
 * The classes strace also accepts without the `%` (its older spelling):
 * `trace=file` means `trace=%file`.
 *
 * @example
 * ```ts
 * LEGACY_CLASS_NAMES.has('file');  // true: trace=file means trace=%file
 * LEGACY_CLASS_NAMES.has('creds'); // false: only %creds
 * ```
 */
export const LEGACY_CLASS_NAMES: ReadonlySet<string> = new Set(['file', 'process', 'network', 'signal', 'ipc', 'desc', 'memory']);

/**
 * The syscalls of a class, by the name written after `%` (`file`,
 * `%stat`), or undefined when there is no such class.
 *
 * @example
 * ```ts
 * syscallClass('memory')?.has(SYS.mmap); // true
 * syscallClass('nope');                  // undefined
 * ```
 */
export function syscallClass(name: string): ReadonlySet<number> | undefined {
  return SYSCALL_CLASSES.get(name);
}
