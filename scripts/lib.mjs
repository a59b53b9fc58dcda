// Helpers shared by the start, test and bench scripts (plain Node, no dependencies).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const bin = (name) => join(root, 'node_modules', '.bin', name);

export function step(message) {
  process.stdout.write(`\x1b[36m›\x1b[0m ${message}\n`);
}

/** Installs dependencies when node_modules is missing (a fresh clone). */
export function ensureDependencies() {
  if (existsSync(join(root, 'node_modules', '.package-lock.json'))) return;
  step('installing dependencies (npm ci)');
  const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('npm ci failed');
}

/**
 * Generates the Prisma client offline: `prisma generate` never runs the schema engine, it only
 * checks that one exists, and the real one can't be downloaded here (ENVIRONMENT.md).
 */
export function generatePrismaClient() {
  execFileSync(bin('prisma'), ['generate'], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'inherit'],
    env: {
      ...process.env,
      PRISMA_SCHEMA_ENGINE_BINARY: join(root, 'scripts', 'schema-engine-stub.sh'),
      PRISMA_HIDE_UPDATE_MESSAGE: '1',
      CHECKPOINT_DISABLE: '1',
    },
  });
}

export function build() {
  execFileSync(process.execPath, [join(root, 'scripts', 'build.mjs')], { cwd: root, stdio: 'inherit' });
}

export function migrateDatabase(env) {
  execFileSync(process.execPath, [join(root, 'dist', 'libs', 'db', 'src', 'migrate.cli.js')], { cwd: root, stdio: 'inherit', env });
}
