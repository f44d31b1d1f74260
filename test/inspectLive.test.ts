/**
 * The browser check: `systrap run --inspect` serves the viewer while a real program
 * runs; Debian's chromium, driven by playwright-core, finds in the DOM the program's subprocess
 * actor in `ready` and a platform context that passed through `syscall`.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { buildFixture } from './fixtures/build.js';
import { inspectorUrl, requireTool } from './helpers.js';

const CLI = fileURLToPath(new URL('../bin/systrap.js', import.meta.url));
const ARTIFACTS = fileURLToPath(new URL('./artifacts/', import.meta.url));

test('systrap run --inspect: the live page shows the running program (chromium + playwright-core)', async (t) => {
  const chromiumPath = requireTool('chromium', 'chromium');
  // Waits (usleep loop) until SIGINT, up to 120 s: chromium may take long to start on a loaded machine.
  const exe = buildFixture('sigint');
  const child = spawn(process.execPath, [CLI, 'run', '--inspect=0', '--', exe, 'handle', '120'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const url = await inspectorUrl(child);
  const browser = await chromium.launch({ executablePath: chromiumPath, headless: true, timeout: 30_000, args: ['--no-sandbox', '--disable-background-networking'] });
  t.teardown(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  await page.goto(url, { timeout: 20_000 });
  await page.waitForSelector('#status:text("live")', { timeout: 20_000 });
  const sub = page.locator('[data-actor-id^="subprocess:"]:not([data-actor-id="subprocess:source"])[data-state="ready"]');
  await sub.first().waitFor({ timeout: 20_000 });
  const ctx = page.locator('[data-actor-id^="platformContext:"][data-visited~="syscall"]');
  await ctx.first().waitFor({ timeout: 20_000 });
  t.true((await sub.count()) >= 1);
  t.true((await ctx.count()) >= 1);
  // Select the context: its chart marks `syscall` visited.
  await ctx.first().click();
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: `${ARTIFACTS}/inspect-live-run.png`, fullPage: true });
  // The program is still running: end it as a user would.
  t.is(child.exitCode, null);
  const code = await new Promise<number | null>((resolve) => {
    child.once('exit', (c) => resolve(c));
    child.kill('SIGINT');
  });
  t.is(code, 3); // the fixture's handler ran and it exited 3
});
