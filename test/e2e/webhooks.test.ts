import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { blobs, storeVersion } from '../support/ml-fixtures.js';
import { createTenant, sleep, type TenantFixture, until as waitUntil } from '../support/factories.js';
import { type RunningApi, startApi, startWorker } from '../support/processes.js';

// Webhooks end to end (API.md "Webhooks", docs/webhooks.md): a real receiver on loopback that
// verifies every delivery with the `standardwebhooks` reference package, the real API and worker
// processes, the outbox in PostgreSQL and the `webhooks` BullMQ queue.

/** What the receiver does for a path: answer a status (or a list, one per call), hang, or redirect. */
type Behaviour = { status: number | number[]; headers?: Record<string, string> } | 'hang';

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}

class Receiver {
  readonly received: Received[] = [];
  private readonly behaviours = new Map<string, Behaviour>();
  private readonly calls = new Map<string, number>();
  private server!: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const path = req.url ?? '/';
        this.received.push({ path, headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() });
        const b = this.behaviours.get(path) ?? { status: 204 };
        if (b === 'hang') return; // never answers
        const n = this.calls.get(path) ?? 0;
        this.calls.set(path, n + 1);
        const status = Array.isArray(b.status) ? (b.status[n] ?? b.status.at(-1)!) : b.status;
        res.writeHead(status, b.headers ?? {}).end();
      });
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  on(path: string, b: Behaviour): string {
    this.behaviours.set(path, b);
    return `${this.url}${path}`;
  }

  at(path: string): Received[] {
    return this.received.filter((r) => r.path === path);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}

const receiver = new Receiver();
let server: RunningApi;
let worker: Awaited<ReturnType<typeof startWorker>>;
let t: TenantFixture;
let other: TenantFixture;
let modelId: string;

const ENV = { WEBHOOK_ALLOWED_HOSTS: '127.0.0.1', WEBHOOK_RETRY_SCHEDULE: '300ms,300ms,300ms,300ms', WEBHOOK_TIMEOUT_MS: '800' };
const WORKER_ENV = { ...ENV, TF_BACKEND: 'wasm', WORKER_LOCK_DURATION_MS: '2000', WORKER_STALLED_INTERVAL_MS: '1000' };

/** Waits of this file give up after 30 s unless told otherwise. */
const until = <T>(what: string, fn: () => T | Promise<T>, timeoutMs = 30_000) => waitUntil(what, fn, timeoutMs);

/** Verifies a delivery with the reference implementation; throws if the signature does not hold. */
function verify(r: Received, secret: string): { type: string; timestamp: string; data: Record<string, any> } {
  return new Webhook(secret).verify(r.body, r.headers as Record<string, string>) as {
    type: string;
    timestamp: string;
    data: Record<string, any>;
  };
}

async function endpoint(url: string, events?: string[]): Promise<{ id: string; secret: string }> {
  const r = await t.api.post('/v1/webhooks', { url, ...(events ? { events } : {}) });
  expect(r.status).toBe(201);
  expect(r.body.secret).toMatch(/^whsec_/);
  return r.body;
}

/** A model.version.created event for the tenant (the registry writes it, as the worker does after training). */
async function newVersion(): Promise<void> {
  await storeVersion(t.id, modelId, `job_fixture_${Date.now()}${Math.random().toString(36).slice(2, 8)}`);
}

beforeAll(async () => {
  await receiver.start();
  server = await startApi(ENV);
  worker = await startWorker(WORKER_ENV);
  t = await createTenant(server.url, { quotas: { requests_per_minute: 100_000 } });
  other = await createTenant(server.url);
  modelId = (await t.api.post('/v1/models', { name: 'hooked', task: 'classification' })).body.id;
}, 60_000);
afterAll(async () => {
  await worker?.stop();
  await server?.stop();
  await receiver.close();
});

describe('webhooks', () => {
  it("signs a training job's completed webhook with the default secret, and the endpoint's events with its own", async () => {
    const hook = await endpoint(receiver.on('/all', { status: 200 }), ['job.succeeded', 'model.version.created']);
    const ds = await t.api.post('/v1/datasets', { name: 'hooks', task: 'classification', records: blobs });
    const jobUrl = receiver.on('/job', { status: 204 });
    const job = await t.api.post('/v1/jobs', {
      type: 'training',
      model: 'hooked',
      dataset: ds.body.id,
      hyperparameters: { epochs: 2 },
      webhook_url: jobUrl,
    });
    expect(job.status).toBe(202);

    const [delivery] = await until('the job webhook', () => receiver.at('/job').length > 0 && receiver.at('/job'));
    const key = (await t.api.get('/v1/webhooks/default/secret')).body.key;
    const body = verify(delivery, key);
    expect(body.type).toBe('job.succeeded');
    expect(body.data).toMatchObject({ id: job.body.id, object: 'job', status: 'succeeded', version: 1 });
    expect(delivery.headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/=]+$/);
    expect(Math.abs(Number(delivery.headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(60);
    // The API shows the same job; only `completed` was asked for (the default).
    expect((await t.api.get(`/v1/jobs/${job.body.id}`)).body).toMatchObject({ status: 'succeeded', version: body.data.version });
    await sleep(500);
    expect(receiver.at('/job')).toHaveLength(1);

    const types = (await until('both endpoint events', () => receiver.at('/all').length >= 2 && receiver.at('/all'))).map(
      (r) => verify(r, hook.secret).type,
    );
    expect(types.sort()).toEqual(['job.succeeded', 'model.version.created']);
    expect(new Set(receiver.at('/all').map((r) => r.headers['webhook-id'])).size).toBe(receiver.at('/all').length);
  }, 90_000);

  it("sends a job's start, throttled progress and completion to its webhook_url, in order", async () => {
    const ds = await t.api.post('/v1/datasets', { name: 'hooks-progress', task: 'classification', records: blobs });
    const url = receiver.on('/progress', { status: 200 });
    const job = await t.api.post('/v1/jobs', {
      type: 'training',
      model: 'hooked',
      dataset: ds.body.id,
      hyperparameters: { epochs: 60, batch_size: 8 },
      webhook_url: url,
      webhook_events: ['start', 'progress', 'completed'],
    });
    const done = await until(
      'the completion',
      () => receiver.at('/progress').some((r) => r.body.includes('"job.succeeded"')) && receiver.at('/progress'),
      60_000,
    );
    const key = (await t.api.get('/v1/webhooks/default/secret')).body.key;
    const events = done.map((r) => ({ ...verify(r, key), at: Date.parse(verify(r, key).timestamp) }));
    expect(events[0].type).toBe('job.started');
    expect(events.at(-1)!.type).toBe('job.succeeded');
    const progress = events.filter((e) => e.type === 'job.progress');
    const epochs = (await t.api.get(`/v1/jobs/${job.body.id}/events?limit=100`)).body.data.filter(
      (e: { type: string }) => e.type === 'job.progress',
    ).length;
    expect(epochs).toBe(60);
    // At most one progress message per 500 ms: fewer messages than epochs, never two within the window.
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.length).toBeLessThan(epochs);
    for (let i = 1; i < progress.length; i++) expect(progress[i].at - progress[i - 1].at).toBeGreaterThanOrEqual(450);
    expect(progress.map((e) => e.data.progress.epoch)).toEqual([...progress.map((e) => e.data.progress.epoch)].sort((a, b) => a - b));
  }, 90_000);

  it('retries a failing receiver with the same webhook-id, and logs every attempt', async () => {
    const hook = await endpoint(receiver.on('/flaky', { status: [500, 502, 503, 200] }), ['model.version.created']);
    await newVersion();
    const got = await until('four attempts', () => receiver.at('/flaky').length >= 4 && receiver.at('/flaky'));
    expect(new Set(got.map((r) => r.headers['webhook-id'])).size).toBe(1);
    for (const r of got) verify(r, hook.secret);
    const log = await until('the log to show success', async () => {
      const d = (await t.api.get(`/v1/webhooks/${hook.id}/deliveries`)).body.data;
      return d[0]?.status === 'succeeded' && d;
    });
    expect(log[0].id).toBe(got[0].headers['webhook-id']);
    expect(log[0].attempts.map((a: { status_code: number }) => a.status_code)).toEqual([500, 502, 503, 200]);
    expect(log[0].attempts.every((a: { duration_ms: number; attempted_at: string }) => a.duration_ms >= 0 && a.attempted_at)).toBe(true);
    await sleep(700);
    expect(receiver.at('/flaky')).toHaveLength(4);
  }, 60_000);

  it('marks a message failed when the schedule is spent, and redelivers it on request under the same id', async () => {
    const hook = await endpoint(receiver.on('/down', { status: 503 }), ['model.version.created']);
    await newVersion();
    // One attempt plus four retries (the test schedule), then failed.
    const [message] = await until('the message to fail', async () => {
      const d = (await t.api.get(`/v1/webhooks/${hook.id}/deliveries`)).body.data;
      return d[0]?.status === 'failed' && d;
    });
    expect(message.attempts).toHaveLength(5);
    expect(message.attempts[0].error).toContain('503');
    receiver.on('/down', { status: 200 });
    const again = await t.api.post(`/v1/webhooks/${hook.id}/deliveries/${message.id}/redeliver`, {});
    expect([again.status, again.body.id]).toEqual([202, message.id]);
    await until('the redelivery', async () => (await t.api.get(`/v1/webhooks/${hook.id}/deliveries`)).body.data[0]?.status === 'succeeded');
    expect(new Set(receiver.at('/down').map((r) => r.headers['webhook-id']))).toEqual(new Set([message.id]));
    expect(receiver.at('/down')).toHaveLength(6);
  }, 60_000);

  it('disables an endpoint that answers 410 Gone', async () => {
    const hook = await endpoint(receiver.on('/gone', { status: 410 }), ['model.version.created']);
    await newVersion();
    const view = await until('the endpoint to be disabled', async () => {
      const e = (await t.api.get(`/v1/webhooks/${hook.id}`)).body;
      return e.enabled === false && e;
    });
    expect(view.disabled_reason).toBe('gone');
    // A witness endpoint on the same event: once it has the next message, the dispatcher has handled that
    // message, and the disabled endpoint must not have had it.
    const witness = await endpoint(receiver.on('/gone-witness', { status: 200 }), ['model.version.created']);
    await newVersion();
    await until('the witness to receive the next message', () => receiver.at('/gone-witness').length === 1);
    expect(receiver.at('/gone')).toHaveLength(1);
    await t.api.call('DELETE', `/v1/webhooks/${witness.id}`);
    // Enabling it again clears the reason, and deliveries resume.
    receiver.on('/gone', { status: 200 });
    const enabled = await t.api.call('PATCH', `/v1/webhooks/${hook.id}`, { body: { enabled: true } });
    expect(enabled.body).toMatchObject({ enabled: true, disabled_reason: null });
    await newVersion();
    await until('a delivery after re-enabling', () => receiver.at('/gone').length === 2);
  }, 60_000);

  it('times out a receiver that never answers, and retries it', async () => {
    const hook = await endpoint(receiver.on('/hang', 'hang'), ['model.version.created']);
    await newVersion();
    const got = await until('a retry after a timeout', () => receiver.at('/hang').length >= 2 && receiver.at('/hang'), 20_000);
    expect(got[0].headers['webhook-id']).toBe(got[1].headers['webhook-id']);
    const d = (await t.api.get(`/v1/webhooks/${hook.id}/deliveries`)).body.data[0];
    expect(d.attempts[0]).toMatchObject({ status_code: null });
    expect(d.attempts[0].error).toMatch(/time/i);
    expect(d.attempts[0].duration_ms).toBeGreaterThanOrEqual(700);
    await t.api.call('DELETE', `/v1/webhooks/${hook.id}`);
  }, 60_000);

  it('does not follow a redirect', async () => {
    const target = receiver.on('/redirect-target', { status: 200 });
    const hook = await endpoint(receiver.on('/redirect', { status: 302, headers: { location: target } }), ['model.version.created']);
    await newVersion();
    const [message] = await until('an attempt', async () => {
      const d = (await t.api.get(`/v1/webhooks/${hook.id}/deliveries`)).body.data;
      return d[0]?.attempts.length > 0 && d;
    });
    expect(message.attempts[0].status_code).toBe(302);
    expect(message.attempts[0].error).toContain(target);
    expect(receiver.at('/redirect-target')).toHaveLength(0);
    await t.api.call('DELETE', `/v1/webhooks/${hook.id}`);
  }, 30_000);

  it('signs with both secrets during a rotation, so receivers holding either verify', async () => {
    const hook = await endpoint(receiver.on('/rotating', { status: 200 }), ['model.version.created']);
    const rotated = await t.api.post(`/v1/webhooks/${hook.id}/rotate-secret`, {});
    expect(rotated.status).toBe(200);
    expect(rotated.body.secret).not.toBe(hook.secret);
    expect(Date.parse(rotated.body.previous_secret_expires_at)).toBeGreaterThan(Date.now());
    await newVersion();
    const [r] = await until('a delivery', () => receiver.at('/rotating').length > 0 && receiver.at('/rotating'));
    expect(String(r.headers['webhook-signature']).split(' ')).toHaveLength(2);
    expect(verify(r, hook.secret).type).toBe('model.version.created');
    expect(verify(r, rotated.body.secret).type).toBe('model.version.created');
    expect(() => verify(r, `whsec_${Buffer.alloc(32, 7).toString('base64')}`)).toThrow();
  }, 30_000);

  it('loses no message when the worker is killed mid-delivery or down when the event happens', async () => {
    const hook = await endpoint(receiver.on('/durable', 'hang'), ['model.version.created']);
    await newVersion();
    await until('the first attempt to be in flight', () => receiver.at('/durable').length === 1);
    await worker.stop('SIGKILL');
    receiver.on('/durable', { status: 200 });
    // With no worker at all, a new event still lands in the outbox.
    await newVersion();
    worker = await startWorker(WORKER_ENV);
    const log = await until(
      'both messages delivered',
      async () => {
        const d = (await t.api.get(`/v1/webhooks/${hook.id}/deliveries`)).body.data as Array<{ id: string; status: string }>;
        return d.length === 2 && d.every((m) => m.status === 'succeeded') && d;
      },
      40_000,
    );
    const ids = new Set(receiver.at('/durable').map((r) => r.headers['webhook-id']));
    expect(ids).toEqual(new Set(log.map((m) => m.id)));
    for (const r of receiver.at('/durable')) verify(r, hook.secret);
  }, 90_000);

  it('refuses URLs that reach private, loopback, link-local or odd addresses (SSRF guard)', async () => {
    // This API allows only 127.0.0.1 (WEBHOOK_ALLOWED_HOSTS), in whatever notation; every other address is checked.
    const refused = [
      'http://localhost/hook',
      'http://[::1]/hook',
      'http://[::ffff:127.0.0.1]/hook',
      'http://[::ffff:7f00:1]/hook',
      'http://127.0.0.2/hook',
      'http://2130706434/hook',
      'http://167772161/hook',
      'http://0177.0.0.2/hook',
      'http://012.0.0.1/hook',
      'http://0x7f.2/hook',
      'http://127.2/hook',
      'http://0xa9fea9fe/latest/meta-data',
      'http://169.254.169.254/latest/meta-data',
      'http://10.0.0.1/hook',
      'http://172.16.0.1/hook',
      'http://192.168.1.1/hook',
      'http://100.64.0.1/hook',
      'http://0.0.0.0/hook',
      'http://[fd00::1]/hook',
      'http://[fe80::1]/hook',
      'http://localtest.me/hook',
      'ftp://example.com/hook',
      'file:///etc/passwd',
      'http://user:pass@example.com/hook',
      'not a url',
    ];
    for (const url of refused) {
      const r = await t.api.post('/v1/webhooks', { url });
      expect([url, r.status, r.body.error?.param]).toEqual([url, 400, 'url']);
    }
    const change = await endpoint(receiver.on('/fine', { status: 200 }));
    const patched = await t.api.call('PATCH', `/v1/webhooks/${change.id}`, { body: { url: 'http://169.254.169.254/' } });
    expect([patched.status, patched.body.error.code]).toEqual([400, 'url_not_allowed']);
    expect((await t.api.get('/v1/webhooks')).body.data.every((e: { url: string }) => !e.url.includes('169.254'))).toBe(true);
  }, 60_000);

  it("keeps every webhook route to the tenant's own endpoints", async () => {
    const hook = await endpoint(receiver.on('/mine', { status: 200 }));
    const [message] = await (async () => {
      await newVersion();
      return until(
        'a message',
        async () =>
          (await t.api.get(`/v1/webhooks/${hook.id}/deliveries`)).body.data.length > 0 &&
          (await t.api.get(`/v1/webhooks/${hook.id}/deliveries`)).body.data,
      );
    })();
    const routes: Array<[string, string, unknown?]> = [
      ['GET', `/v1/webhooks/${hook.id}`],
      ['PATCH', `/v1/webhooks/${hook.id}`, { enabled: false }],
      ['DELETE', `/v1/webhooks/${hook.id}`],
      ['POST', `/v1/webhooks/${hook.id}/rotate-secret`, {}],
      ['GET', `/v1/webhooks/${hook.id}/deliveries`],
      ['POST', `/v1/webhooks/${hook.id}/deliveries/${message.id}/redeliver`, {}],
    ];
    for (const [method, path, body] of routes) {
      const r = await other.api.call(method, path, body === undefined ? {} : { body });
      expect([method, path, r.status, r.body.error?.code]).toEqual([method, path, 404, 'resource_missing']);
    }
    expect((await other.api.get('/v1/webhooks')).body.data).toEqual([]);
    expect((await other.api.get('/v1/webhooks/default/secret')).body.key).not.toBe(
      (await t.api.get('/v1/webhooks/default/secret')).body.key,
    );
    // Untouched by the other tenant's attempts.
    expect((await t.api.get(`/v1/webhooks/${hook.id}`)).body).toMatchObject({ enabled: true, previous_secret_expires_at: null });
    // Secrets never reach the logs.
    const logs = [...server.output, ...worker.output].join('\n');
    expect(logs).not.toContain(hook.secret);
    expect(logs).not.toContain((await t.api.get('/v1/webhooks/default/secret')).body.key);
    // Keys without webhooks scopes are refused.
    const reader = await t.api.post('/v1/api-keys', { name: 'no-webhooks', scopes: ['jobs:read'] });
    expect((await t.api.as(reader.body.secret).get('/v1/webhooks')).status).toBe(403);
  }, 30_000);

  it('validates bodies and ids with clear 4xx', async () => {
    const cases: Array<[string, string, unknown, number, string]> = [
      ['POST', '/v1/webhooks', { url: 'http://127.0.0.1:1/x', events: ['job.exploded'] }, 400, 'events'],
      ['POST', '/v1/webhooks', { events: [] }, 400, 'url'],
      ['POST', '/v1/webhooks', { url: 'http://127.0.0.1:1/x', colour: 'red' }, 400, ''],
      ['PATCH', '/v1/webhooks/whe_doesnotexist000', { enabled: true }, 404, 'id'],
      ['GET', '/v1/webhooks/nope', undefined, 400, 'id'],
    ];
    for (const [method, path, body, status, param] of cases) {
      const r = await t.api.call(method, path, body === undefined ? {} : { body });
      expect([method, path, r.status]).toEqual([method, path, status]);
      if (param) expect(String(r.body.error.param)).toContain(param);
    }
  });
});
