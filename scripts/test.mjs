// `npm test`: lints and checks formatting (Biome), type-checks, builds, gives this run its own PostgreSQL database and Redis key
// prefix, runs every Jest test (unit tests beside the code, end-to-end tests under test/), then
// drops what it made. Extra arguments go to Jest (e.g. `npm test -- test/e2e/auth.test.ts`).
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bin, build, ensureDependencies, generatePrismaClient, migrateDatabase, root, step } from './lib.mjs';

ensureDependencies();
step('generating the Prisma client');
generatePrismaClient();
if (!process.env.SKIP_TYPECHECK) {
  step('linting and checking the format (biome ci; `npm run format` rewrites)');
  const biome = spawnSync(bin('biome'), ['ci', '.', '--error-on-warnings'], { cwd: root, stdio: 'inherit' });
  if (biome.status !== 0) {
    console.error('lint or format check failed');
    console.log('tests: 0 passed, 1 failed');
    process.exit(1);
  }
  step('type-checking (tsc --noEmit)');
  const tsc = spawnSync(bin('tsc'), ['-p', 'tsconfig.json', '--noEmit'], { cwd: root, stdio: 'inherit' });
  if (tsc.status !== 0) {
    console.error('type check failed');
    console.log('tests: 0 passed, 1 failed');
    process.exit(1);
  }
}
step('building dist/ (SWC)');
build();

const runId = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
const baseUrl = new URL(process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/aiaas');
baseUrl.pathname = `/aiaas_test_${runId}`;
const env = {
  ...process.env,
  NODE_ENV: 'test',
  DATABASE_URL: baseUrl.toString(),
  REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  REDIS_PREFIX: `test-${runId}`,
  ADMIN_API_KEY: `adm_test${randomBytes(16).toString('hex')}`,
  LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
  NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --experimental-vm-modules --no-warnings`.trim(),
};
step(`test database ${baseUrl.pathname.slice(1)}, Redis prefix ${env.REDIS_PREFIX}`);
migrateDatabase(env);

const artifacts = join(root, 'test-artifacts');
mkdirSync(artifacts, { recursive: true });
const resultsFile = join(artifacts, 'jest-results.json');
const jestArgs = ['--runInBand', '--json', `--outputFile=${resultsFile}`, ...process.argv.slice(2)];
const code = await new Promise((resolve) => {
  const child = spawn(bin('jest'), jestArgs, { cwd: root, stdio: 'inherit', env });
  const forward = (signal) => child.kill(signal);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  child.on('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0)));
});

step('dropping the test database and Redis keys');
await cleanUp(env).catch((err) => console.error(`cleanup: ${err.message}`));

let passed = 0;
let failed = code === 0 ? 0 : 1;
try {
  const results = JSON.parse(readFileSync(resultsFile, 'utf8'));
  passed = results.numPassedTests;
  failed = results.numFailedTests + (results.numRuntimeErrorTestSuites ?? 0);
  if (code !== 0 && failed === 0) failed = 1;
} catch {
  // Jest died before writing results: count the run as one failure.
}
console.log(`tests: ${passed} passed, ${failed} failed`);
process.exit(code);

async function cleanUp(env) {
  const { dropDatabase } = await import(join(root, 'dist', 'libs', 'db', 'src', 'migrate.js'));
  await dropDatabase(env.DATABASE_URL);
  const { Redis } = await import('ioredis');
  const redis = new Redis(env.REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  // the run's prefix, and the prefixes tests derive from it (`{<prefix>-strict:…}` for an API with other limits)
  for (const pattern of [`{${env.REDIS_PREFIX}:*`, `{${env.REDIS_PREFIX}-*`]) {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      if (keys.length) await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  }
  redis.disconnect();
}
