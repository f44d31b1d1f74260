/**
 * Socket ABI for passing fds (x86-64): `struct msghdr`, `struct iovec`, `struct cmsghdr` and
 * SCM_RIGHTS, as recvmsg(2) and cmsg(3) lay them out.
 */

/** `struct msghdr` field offsets (56 bytes). */
export const MSGHDR = {
  name: 0,
  namelen: 8,
  iov: 16,
  iovlen: 24,
  control: 32,
  controllen: 40,
  flags: 48,
  size: 56,
} as const;

/** `struct iovec` field offsets (16 bytes). */
export const IOVEC = { base: 0, len: 8, size: 16 } as const;

/** `struct cmsghdr` field offsets; the data (e.g. the fds) follows at `data`. */
export const CMSGHDR = { len: 0, level: 8, type: 12, data: 16 } as const;

/** cmsg_level and cmsg_type of a message carrying fds. */
export const SOL_SOCKET = 1;
export const SCM_RIGHTS = 1;

/** recvmsg flag: fail with EAGAIN rather than block. */
export const MSG_DONTWAIT = 0x40n;
