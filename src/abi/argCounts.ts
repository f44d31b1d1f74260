/**
 * How many arguments each x86-64 syscall takes, for printing the ones
 * without a dedicated decoder (`name(0x1, 0x2)`), and for reading only those a call takes
 * (Task.callArgs).
 *
 * @module
 */

import { SYS } from './syscalls.js';

/** Syscall names grouped by argument count. */
const BY_COUNT: Readonly<Record<number, string>> = {
  0: `sched_yield pause getpid fork vfork getuid getgid geteuid getegid getppid getpgrp setsid munlockall
    vhangup sync gettid restart_syscall inotify_init rt_sigreturn`,
  1: `close brk pipe dup alarm exit uname shmdt fsync fdatasync chdir fchdir rmdir unlink umask sysinfo times
    setuid setgid getpgid setfsuid setfsgid getsid personality sched_getscheduler sched_get_priority_max
    sched_get_priority_min mlockall _sysctl adjtimex chroot acct swapoff iopl get_kernel_syms time
    set_thread_area io_destroy get_thread_area epoll_create set_tid_address timer_getoverrun timer_delete
    mq_unlink unshare eventfd epoll_create1 inotify_init1 syncfs userfaultfd pkey_free exit_group uselib
    memfd_secret`,
  2: `stat fstat lstat munmap access dup2 nanosleep getitimer shutdown listen kill msgget flock truncate
    ftruncate getcwd rename mkdir creat link symlink chmod fchmod gettimeofday getrlimit getrusage setpgid
    setreuid setregid getgroups setgroups capget capset rt_sigpending sigaltstack utime ustat statfs fstatfs
    getpriority sched_setparam sched_getparam sched_rr_get_interval mlock munlock pivot_root arch_prctl
    setrlimit settimeofday umount2 swapon sethostname setdomainname create_module delete_module removexattr
    lremovexattr fremovexattr tkill io_setup timer_gettime clock_settime clock_gettime clock_getres utimes
    mq_notify ioprio_get inotify_rm_watch set_robust_list timerfd_create timerfd_gettime eventfd2 pipe2
    fanotify_init clock_adjtime setns memfd_create pkey_alloc clone3 pidfd_open fsopen landlock_restrict_self
    process_mrelease rt_sigsuspend io_uring_setup`,
  3: `read write open poll lseek mprotect readv writev msync mincore madvise shmget shmat shmctl setitimer
    socket connect accept sendmsg recvmsg bind getsockname getpeername execve semget semop msgctl fcntl
    getdents readlink chown fchown lchown syslog setresuid getresuid setresgid getresgid rt_sigqueueinfo mknod
    sysfs setpriority sched_setscheduler modify_ldt ioperm init_module nfsservctl tuxcall security readahead
    listxattr llistxattr flistxattr sched_setaffinity sched_getaffinity io_submit io_cancel lookup_dcookie
    getdents64 timer_create tgkill set_mempolicy mq_getsetattr ioprio_set inotify_add_watch mkdirat
    futimesat unlinkat symlinkat fchmodat faccessat get_robust_list signalfd dup3 open_by_handle_at getcpu
    finit_module sched_setattr seccomp getrandom bpf membarrier mlock2 open_tree fsmount fspick close_range
    pidfd_getfd landlock_create_ruleset ioctl`,
  4: `rt_sigaction rt_sigprocmask pread64 pwrite64 sendfile socketpair wait4 semctl msgsnd ptrace
    rt_sigtimedwait quotactl reboot getxattr lgetxattr fgetxattr epoll_ctl_old epoll_wait_old semtimedop
    fadvise64 timer_settime clock_nanosleep epoll_wait epoll_ctl mq_open kexec_load request_key migrate_pages
    openat mknodat newfstatat renameat readlinkat tee sync_file_range vmsplice utimensat signalfd4 fallocate
    timerfd_settime accept4 preadv pwritev rt_tgsigqueueinfo prlimit64 sendmmsg sched_getattr pkey_mprotect
    rseq pidfd_send_signal io_uring_register openat2 faccessat2 quotactl_fd landlock_add_rule
    set_mempolicy_home_node`,
  5: `select mremap setsockopt getsockopt clone msgrcv prctl mount query_module getpmsg putpmsg afs_syscall
    setxattr lsetxattr fsetxattr io_getevents remap_file_pages vserver get_mempolicy mq_timedsend
    mq_timedreceive waitid add_key keyctl fchownat linkat ppoll perf_event_open recvmmsg fanotify_mark
    name_to_handle_at kcmp renameat2 kexec_file_load execveat statx move_mount fsconfig process_madvise
    mount_setattr futex_waitv`,
  6: `mmap sendto recvfrom futex mbind pselect6 splice move_pages epoll_pwait process_vm_readv
    process_vm_writev copy_file_range preadv2 pwritev2 io_pgetevents io_uring_enter epoll_pwait2`,
};

/** The argument count by syscall number. */
const COUNTS = new Map<number, number>();
for (const [count, names] of Object.entries(BY_COUNT)) {
  for (const name of names.split(/\s+/)) {
    if (!name) continue;
    const nr = (SYS as Readonly<Record<string, number>>)[name];
    if (nr === undefined) throw new Error(`argCounts: unknown syscall ${name}`);
    COUNTS.set(nr, Number(count));
  }
}

/**
 * The number of arguments syscall `nr` takes (6 for a number this table does
 * not know).
 *
 * @example
 * ```ts
 * syscallArgCount(SYS.read);   // 3
 * syscallArgCount(SYS.getpid); // 0
 * syscallArgCount(999);        // 6
 * ```
 */
export function syscallArgCount(nr: number): number {
  return COUNTS.get(nr) ?? 6;
}
