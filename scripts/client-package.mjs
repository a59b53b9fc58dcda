// `npm run client:package`: builds libs/client as the npm package @aiaas/client in
// dist/packages/client (JavaScript and declarations, with the one server file it uses: libs/webhooks'
// signature check), ready for `npm pack dist/packages/client` or `npm install <that folder>`.
import { execFileSync } from 'node:child_process';
import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { bin, root } from './lib.mjs';

const src = join(root, 'libs', 'client');
const out = join(root, 'dist', 'packages', 'client');
rmSync(out, { recursive: true, force: true });
execFileSync(bin('tsc'), ['-p', join(src, 'tsconfig.package.json')], { cwd: root, stdio: 'inherit' });
// tsc does not copy .d.ts sources: the generated API types go along by hand.
cpSync(join(src, 'src', 'generated'), join(out, 'client', 'src', 'generated'), { recursive: true });
cpSync(join(src, 'package.json'), join(out, 'package.json'));
console.log(`built ${out}`);
