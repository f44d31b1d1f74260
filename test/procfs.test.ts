/**
 * What Node reads of other processes through /proc (src/tracer/procfs.ts): the pid Node's pid
 * namespace gives a child that another namespace numbers otherwise (a sandbox's fork children),
 * and a child the children lists do not show. Real processes, no stubs.
 */
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { childrenOf, hostPidOfChild } from '../src/tracer/procfs.js';
import { requireTool, until } from './helpers.js';

/** The first line `child` prints. */
async function firstLine(child: ChildProcess): Promise<string> {
  let out = '';
  for await (const chunk of child.stdout!) {
    out += String(chunk);
    if (out.includes('\n')) return out.slice(0, out.indexOf('\n'));
  }
  throw new Error(`the child ended before it printed a line (got ${JSON.stringify(out)})`);
}

test('a child in a pid namespace of its own is found by its number there (its NSpid), not by the number alone', async (t) => {
  const unshare = requireTool('unshare', 'util-linux');
  // unshare's child is pid 1 of a new pid namespace; it waits on its stdin (closed at the end).
  const u = spawn(unshare, ['--pid', '--fork', '--kill-child', 'cat'], { stdio: ['pipe', 'ignore', 'inherit'] });
  try {
    t.true(await until(() => childrenOf(u.pid!).length === 1), `unshare made no child: ${childrenOf(u.pid!)}`);
    const [cat] = childrenOf(u.pid!);
    t.not(cat, 1);
    t.is(hostPidOfChild(u.pid!, 1), cat);
    const err = t.throws(() => hostPidOfChild(u.pid!, 2));
    t.regex(err.message, /no child of \d+ is 2 in its namespace/);
  } finally {
    u.stdin!.end();
    if (u.exitCode === null) await once(u, 'exit');
  }
});

test("a child made by another thread of the parent (not in the main thread's children list) is found all the same", async (t) => {
  const python = requireTool('python3', 'python3');
  // The second thread forks `cat` and stays alive until told (a child moves to another thread
  // when its parent thread ends), so only /proc/PARENT/task/THREAD/children lists it.
  const script = [
    'import subprocess, sys, threading',
    'def run():',
    "    p = subprocess.Popen(['cat'], stdin=subprocess.PIPE)",
    "    print(p.pid, flush=True)",
    '    sys.stdin.readline()',
    '    p.stdin.close()',
    '    p.wait()',
    'th = threading.Thread(target=run)',
    'th.start()',
    'th.join()',
  ].join('\n');
  const py = spawn(python, ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    const cat = Number(await firstLine(py));
    t.true(cat > 0);
    t.false(childrenOf(py.pid!).includes(cat), "the main thread's list does not show it");
    t.is(hostPidOfChild(py.pid!, cat), cat, 'found by its parent');
    t.is(hostPidOfChild(py.pid!, cat, true), cat, "found under its thread's list");
  } finally {
    py.stdin!.end('\n');
    if (py.exitCode === null) await once(py, 'exit');
  }
});
