#!/usr/bin/env node
// The `systrap` command: a thin launcher for the compiled CLI (npm install builds dist/).
import('../dist/src/cli.js').then((m) => m.main(process.argv.slice(2))).then(
  (code) => process.exit(code ?? 0),
  (err) => {
    console.error(`systrap: ${err?.message ?? err}`);
    process.exit(1);
  },
);
