import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Cluster } from 'ioredis';
import pg from 'pg';
import { createTenant, sleep, type TenantFixture, until } from '../support/factories.js';
import { FAST_WORKER } from '../support/fault.js';
import { Api } from '../support/http.js';
import { blobs, storeVersion } from '../support/ml-fixtures.js';
import { type RunningApi, type RunningProcess, startApi, startWorker } from '../support/processes.js';
import { type RedisClusterHandle, startRedisCluster } from '../support/redis-cluster.js';

// The whole service on a real Redis Cluster (3 masters, 3 replicas on loopback): two API
// instances and two worker processes, PostgreSQL as everywhere. See docs/scaling.md.
let cluster: RedisClusterHandle;
let db: pg.Pool;
let env: Record<string, string>;
const apis: RunningApi[] = [];
const workers: RunningProcess[] = [];

/** Stalls and reconciliation within seconds, so a job whose Redis state a failover lost moves on quickly. */
const FAST = { ...FAST_WORKER, WORKER_RECONCILE_AGE_MS: '1000', LOG_LEVEL: 'warn' };
/** Sync prediction: the answer inline (a 202 and a job only if no worker answers in 30 s). */
const WAIT = { headers: { Prefer: 'wait=30' } };
const inputs = blobs.slice(0, 5).map(({ label: _l, ...x }) => x);
const prefix = `${process.env.REDIS_PREFIX ?? 'test'}-cluster`;

async function tenant(quotas: Record<string, number> = {}): Promise<TenantFixture> {
  const t = await createTenant(apis[0].url, { quotas: { requests_per_minute: 100_000, max_queued_jobs: 10_000, ...quotas } });
  const m = await t.api.post('/v1/models', { name: 'm', task: 'classification' });
  await storeVersion(t.id, m.body.id, `job_fixture_${t.id}`);
  return t;
}

/** The same tenant's key on the other API instance. */
const onOther = (t: TenantFixture) => new Api(apis[1].url, t.key.secret);

/** The event types of a job's SSE stream on the second API instance, read until the server closes it (after the terminal event). */
async function streamed(t: TenantFixture, jobId: string): Promise<string[]> {
  const res = await fetch(`${apis[1].url}/v1/jobs/${jobId}/stream`, { headers: { authorization: `Bearer ${t.key.secret}` } });
  expect(res.headers.get('content-type')).toContain('text/event-stream');
  const text = await res.text();
  return text
    .split('\n\n')
    .filter((b) => b.startsWith('id:'))
    .map((b) => /event: (.*)/.exec(b)![1]);
}

async function statuses(ids: string[]): Promise<Map<string, string>> {
  const { rows } = await db.query<{ id: string; status: string }>('SELECT id, status FROM jobs WHERE id = ANY($1)', [ids]);
  return new Map(rows.map((r) => [r.id, r.status]));
}

async function allSucceeded(ids: string[]): Promise<boolean> {
  const s = await statuses(ids);
  return ids.every((id) => s.get(id) === 'succeeded');
}

beforeAll(async () => {
  cluster = await startRedisCluster();
  env = { ...cluster.env, REDIS_PREFIX: prefix, WEBHOOK_ALLOWED_HOSTS: '127.0.0.1', ...FAST };
  db = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 2 });
  apis.push(...(await Promise.all([startApi(env), startApi(env)])));
  workers.push(
    ...(await Promise.all([startWorker({ ...env, WORKER_CONCURRENCY: '2' }), startWorker({ ...env, WORKER_CONCURRENCY: '2' })])),
  );
}, 120_000);

afterAll(async () => {
  await Promise.all([...workers, ...apis].map((p) => p.stop('SIGKILL').catch(() => undefined)));
  await db?.end();
  await cluster?.stop();
});

describe('on a Redis Cluster', () => {
  it('accepts jobs on either API instance and runs each once on the workers', async () => {
    const t = await tenant();
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await (i % 2 ? onOther(t) : t.api).post('/v1/jobs', { type: 'inference', model: 'm', inputs });
      expect(r.status).toBe(202);
      ids.push(r.body.id);
    }
    await until('every job to succeed', () => allSucceeded(ids), 90_000);
    const { rows } = await db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM job_events WHERE job_id = ANY($1) AND type = 'job.succeeded' GROUP BY job_id",
      [ids],
    );
    expect(rows).toHaveLength(20);
    expect(rows.every((r) => r.n === 1)).toBe(true);
    const workersUsed = await db.query<{ w: string }>('SELECT DISTINCT worker_id AS w FROM jobs WHERE id = ANY($1)', [ids]);
    expect(workersUsed.rows.length).toBeGreaterThanOrEqual(1);
  }, 120_000);

  it('shares the workers fairly between two tenants', async () => {
    // A runs one job at a time, so its flood is still waiting when B arrives however fast the machine.
    const a = await tenant({ max_concurrent_jobs: 1 });
    const b = await tenant({ max_concurrent_jobs: 4 });
    const job = { type: 'inference', model: 'm', inputs };
    const flood = await Promise.all(Array.from({ length: 60 }, () => a.api.post('/v1/jobs', job).then((r) => r.body.id as string)));
    const late = await Promise.all(
      Array.from({ length: 3 }, () =>
        onOther(b)
          .post('/v1/jobs', job)
          .then((r) => r.body.id as string),
      ),
    );
    await until('B to finish', () => allSucceeded(late), 90_000);
    const left = [...(await statuses(flood)).values()].filter((s) => s !== 'succeeded').length;
    process.stdout.write(`cluster fairness: ${left} of A's 60 jobs were not done when B's 3 were\n`);
    // FIFO would have run all of A's flood first.
    expect(left).toBeGreaterThan(0);
    await until('A to drain', () => allSucceeded(flood), 120_000);
  }, 240_000);

  it('answers sync predictions on both API instances', async () => {
    const t = await tenant();
    for (const api of [t.api, onOther(t)]) {
      const r = await api.post('/v1/models/m/predict', { inputs, version: 1 }, WAIT);
      expect(r.status).toBe(200);
      expect(r.body.predictions).toHaveLength(inputs.length);
    }
  }, 60_000);

  it('streams a job submitted on one instance from the other (SSE over cluster pub/sub)', async () => {
    const t = await tenant();
    const j = (await t.api.post('/v1/jobs', { type: 'inference', model: 'm', inputs })).body;
    const types = await streamed(t, j.id);
    expect(types[0]).toBe('job.queued');
    expect(types.at(-1)).toBe('job.succeeded');
  }, 60_000);

  it('delivers a signed webhook when a job ends', async () => {
    const received: Array<{ headers: Record<string, unknown>; body: string }> = [];
    const server: Server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const t = await tenant();
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
      expect((await t.api.post('/v1/webhooks', { url, events: ['job.succeeded'] })).status).toBe(201);
      const j = (await t.api.post('/v1/jobs', { type: 'inference', model: 'm', inputs })).body;
      const got = await until('the webhook', () => received.find((r) => JSON.parse(r.body).data?.id === j.id), 60_000);
      expect(JSON.parse(got.body).type).toBe('job.succeeded');
      expect(got.headers['webhook-signature']).toMatch(/^v1,/);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  }, 90_000);

  it('refuses a revoked key on the other instance within a second', async () => {
    const t = await tenant();
    const extra = await t.api.post('/v1/api-keys', { name: 'to-revoke' });
    const onB = new Api(apis[1].url, extra.body.secret);
    expect((await onB.get('/v1/me')).status).toBe(200);
    const revokedAt = Date.now();
    expect((await t.api.delete(`/v1/api-keys/${extra.body.id}`)).status).toBe(200);
    await until('the revocation to reach instance B', async () => (await onB.get('/v1/me')).status === 401, 1_000, 20);
    process.stdout.write(`cluster revocation reached the other instance in ${Date.now() - revokedAt} ms\n`);
  }, 30_000);

  it('spreads the keys of the deployment over more than one master', async () => {
    const perMaster = await cluster.keysPerMaster(`{${prefix}:*`);
    process.stdout.write(`cluster keys per master: ${JSON.stringify(perMaster)}\n`);
    expect(Object.values(perMaster).filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
    // The units (BullMQ per queue, one per tenant, the scheduler, ...) hash to many slots.
    const redis = new Cluster(cluster.nodes);
    try {
      await new Promise((resolve) => redis.once('ready', resolve));
      const units = new Set<string>();
      for (const node of redis.nodes('master')) {
        for (const key of await node.keys(`{${prefix}:*`)) units.add(key.slice(0, key.indexOf('}') + 1));
      }
      const slots = new Set(await Promise.all([...units].map((u) => redis.cluster('KEYSLOT', u))));
      process.stdout.write(`cluster units: ${units.size} hash tags in ${slots.size} slots\n`);
      expect(slots.size).toBeGreaterThanOrEqual(4);
    } finally {
      redis.disconnect();
    }
  }, 30_000);

  it('loses nothing accepted while a master fails over, and answers 503, never 500', async () => {
    const t = await tenant();
    const accepted: string[] = [];
    const answers = new Map<number, number>();
    let stop = false;
    const submit = async (api: Api) => {
      while (!stop) {
        const r = await api.post('/v1/jobs', { type: 'inference', model: 'm', inputs }).catch(() => null);
        if (!r) continue;
        answers.set(r.status, (answers.get(r.status) ?? 0) + 1);
        if (r.status === 202) accepted.push(r.body.id);
        else await sleep(50);
      }
    };
    const predict = async (api: Api) => {
      while (!stop) {
        const r = await api.post('/v1/models/m/predict', { inputs, version: 1 }, WAIT).catch(() => null);
        if (r) answers.set(r.status, (answers.get(r.status) ?? 0) + 1);
        if (r?.status !== 200) await sleep(50);
      }
    };
    const load = Promise.all([submit(t.api), submit(onOther(t)), predict(t.api), predict(onOther(t))]);
    await until('some jobs accepted', () => accepted.length >= 10, 30_000);
    // The master of the scheduler's slot: every submission and dispatch touches it.
    const probe = new Cluster(cluster.nodes);
    await new Promise((resolve) => probe.once('ready', resolve));
    const slot = await probe.cluster('KEYSLOT', `{${prefix}:sched}`);
    probe.disconnect();
    const owner = (await cluster.masters()).find((m) => m.slots.some(([from, to]) => slot >= from && slot <= to))!;
    const killed = await cluster.killMaster(owner.port);
    const failover = await cluster.waitForFailover(killed.port, 60_000);
    const afterFailover = accepted.length;
    await until('jobs accepted after the failover', () => accepted.length >= afterFailover + 10, 60_000);
    stop = true;
    await load;
    process.stdout.write(
      `cluster failover: master ${killed.port} -> ${failover.promoted} in ${failover.ms} ms; answers ${JSON.stringify(Object.fromEntries(answers))}; ${accepted.length} jobs accepted\n`,
    );
    // Only what a client may retry: accepted, answered, or 503 while a slot had no master.
    for (const status of answers.keys()) expect([200, 202, 503]).toContain(status);
    await until('every accepted job to succeed', () => allSucceeded(accepted), 180_000);
    const { rows } = await db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM job_events WHERE job_id = ANY($1) AND type = 'job.succeeded' GROUP BY job_id",
      [accepted],
    );
    expect(rows).toHaveLength(accepted.length);
    expect(rows.every((r) => r.n === 1)).toBe(true);
    // And the service works as before on the promoted replica: sync predict, and SSE over the
    // sharded subscriptions, which followed the slots to their new master.
    const r = await onOther(t).post('/v1/models/m/predict', { inputs, version: 1 }, WAIT);
    expect(r.status).toBe(200);
    const after = (await t.api.post('/v1/jobs', { type: 'inference', model: 'm', inputs })).body;
    expect((await streamed(t, after.id)).at(-1)).toBe('job.succeeded');
  }, 360_000);
});
