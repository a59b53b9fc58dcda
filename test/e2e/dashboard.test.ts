import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { blobRows } from '../../libs/ml/src/synthetic.js';
import { Api } from '../support/http.js';
import { adminKey, createTenant, type TenantFixture } from '../support/factories.js';
import { type RunningApi, startApi, startWorker } from '../support/processes.js';

// The operator's dashboard in a real browser: Debian's headless Chromium driven by playwright-core
// (ENVIRONMENT.md), against the real API and a worker. Skipped, with the reason printed, only where
// no Chromium binary exists; .ci/run installs Debian's chromium so that in CI it always runs.
const CHROMIUM = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find(
  (p): p is string => !!p && existsSync(p),
);
if (!CHROMIUM)
  process.stdout.write(
    "dashboard browser test SKIPPED: no Chromium binary at /usr/bin/chromium (install Debian's `chromium`, or set CHROMIUM_PATH)\n",
  );
const describeInBrowser = CHROMIUM ? describe : describe.skip;
const ARTIFACTS = join(process.cwd(), 'test-artifacts');

let server: RunningApi;
let worker: Awaited<ReturnType<typeof startWorker>>;
let t: TenantFixture;
let admin: Api;
let jobId: string;
// playwright-core's types, loaded only when a browser runs.
let browser: import('playwright-core').Browser | undefined;

describeInBrowser('dashboard (headless Chromium)', () => {
  beforeAll(async () => {
    server = await startApi();
    worker = await startWorker({ TF_BACKEND: 'wasm' });
    admin = new Api(server.url, adminKey());
    t = await createTenant(server.url, { name: `dash-${Date.now()}`, quotas: { requests_per_minute: 100_000 } });
    const ds = await t.api.post('/v1/datasets', {
      name: 'dash',
      task: 'classification',
      records: blobRows(200, { features: 4, classes: 3, seed: 5 }),
    });
    await t.api.post('/v1/models', { name: 'dash', task: 'classification' });
    const trained = await t.api.post(
      '/v1/jobs',
      { type: 'training', model: 'dash', dataset: ds.body.id, hyperparameters: { epochs: 8, seed: 1 } },
      { headers: { Prefer: 'wait=60' } },
    );
    expect(trained.body.status).toBe('succeeded');
    jobId = trained.body.id;
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await worker?.stop();
    await server?.stop();
  });

  it('logs in with an admin key, shows a trained job with its loss chart, and suspends a tenant', async () => {
    const context = await browser!.newContext({ viewport: { width: 1400, height: 1800 } });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${server.url}/dashboard`);

    // A tenant key is not an admin key.
    await page.fill('#admin-key', t.key.secret);
    await page.click('#login-button');
    await page.waitForSelector('#login-error:has-text("not an admin key")');

    await page.fill('#admin-key', adminKey());
    await page.click('#login-button');
    await page.waitForSelector('#tiles .tile');
    // The key lives in session storage only.
    expect(await page.evaluate(() => [sessionStorage.getItem('aiaas.adminKey')?.slice(0, 4), localStorage.length])).toEqual(['adm_', 0]);

    // Overview tiles agree with the API.
    const overview = (await admin.get('/v1/admin/overview')).body;
    const succeeded = await page.textContent('[data-tile="succeeded"] b');
    expect(Number(succeeded)).toBeGreaterThanOrEqual(1);
    expect(Number(succeeded)).toBeLessThanOrEqual(overview.jobs.by_status.succeeded + 5);

    // The job trained in this test, opened: its events and a chart of loss and validation loss per epoch.
    await page.fill('#f-tenant', t.id);
    await page.dispatchEvent('#f-tenant', 'change');
    const jobRow = page.locator(`#jobs tr[data-job="${jobId}"]`);
    await jobRow.waitFor();
    expect(await jobRow.textContent()).toContain('succeeded');
    await jobRow.click();
    await page.waitForSelector('#loss-chart polyline[data-series="loss"]');
    expect(await page.locator('#loss-chart polyline[data-series="val_loss"]').count()).toBe(1);
    const points = (await page.getAttribute('#loss-chart polyline[data-series="loss"]', 'points'))!.trim().split(' ');
    expect(points).toHaveLength(8);
    expect(await page.locator('#jd-events tbody tr').count()).toBeGreaterThanOrEqual(10);

    // Suspend the tenant from its row; the API agrees, and the tenant's key is refused.
    const tenantRow = page.locator(`#tenants tr[data-tenant="${t.id}"]`);
    page.once('dialog', (d) => void d.accept());
    await tenantRow.locator('button[data-action="suspend"]').click();
    await page.waitForSelector(`#tenants tr[data-tenant="${t.id}"] td.s-suspended`);
    expect((await admin.get(`/v1/admin/tenants/${t.id}`)).body.status).toBe('suspended');
    expect((await t.api.get('/v1/me')).status).toBe(403);

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true });
    expect(existsSync(join(ARTIFACTS, 'dashboard.png'))).toBe(true);
    expect(errors).toEqual([]);
    await context.close();
  }, 120_000);
});
