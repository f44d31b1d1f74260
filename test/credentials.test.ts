/**
 * The credentials a successful call of the setuid family leaves (src/sentry/kernel/credentials.ts,
 * Linux's kernel/sys.c rules): what the sentry makes every stub thread of the process take on.
 * The same calls on the real kernel are compared in processes.test.ts (fixture attrs.c).
 */
import test from 'ava';
import { SYS } from '../src/abi/syscalls.js';
import { capsAfterUidChange, credentialsAfter, credentialsOf, type Credentials } from '../src/sentry/kernel/credentials.js';

const root: Credentials = { uid: [0, 0, 0, 0], gid: [0, 0, 0, 0], groups: [] };
const user: Credentials = { uid: [1000, 1000, 1000, 1000], gid: [100, 100, 100, 100], groups: [5] };
const KEEP = 0xffffffffn;

test('setuid: all four ids when privileged, the effective and fs ids otherwise', (t) => {
  t.deepEqual(credentialsAfter(root, SYS.setuid, [1000n]).uid, [1000, 1000, 1000, 1000]);
  const swapped = { ...user, uid: [1000, 0, 0, 0] }; // euid 0: privileged
  t.deepEqual(credentialsAfter(swapped, SYS.setuid, [7n]).uid, [7, 7, 7, 7]);
  const unprivileged = { ...user, uid: [1000, 2000, 3000, 2000] };
  t.deepEqual(credentialsAfter(unprivileged, SYS.setuid, [3000n]).uid, [1000, 3000, 3000, 3000]);
});

test('setreuid: the saved id follows the new effective one when the real one is set or the effective one differs from the old real one', (t) => {
  t.deepEqual(credentialsAfter(root, SYS.setreuid, [KEEP, 1000n]).uid, [0, 1000, 1000, 1000]);
  t.deepEqual(credentialsAfter(root, SYS.setreuid, [KEEP, 0n]).uid, [0, 0, 0, 0]);
  t.deepEqual(credentialsAfter(root, SYS.setreuid, [5n, KEEP]).uid, [5, 0, 0, 0]);
  t.deepEqual(credentialsAfter({ ...root, uid: [1000, 0, 7, 0] }, SYS.setreuid, [KEEP, 1000n]).uid, [1000, 1000, 7, 1000]);
});

test('setresuid/setresgid: -1 keeps an id; the fs id follows the effective one', (t) => {
  t.deepEqual(credentialsAfter(root, SYS.setresuid, [KEEP, 1000n, KEEP]).uid, [0, 1000, 0, 1000]);
  t.deepEqual(credentialsAfter(root, SYS.setresgid, [1n, 2n, 3n]).gid, [1, 2, 3, 2]);
  t.deepEqual(credentialsAfter(root, SYS.setresgid, [1n, 2n, 3n]).uid, [0, 0, 0, 0], 'uids untouched');
});

test('setfsuid: changes the fs id only when allowed (privileged, or one of the ids); setgroups: the list, sorted', (t) => {
  t.deepEqual(credentialsAfter(user, SYS.setfsuid, [5n]).uid, user.uid, 'not allowed: unchanged');
  t.deepEqual(credentialsAfter({ ...user, uid: [1000, 1000, 2000, 1000] }, SYS.setfsuid, [2000n]).uid, [1000, 1000, 2000, 2000]);
  t.deepEqual(credentialsAfter(root, SYS.setfsgid, [9n]).gid, [0, 0, 0, 9]);
  t.deepEqual(credentialsAfter(root, SYS.setgroups, [3n, 0n], [30, 10, 20]).groups, [10, 20, 30]);
});

test('credentialsOf reads /proc: this process\'s, and undefined for a pid that does not exist', (t) => {
  const mine = credentialsOf(process.pid)!;
  t.is(mine.uid[0], process.getuid!());
  t.is(mine.gid[1], process.getegid!());
  t.is(credentialsOf(0x3fffffff), undefined);
});

test('capabilities on a uid change: leaving root clears them unless keepcaps; the effective set follows the effective uid', (t) => {
  const full = { effective: 0xffn, permitted: 0xffn, inheritable: 0n, keep: false };
  t.like(capsAfterUidChange([0, 0, 0, 0], [65534, 65534, 65534, 65534], full), { effective: 0n, permitted: 0n });
  t.like(capsAfterUidChange([0, 0, 0, 0], [65534, 65534, 65534, 65534], { ...full, keep: true }), { effective: 0n, permitted: 0xffn });
  t.like(capsAfterUidChange([0, 0, 0, 0], [0, 65534, 0, 65534], full), { effective: 0n, permitted: 0xffn }, 'a saved uid 0 keeps the permitted set');
  t.like(capsAfterUidChange([0, 65534, 0, 65534], [0, 0, 0, 0], { ...full, effective: 0n }), { effective: 0xffn, permitted: 0xffn }, 'back to euid 0: effective = permitted');
});
