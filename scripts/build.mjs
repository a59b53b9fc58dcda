// Compiles apps/ and libs/ to dist/ with SWC (type checking is `npm run typecheck`, part of `npm test`).
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
rmSync(join(root, 'dist'), { recursive: true, force: true });
execFileSync(join(root, 'node_modules', '.bin', 'swc'), ['apps', 'libs', '-d', 'dist', '--quiet'], { cwd: root, stdio: 'inherit' });
