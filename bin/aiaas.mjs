#!/usr/bin/env node
// The `aiaas` command line (package.json "bin"): runs the build in dist/ (`npm run build`, or
// any `npm start` / `npm test`, makes it).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/apps/cli/src/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write('aiaas: the CLI is not built yet: run `npm run build` in the repository first\n');
  process.exit(2);
}
await import(main.href);
