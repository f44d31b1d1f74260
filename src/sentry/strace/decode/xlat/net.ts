/**
 * Flags and codes of the socket calls: address families, socket types,
 * protocols, send/recv flags, socket options (x86-64 values, in strace's
 * print order).
 *
 * @module
 */

import { hex } from '../scalars.js';
import { formatFlags, lookup, xlat } from '../xlat.js';

/**
 * Socket address families.
 *
 * @example
 * ```ts
 * formatEnum(10n, AF, 'AF_'); // 'AF_INET6'
 * ```
 */
export const AF = xlat({
  AF_UNSPEC: 0, AF_UNIX: 1, AF_INET: 2, AF_AX25: 3, AF_IPX: 4, AF_APPLETALK: 5, AF_NETROM: 6, AF_BRIDGE: 7,
  AF_ATMPVC: 8, AF_X25: 9, AF_INET6: 10, AF_ROSE: 11, AF_DECnet: 12, AF_NETBEUI: 13, AF_SECURITY: 14,
  AF_KEY: 15, AF_NETLINK: 16, AF_PACKET: 17, AF_ASH: 18, AF_ECONET: 19, AF_ATMSVC: 20, AF_RDS: 21,
  AF_SNA: 22, AF_IRDA: 23, AF_PPPOX: 24, AF_WANPIPE: 25, AF_LLC: 26, AF_IB: 27, AF_MPLS: 28, AF_CAN: 29,
  AF_TIPC: 30, AF_BLUETOOTH: 31, AF_IUCV: 32, AF_RXRPC: 33, AF_ISDN: 34, AF_PHONET: 35, AF_IEEE802154: 36,
  AF_CAIF: 37, AF_ALG: 38, AF_NFC: 39, AF_VSOCK: 40, AF_KCM: 41, AF_QIPCRTR: 42, AF_SMC: 43, AF_XDP: 44,
  AF_MCTP: 45,
});
/** Socket types (the low 4 bits of socket(2)'s type). */
const SOCK_TYPE = xlat({
  SOCK_STREAM: 1, SOCK_DGRAM: 2, SOCK_RAW: 3, SOCK_RDM: 4, SOCK_SEQPACKET: 5, SOCK_DCCP: 6, SOCK_PACKET: 10,
});
/**
 * Socket type flags.
 *
 * @example
 * ```ts
 * formatFlags(0x80800n, SOCK_FLAGS); // 'SOCK_CLOEXEC|SOCK_NONBLOCK'
 * ```
 */
export const SOCK_FLAGS = xlat({ SOCK_CLOEXEC: 0x80000, SOCK_NONBLOCK: 0x800 });

/**
 * socket(2)'s type argument: the type, then SOCK_NONBLOCK / SOCK_CLOEXEC.
 *
 * @example
 * ```ts
 * formatSockType(0x80001n); // 'SOCK_STREAM|SOCK_CLOEXEC'
 * ```
 */
export function formatSockType(v: bigint): string {
  const u = BigInt.asUintN(32, v);
  const type = lookup(u & 0xfn, SOCK_TYPE) ?? hex(u & 0xfn);
  const rest = u & ~0xfn;
  return rest === 0n ? type : `${type}|${formatFlags(rest, SOCK_FLAGS)}`;
}

/**
 * IP protocols (socket(2) protocol for AF_INET / AF_INET6).
 *
 * @example
 * ```ts
 * formatEnum(6n, IPPROTO); // 'IPPROTO_TCP'
 * ```
 */
export const IPPROTO = xlat({
  IPPROTO_IP: 0, IPPROTO_ICMP: 1, IPPROTO_IGMP: 2, IPPROTO_IPIP: 4, IPPROTO_TCP: 6, IPPROTO_EGP: 8,
  IPPROTO_PUP: 12, IPPROTO_UDP: 17, IPPROTO_IDP: 22, IPPROTO_TP: 29, IPPROTO_DCCP: 33, IPPROTO_IPV6: 41,
  IPPROTO_RSVP: 46, IPPROTO_GRE: 47, IPPROTO_ESP: 50, IPPROTO_AH: 51, IPPROTO_ICMPV6: 58, IPPROTO_MTP: 92,
  IPPROTO_BEETPH: 94, IPPROTO_ENCAP: 98, IPPROTO_PIM: 103, IPPROTO_COMP: 108, IPPROTO_L2TP: 115,
  IPPROTO_SCTP: 132, IPPROTO_UDPLITE: 136, IPPROTO_MPLS: 137, IPPROTO_ETHERNET: 143, IPPROTO_RAW: 255,
  IPPROTO_MPTCP: 262,
});
/**
 * Netlink protocols (socket(2) protocol for AF_NETLINK).
 *
 * @example
 * ```ts
 * formatEnum(0n, NETLINK_PROTO); // 'NETLINK_ROUTE'
 * ```
 */
export const NETLINK_PROTO = xlat({
  NETLINK_ROUTE: 0, NETLINK_UNUSED: 1, NETLINK_USERSOCK: 2, NETLINK_FIREWALL: 3, NETLINK_SOCK_DIAG: 4,
  NETLINK_NFLOG: 5, NETLINK_XFRM: 6, NETLINK_SELINUX: 7, NETLINK_ISCSI: 8, NETLINK_AUDIT: 9,
  NETLINK_FIB_LOOKUP: 10, NETLINK_CONNECTOR: 11, NETLINK_NETFILTER: 12, NETLINK_IP6_FW: 13,
  NETLINK_DNRTMSG: 14, NETLINK_KOBJECT_UEVENT: 15, NETLINK_GENERIC: 16, NETLINK_SCSITRANSPORT: 18,
  NETLINK_ECRYPTFS: 19, NETLINK_RDMA: 20, NETLINK_CRYPTO: 21, NETLINK_SMC: 22,
});
/**
 * send/recv flags.
 *
 * @example
 * ```ts
 * formatFlags(0x4040n, MSG_FLAGS); // 'MSG_DONTWAIT|MSG_NOSIGNAL'
 * ```
 */
export const MSG_FLAGS = xlat({
  MSG_OOB: 0x1, MSG_PEEK: 0x2, MSG_DONTROUTE: 0x4, MSG_CTRUNC: 0x8, MSG_PROBE: 0x10, MSG_TRUNC: 0x20,
  MSG_DONTWAIT: 0x40, MSG_EOR: 0x80, MSG_WAITALL: 0x100, MSG_FIN: 0x200, MSG_SYN: 0x400, MSG_CONFIRM: 0x800,
  MSG_RST: 0x1000, MSG_ERRQUEUE: 0x2000, MSG_NOSIGNAL: 0x4000, MSG_MORE: 0x8000, MSG_WAITFORONE: 0x10000,
  MSG_SENDPAGE_NOTLAST: 0x20000, MSG_BATCH: 0x40000, MSG_NO_SHARED_FRAGS: 0x80000, MSG_ZEROCOPY: 0x4000000,
  MSG_FASTOPEN: 0x20000000, MSG_CMSG_CLOEXEC: 0x40000000,
});
/**
 * shutdown(2) how.
 *
 * @example
 * ```ts
 * formatEnum(2n, SHUT, 'SHUT_'); // 'SHUT_RDWR'
 * ```
 */
export const SHUT = xlat({ SHUT_RD: 0, SHUT_WR: 1, SHUT_RDWR: 2 });
/**
 * Socket option levels.
 *
 * @example
 * ```ts
 * formatEnum(1n, SOL, 'SOL_'); // 'SOL_SOCKET'
 * ```
 */
export const SOL = xlat({ SOL_IP: 0, SOL_SOCKET: 1, SOL_TCP: 6, SOL_UDP: 17, SOL_IPV6: 41, SOL_ICMPV6: 58, SOL_RAW: 255, SOL_NETLINK: 270 });
/**
 * SOL_SOCKET options.
 *
 * @example
 * ```ts
 * formatEnum(2n, SO); // 'SO_REUSEADDR'
 * ```
 */
export const SO = xlat({
  SO_DEBUG: 1, SO_REUSEADDR: 2, SO_TYPE: 3, SO_ERROR: 4, SO_DONTROUTE: 5, SO_BROADCAST: 6, SO_SNDBUF: 7,
  SO_RCVBUF: 8, SO_KEEPALIVE: 9, SO_OOBINLINE: 10, SO_NO_CHECK: 11, SO_PRIORITY: 12, SO_LINGER: 13,
  SO_BSDCOMPAT: 14, SO_REUSEPORT: 15, SO_PASSCRED: 16, SO_PEERCRED: 17, SO_RCVLOWAT: 18, SO_SNDLOWAT: 19,
  SO_RCVTIMEO_OLD: 20, SO_SNDTIMEO_OLD: 21, SO_SECURITY_AUTHENTICATION: 22, SO_BINDTODEVICE: 25,
  SO_ATTACH_FILTER: 26, SO_DETACH_FILTER: 27, SO_PEERNAME: 28, SO_TIMESTAMP_OLD: 29, SO_ACCEPTCONN: 30,
  SO_PEERSEC: 31, SO_SNDBUFFORCE: 32, SO_RCVBUFFORCE: 33, SO_PASSSEC: 34, SO_MARK: 36, SO_PROTOCOL: 38,
  SO_DOMAIN: 39, SO_RXQ_OVFL: 40, SO_PEEK_OFF: 42, SO_BUSY_POLL: 46, SO_ATTACH_BPF: 50, SO_INCOMING_CPU: 49,
  SO_COOKIE: 57, SO_PEERGROUPS: 59, SO_ZEROCOPY: 60, SO_TXTIME: 61, SO_BINDTOIFINDEX: 62,
  SO_RCVTIMEO_NEW: 66, SO_SNDTIMEO_NEW: 67,
});
/**
 * SOL_TCP options.
 *
 * @example
 * ```ts
 * formatEnum(1n, TCP_OPTS); // 'TCP_NODELAY'
 * ```
 */
export const TCP_OPTS = xlat({
  TCP_NODELAY: 1, TCP_MAXSEG: 2, TCP_CORK: 3, TCP_KEEPIDLE: 4, TCP_KEEPINTVL: 5, TCP_KEEPCNT: 6,
  TCP_SYNCNT: 7, TCP_LINGER2: 8, TCP_DEFER_ACCEPT: 9, TCP_WINDOW_CLAMP: 10, TCP_INFO: 11, TCP_QUICKACK: 12,
  TCP_CONGESTION: 13, TCP_MD5SIG: 14, TCP_USER_TIMEOUT: 18, TCP_FASTOPEN: 23, TCP_NOTSENT_LOWAT: 25,
  TCP_ULP: 31,
});
