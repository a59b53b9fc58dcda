import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type RunningApi, startApi } from '../support/processes.js';

// The client's types are generated from the OpenAPI document (`npm run client:types`) and
// committed; this fails when the code's document has moved on without them.
const run = promisify(execFile);
const env = { ...process.env, NODE_OPTIONS: '' };
let server: RunningApi;

beforeAll(async () => {
  server = await startApi();
});
afterAll(() => server?.stop());

describe('libs/client/src/generated/openapi.d.ts', () => {
  it('is what the current OpenAPI document generates (else: run `npm run client:types` and commit)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aiaas-types-'));
    try {
      const out = join(dir, 'openapi.d.ts');
      await run(process.execPath, ['scripts/client-types.mjs', '--out', out], { env });
      const [fresh, committed] = await Promise.all([readFile(out, 'utf8'), readFile('libs/client/src/generated/openapi.d.ts', 'utf8')]);
      expect(fresh.length).toBeGreaterThan(10_000);
      expect(committed).toBe(fresh);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('comes from the very document the API serves at /openapi.json', async () => {
    const { stdout } = await run(process.execPath, ['scripts/client-types.mjs', '--document'], { env, maxBuffer: 64 * 1024 * 1024 });
    const served = await (await fetch(`${server.url}/openapi.json`)).json();
    expect(JSON.parse(stdout)).toEqual(served);
  });
});
