import { Redis } from 'ioredis';
import { ALL_QUEUES } from './jobs.js';
import { Scheduler, type SchedulableJob } from './scheduler.js';

// Against the real Redis of the test run, under a prefix of its own per test.
const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
let redis: Redis;
let prefix: string;
let n = 0;

beforeAll(() => {
  redis = new Redis(url, { maxRetriesPerRequest: 1 });
});
afterAll(async () => {
  const keys = await redis.keys(`{${process.env.REDIS_PREFIX ?? 'test'}-sched-*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();
});

function scheduler(leaseMs = 60_000): Scheduler {
  prefix = `${process.env.REDIS_PREFIX ?? 'test'}-sched-${process.pid}-${++n}`;
  return new Scheduler({ redisPrefix: prefix }, redis, leaseMs, ALL_QUEUES);
}

const job = (tenantId: string, i: number, type: SchedulableJob['type'] = 'training'): SchedulableJob => ({
  id: `${tenantId}-${i}`,
  tenantId,
  type,
  accelerator: null,
});
const share = (cap = 100, weight = 1) => ({ cap, weight });

/** Dispatches one job at a time and releases it, as a single-slot worker would. */
async function order(s: Scheduler, count: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const [d] = await s.dispatch(['training'], 1);
    if (!d) break;
    out.push(d.jobId);
    await s.release(d.tenantId, d.jobId);
  }
  return out;
}

test('a tenant arriving behind a flood is served at the next free slot', async () => {
  const s = scheduler();
  for (let i = 0; i < 200; i++) await s.enqueue(job('a', i), share());
  expect(await order(s, 5)).toEqual(['a-0', 'a-1', 'a-2', 'a-3', 'a-4']);
  await s.enqueue(job('b', 0), share());
  expect(await s.position(job('b', 0))).toBeLessThanOrEqual(2);
  const next = await order(s, 2);
  expect(next).toContain('b-0');
});

test('tenants with work waiting take turns, and weights give shares', async () => {
  const s = scheduler();
  for (let i = 0; i < 30; i++) {
    await s.enqueue(job('a', i), share());
    await s.enqueue(job('b', i), share());
    await s.enqueue(job('c', i), share(100, 2));
  }
  const first = await order(s, 40);
  const count = (t: string) => first.filter((id) => id.startsWith(`${t}-`)).length;
  // Stride scheduling: c (weight 2) gets half, a and b a quarter each, within one job.
  expect(Math.abs(count('c') - 20)).toBeLessThanOrEqual(1);
  expect(Math.abs(count('a') - 10)).toBeLessThanOrEqual(1);
  expect(Math.abs(count('b') - 10)).toBeLessThanOrEqual(1);
  // Each tenant's own jobs stay in order.
  const as = first.filter((id) => id.startsWith('a-'));
  expect(as).toEqual([...as].sort((x, y) => Number(x.slice(2)) - Number(y.slice(2))));
});

test('a tenant at its cap is skipped, and gets its turn when a lease is released', async () => {
  const s = scheduler();
  for (let i = 0; i < 5; i++) await s.enqueue(job('a', i), share(2));
  for (let i = 0; i < 5; i++) await s.enqueue(job('b', i), share(10));
  const taken = await s.dispatch(['training'], 6);
  expect(taken.filter((d) => d.tenantId === 'a')).toHaveLength(2);
  expect(taken.filter((d) => d.tenantId === 'b')).toHaveLength(4);
  expect(await s.leases('a')).toBe(2);
  // Workers start them (otherwise they count against the next dispatch's free slots).
  for (const d of taken) expect(await s.claim(d.tenantId, d.jobId, false)).toBe(true);
  const [next] = await s.dispatch(['training'], 1);
  expect(next.tenantId).toBe('b');
  await s.claim('b', next.jobId, false);
  await s.release('a', taken.find((d) => d.tenantId === 'a')!.jobId);
  expect(await s.dispatch(['training'], 1).then((d) => d.map((x) => x.jobId))).toEqual(['a-2']);
});

test('a lease that is not renewed runs out: a crashed worker never keeps its slot', async () => {
  const s = scheduler(300);
  for (let i = 0; i < 2; i++) await s.enqueue(job('a', i), share(1));
  expect(await s.dispatch(['training'], 2)).toHaveLength(1);
  expect(await s.dispatch(['training'], 1)).toHaveLength(0);
  await new Promise((r) => setTimeout(r, 350));
  expect(await s.dispatch(['training'], 1).then((d) => d.map((x) => x.jobId))).toEqual(['a-1']);
});

test('renewed leases hold; claim refuses past the cap unless the job holds its lease or is forced', async () => {
  const s = scheduler(300);
  await s.enqueue(job('a', 0), share(1));
  const [d] = await s.dispatch(['training'], 1);
  for (let i = 0; i < 4; i++) {
    await new Promise((r) => setTimeout(r, 120));
    await s.renew([{ tenantId: 'a', jobId: d.jobId }]);
  }
  expect(await s.leases('a')).toBe(1);
  expect(await s.claim('a', d.jobId, false)).toBe(true);
  expect(await s.claim('a', 'a-other', false)).toBe(false);
  expect(await s.claim('a', 'a-stalled', true)).toBe(true);
});

test('enqueue is idempotent, remove takes a waiting job out, holds says where a job is', async () => {
  const s = scheduler();
  expect(await s.enqueue(job('a', 0), share())).toBe(true);
  expect(await s.enqueue(job('a', 0), share())).toBe(false);
  await s.enqueue(job('a', 1), share());
  expect(await s.holds('a-0')).toBe(true);
  expect(await s.remove(job('a', 0))).toBe(true);
  expect(await s.remove(job('a', 0))).toBe(false);
  expect(await order(s, 5)).toEqual(['a-1']);
  expect(await s.holds('a-1')).toBe(false);
  expect(await s.waiting()).toEqual([]);
});

test("free slots are net of jobs dispatched and not started yet, and only the worker's queues are served", async () => {
  const s = scheduler();
  for (let i = 0; i < 4; i++) await s.enqueue(job('a', i, 'evaluation'), share());
  await s.enqueue(job('b', 0, 'training'), share());
  expect((await s.dispatch(['evaluation'], 1)).map((d) => d.jobId)).toEqual(['a-0']);
  // a-0 waits in BullMQ for a worker: of 2 free slots one is spoken for.
  expect((await s.dispatch(['evaluation'], 2)).map((d) => d.jobId)).toEqual(['a-1']);
  expect(await s.position(job('a', 3, 'evaluation'))).toBe(4);
  // Once a worker starts them, the slots count as free again.
  await s.claim('a', 'a-0', false);
  await s.claim('a', 'a-1', false);
  expect((await s.dispatch(['evaluation'], 1)).map((d) => d.jobId)).toEqual(['a-2']);
  expect(await s.position(job('a', 3, 'evaluation'))).toBe(2);
});

test('every script declares its keys, all in one slot, and reads no key of BullMQ', async () => {
  const s = scheduler();
  const seen: string[][] = [];
  const spy = redis.sendCommand.bind(redis);
  redis.sendCommand = ((cmd: { name: string; args: Array<string | Buffer | number> }) => {
    if (cmd.name === 'evalsha' || cmd.name === 'eval') seen.push(cmd.args.slice(2, 2 + Number(cmd.args[1])).map(String));
    return spy(cmd as never);
  }) as typeof redis.sendCommand;
  try {
    await s.enqueue(job('a', 0), share());
    await s.position(job('a', 0));
    await s.dispatch(['training'], 1);
    await s.claim('a', 'a-0', false);
    await s.release('a', 'a-0');
    await s.leases('a');
  } finally {
    redis.sendCommand = spy;
  }
  expect(seen.length).toBeGreaterThanOrEqual(6);
  for (const keys of seen) {
    expect(keys.length).toBeGreaterThan(8);
    for (const k of keys) expect(k.startsWith(`{${prefix}:sched}:`)).toBe(true);
  }
  expect(seen.flat().some((k) => k.includes('bull'))).toBe(false);
});

test("a job handed back goes before the rest of its tenant's jobs", async () => {
  const s = scheduler();
  await s.enqueue(job('a', 0), share());
  await s.enqueue(job('a', 1), share());
  await s.enqueue(job('a', 9), share(), { front: true });
  expect(await order(s, 3)).toEqual(['a-9', 'a-0', 'a-1']);
});

test('queue_position follows the dispatch order', async () => {
  const s = scheduler();
  for (let i = 0; i < 10; i++) await s.enqueue(job('a', i), share());
  for (let i = 0; i < 3; i++) await s.enqueue(job('b', i), share());
  const positions = new Map<string, number>();
  for (let i = 0; i < 10; i++) positions.set(`a-${i}`, (await s.position(job('a', i)))!);
  for (let i = 0; i < 3; i++) positions.set(`b-${i}`, (await s.position(job('b', i)))!);
  const actual = await order(s, 13);
  actual.forEach((id, i) => {
    expect([id, positions.get(id)]).toEqual([id, i + 1]);
  });
});

test('holdsMany says in one call which jobs wait, and forgets a dispatched one', async () => {
  const s = scheduler();
  for (let i = 0; i < 3; i++) await s.enqueue(job('a', i), share());
  expect(await s.holdsMany(['a-0', 'a-1', 'a-2', 'a-9'])).toEqual(new Set(['a-0', 'a-1', 'a-2']));
  const [d] = await s.dispatch(['training'], 1);
  expect(await s.holdsMany(['a-0', 'a-1', 'a-2'])).toEqual(new Set(['a-0', 'a-1', 'a-2'].filter((id) => id !== d.jobId)));
  expect(await s.holdsMany([])).toEqual(new Set());
});
