import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { createTenant, type TenantFixture } from '../support/factories.js';
import { type RunningApi, startApi } from '../support/processes.js';

// libs/client as an npm package (`npm run client:package`), installed in a project of its own:
// it must run and type-check with nothing but its declared dependency.
const run = promisify(execFile);
const env = { ...process.env, NODE_OPTIONS: '' };
const project = mkdtempSync(join(tmpdir(), 'aiaas-consumer-'));
let server: RunningApi;
let t: TenantFixture;

beforeAll(async () => {
  server = await startApi();
  t = await createTenant(server.url);
  await run(process.execPath, ['scripts/client-package.mjs'], { env });
  const modules = join(project, 'node_modules');
  mkdirSync(join(modules, '@aiaas'), { recursive: true });
  mkdirSync(join(modules, '@types'), { recursive: true });
  cpSync(resolve('dist/packages/client'), join(modules, '@aiaas', 'client'), { recursive: true });
  symlinkSync(resolve('node_modules/openapi-fetch'), join(modules, 'openapi-fetch'));
  symlinkSync(resolve('node_modules/@types/node'), join(modules, '@types', 'node'));
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', type: 'module', private: true }));
}, 60_000);
afterAll(async () => {
  await server?.stop();
  rmSync(project, { recursive: true, force: true });
});

describe('@aiaas/client as a package', () => {
  it('runs: a typed call answers, an error is thrown typed', async () => {
    writeFileSync(
      join(project, 'consumer.mjs'),
      `import { Aiaas, AiaasError } from '@aiaas/client';
const aiaas = new Aiaas({ baseUrl: process.argv[2], apiKey: process.argv[3] });
const me = await aiaas.call(aiaas.api.GET('/v1/me', {}));
let error;
try { await aiaas.call(aiaas.api.GET('/v1/models/{id}', { params: { path: { id: 'nope' } } })); } catch (e) { error = e instanceof AiaasError ? e.toJSON() : String(e); }
console.log(JSON.stringify({ tenant: me.tenant.id, error }));`,
    );
    const { stdout } = await run(process.execPath, ['consumer.mjs', server.url, t.key.secret], { cwd: project, env });
    const out = JSON.parse(stdout);
    expect(out.tenant).toBe(t.id);
    expect(out.error).toMatchObject({
      status: 404,
      type: 'invalid_request_error',
      code: 'resource_missing',
      request_id: expect.stringMatching(/^req_/),
    });
  });

  it('type-checks a consumer against the generated types, and refuses a route that does not exist', async () => {
    writeFileSync(
      join(project, 'consumer.ts'),
      `import { Aiaas, type Job } from '@aiaas/client';
const aiaas = new Aiaas({ baseUrl: 'http://127.0.0.1:3000', apiKey: 'aik_x' });
export async function latest(): Promise<Job['status'] | undefined> {
  const list = await aiaas.call(aiaas.api.GET('/v1/jobs', { params: { query: { status: 'running', limit: 1 } } }));
  return list.data[0]?.status;
}
// @ts-expect-error: no such route
export const nope = () => aiaas.api.GET('/v1/nope', {});
`,
    );
    const tsc = resolve('node_modules/.bin/tsc');
    await run(
      tsc,
      [
        '--noEmit',
        '--strict',
        '--module',
        'nodenext',
        '--moduleResolution',
        'nodenext',
        '--target',
        'es2022',
        '--types',
        'node',
        'consumer.ts',
      ],
      { cwd: project, env },
    );
  }, 60_000);
});
