#!/usr/bin/env node

require('../dist/cli/index.js')
  .main(process.argv)
  .catch((err) => {
    process.stderr.write(`healthgpt: ${err?.message ? err.message : err}\n`);
    process.exitCode = 1;
  });
