#!/usr/bin/env node
// @ts-check
/**
 * Makes the prebuilt addon that the published package ships: copies the addon node-gyp just
 * built (build/Release/systrap.node) to prebuilds/linux-x64/systrap.napi.glibc.node, where
 * node-gyp-build looks when no build/ exists (an installed package), so that installing systrap
 * needs no compiler. `npm pack` runs it (prepack, after build:native); `--clean` (postpack)
 * removes prebuilds/ again.
 *
 * Why the name: node-gyp-build reads the dot-separated tags of prebuilds/<platform>-<arch>/*.node.
 * `napi` says one build serves every Node version (the addon is Node-API, NAPI_VERSION in
 * binding.gyp); `glibc` says what it links against, so that musl (Alpine) does not pick it and
 * builds from source; no runtime tag means any runtime. The first part, `systrap`, is not a tag
 * (ignored) but names the addon in /proc/PID/maps. Nothing else is loaded at run time: the stub
 * code is a static library linked into the addon (binding.gyp).
 *
 * Why prebuilds/ does not stay in a checkout: node-gyp-build prefers build/Release when it
 * exists, but a checkout without build/ would load a stale prebuild, and `npm install` would
 * then skip compiling, and tests would run old native code.
 *
 * Why not prebuildify: it runs node-gyp itself, outside npm, which tries to download Node's
 * headers (npm's own config points node-gyp at the local ones), and it would be one more
 * dependency for a copy.
 *
 * Usage: node scripts/prebuild.js [--clean]
 */
import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const built = `${root}build/Release/systrap.node`;
const dir = `${root}prebuilds/linux-x64`;
const target = `${dir}/systrap.napi.glibc.node`;

/** @param {string} message */
function fail(message) {
  console.error(`prebuild: ${message}`);
  process.exit(1);
}

if (process.argv.includes('--clean')) {
  rmSync(`${root}prebuilds`, { recursive: true, force: true });
  process.exit(0);
}

// A prebuild made elsewhere would carry the wrong name: the tags say linux, x64, glibc.
const header = /** @type {{ glibcVersionRuntime?: string }} */ (process.report.getReport().header);
if (process.platform !== 'linux' || process.arch !== 'x64' || !header.glibcVersionRuntime)
  fail(`only made on linux x64 with glibc (here: ${process.platform} ${process.arch}${header.glibcVersionRuntime ? '' : ', no glibc'})`);
if (!existsSync(built)) fail(`${built} is missing: run npm run build:native first`);

// One file only: an older name left beside it could be the one node-gyp-build picks.
rmSync(`${root}prebuilds`, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
copyFileSync(built, target);

// node-gyp-build must pick exactly this file once build/ is absent (PREBUILDS_ONLY skips build/;
// it is read when the module loads, hence the late require).
process.env.PREBUILDS_ONLY = '1';
const resolved = createRequire(import.meta.url)('node-gyp-build').resolve(root);
if (resolved !== target) fail(`node-gyp-build resolves ${resolved}, not ${target}`);
console.log(`prebuild: ${target.slice(root.length)}`);
