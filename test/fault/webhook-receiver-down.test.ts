/**
 * Fault: the webhook receiver is down for the first half of a run (docs/reliability.md). Messages
 * are written to the outbox in the transactions of the events, attempted, refused (connection
 * refused: nothing listens on the port) and retried on the schedule; once the receiver listens,
 * every one of them arrives, verifiable with the reference `standardwebhooks` package, and every
 * attempt of a message carries the same `webhook-id` and the same body. The worker holding the
 * delayed deliveries is killed while the receiver is down; its replacement takes them over.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import pg from 'pg';
import { Webhook } from 'standardwebhooks';
import { count, Fleet, report, seconds, trainingTenant, until } from '../support/fault.js';
import { type RunningApi, startApi } from '../support/processes.js';
import { freePort, PrivateRedis } from '../support/redis-server.js';

const JOBS = count(8, 24);
/** Retries often, and for long enough (~43 s) to outlast the outage with room to spare. */
const WEBHOOKS = {
  WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
  WEBHOOK_RETRY_SCHEDULE: '500ms,1s,1s,2s,2s,2s,2s,3s,3s,3s,3s,3s,3s,3s,3s,3s,3s,3s',
  WEBHOOK_TIMEOUT_MS: '2000',
};
const EVENTS = ['job.started', 'job.succeeded', 'model.version.created'];

interface Delivery {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A receiver on a fixed loopback port: down (nothing listening) until `up()`. */
class Receiver {
  readonly got: Delivery[] = [];
  private server?: Server;
  constructor(readonly port: number) {}

  async up(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.got.push({ path: req.url ?? '/', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
  }

  async down(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise((r) => this.server!.close(r));
  }
}

let redis: PrivateRedis;
let api: RunningApi;
let db: pg.Pool;
let fleet: Fleet;
let receiver: Receiver;

beforeAll(async () => {
  redis = await PrivateRedis.start();
  receiver = new Receiver(await freePort());
  db = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 2 });
  api = await startApi({ REDIS_URL: redis.url, ...WEBHOOKS });
  fleet = new Fleet({ REDIS_URL: redis.url, WORKER_CONCURRENCY: '2', ...WEBHOOKS });
}, 60_000);

afterAll(async () => {
  await fleet?.stopAll();
  await api?.stop();
  await receiver?.down();
  await db?.end();
  await redis?.destroy();
});

describe('fault: webhook receiver down for the first half of a run', () => {
  it(`${JOBS} trainings: every message arrives once the receiver is back, verifiable, one webhook-id per message`, async () => {
    const t0 = Date.now();
    const t = await trainingTenant(api.url, 150);
    const base = `http://127.0.0.1:${receiver.port}`;
    const hook = await t.api.post('/v1/webhooks', { url: `${base}/hooks`, events: EVENTS });
    expect(hook.status).toBe(201);
    await fleet.start();

    const ids: string[] = [];
    const submit = async (i: number) => {
      // Each job also has its own webhook_url (signed with the tenant's default secret).
      const r = await t.api.post('/v1/jobs', {
        type: 'training',
        model: 'm',
        dataset: t.dataset,
        hyperparameters: { epochs: 3, seed: i },
        webhook_url: `${base}/job/${i}`,
      });
      expect(r.status).toBe(202);
      ids.push(r.body.id);
    };
    const half = Math.floor(JOBS / 2);
    for (let i = 0; i < half; i++) await submit(i);
    // First half: every job ends, and its messages have been refused at least once.
    await until(
      'the first half to end',
      async () => (await db.query(`SELECT 1 FROM jobs WHERE id = ANY($1) AND status IN ('queued', 'running')`, [ids])).rowCount === 0,
      60_000,
      200,
    );
    // Every message of the first half refused at least twice (a retry refused too), and meanwhile
    // the worker holding the delayed deliveries killed and replaced.
    const refused = (times: number) => async () => {
      const { rows } = await db.query<{ n: number; refused: number }>(
        `SELECT count(*)::int AS n, count(*) FILTER (WHERE attempts >= $2 AND status = 'queued')::int AS refused FROM webhook_messages WHERE tenant_id = $1`,
        [t.id, times],
      );
      return rows[0].n === half * (EVENTS.length + 1) && rows[0].refused === rows[0].n;
    };
    await until('every message of the first half to have been refused', refused(1), 30_000, 200);
    await fleet.kill(fleet.live[0].ready.id);
    await fleet.start();
    await until('every message of the first half to have been refused again', refused(2), 30_000, 200);
    const downFor = Date.now() - t0;
    expect(receiver.got).toEqual([]);

    // Second half: the receiver listens again, on the same port.
    await receiver.up();
    const upAt = Date.now();
    for (let i = half; i < JOBS; i++) await submit(i);
    const expected = JOBS * (EVENTS.length + 1);
    const messages = await until(
      `all ${expected} messages delivered`,
      async () => {
        const { rows } = await db.query<{
          id: string;
          endpoint_id: string | null;
          url: string | null;
          event_type: string;
          status: string;
          attempts: number;
        }>(`SELECT id, endpoint_id, url, event_type, status, attempts FROM webhook_messages WHERE tenant_id = $1`, [t.id]);
        return rows.length === expected && rows.every((m) => m.status === 'succeeded') && rows;
      },
      90_000,
      250,
    );
    const drainedAfterMs = Date.now() - upAt;

    const endpointSecret: string = hook.body.secret;
    const defaultSecret: string = (await t.api.get('/v1/webhooks/default/secret')).body.key;
    const byId = new Map<string, Delivery[]>();
    for (const d of receiver.got) {
      const id = String(d.headers['webhook-id']);
      byId.set(id, [...(byId.get(id) ?? []), d]);
    }
    // Every message arrived; nothing arrived that is not a message.
    expect([...byId.keys()].sort()).toEqual(messages.map((m) => m.id).sort());
    for (const m of messages) {
      const got = byId.get(m.id)!;
      const secret = m.endpoint_id ? endpointSecret : defaultSecret;
      for (const d of got) {
        const body = new Webhook(secret).verify(d.body, d.headers as Record<string, string>) as { type: string; data: { id: string } };
        expect(body.type).toBe(m.event_type);
        expect(d.path).toBe(m.endpoint_id ? '/hooks' : new URL(m.url!).pathname);
      }
      // A message redelivered (at least once) is the same message: same id, same body.
      expect(new Set(got.map((d) => d.body)).size).toBe(1);
    }
    // Each job: its three endpoint events and its own completion.
    const jobOf = (m: { id: string }) => {
      const body = JSON.parse(byId.get(m.id)![0].body) as { type: string; data: { id: string; training_job_id?: string } };
      return body.type === 'model.version.created' ? body.data.training_job_id : body.data.id;
    };
    for (const id of ids) {
      const of = messages.filter((m) => jobOf(m) === id).map((m) => `${m.endpoint_id ? 'endpoint' : 'job'}:${m.event_type}`);
      expect(of.sort()).toEqual(['endpoint:job.started', 'endpoint:job.succeeded', 'endpoint:model.version.created', 'job:job.succeeded']);
    }
    const firstHalf = messages.filter((m) => m.attempts > 1);
    expect(firstHalf.length).toBeGreaterThanOrEqual(half * (EVENTS.length + 1));
    expect(fleet.crashed()).toEqual([]);

    report('webhook-receiver-down', {
      jobs: JOBS,
      messages: expected,
      receiver_down_ms: downFor,
      retried_messages: firstHalf.length,
      max_attempts: Math.max(...messages.map((m) => m.attempts)),
      duplicate_deliveries: receiver.got.length - expected,
      drained_after_up_ms: drainedAfterMs,
      seconds: seconds(t0),
    });
  }, 240_000);
});
