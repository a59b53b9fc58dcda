import { type Job, Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { retryDelayMs } from './backoff.js';
import { bullPrefix } from './jobs.js';
import { bullConnection } from './redis.js';

// Against the real Redis of the test run, under a prefix of its own.
const config = {
  redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  redisPrefix: `${process.env.REDIS_PREFIX ?? 'test'}-backoff-${process.pid}`,
};

afterAll(async () => {
  const redis = new Redis(config.redisUrl, { maxRetriesPerRequest: 1 });
  const keys = await redis.keys(`{${config.redisPrefix}:*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();
});

test('announces the delay BullMQ then chooses, stores and waits, attempt after attempt', async () => {
  const name = 'backoff';
  const queue = new Queue(name, { connection: bullConnection(config, 'command'), prefix: bullPrefix(config, name) });
  // Each attempt as the processor sees it, with what retryDelayMs announces before it throws.
  const attempts: Array<{ attemptsMade: number; startedAt: number; announced: number; failedAt: number }> = [];
  const worker = new Worker(
    name,
    async (job: Job) => {
      attempts.push({ attemptsMade: job.attemptsMade, startedAt: job.processedOn!, announced: retryDelayMs(job), failedAt: Date.now() });
      if (attempts.length < 3) throw new Error('not yet');
    },
    { connection: bullConnection(config, 'blocking'), prefix: bullPrefix(config, name) },
  );
  // After a failed attempt, BullMQ has moved the job to delayed: the delay it chose (set on the job
  // it emits), and the one it wrote into the job's hash (read while the job waits).
  const chosen: number[] = [];
  const stored: Array<Promise<number>> = [];
  worker.on('failed', (job) => {
    chosen.push(job!.delay);
    stored.push(queue.getJob(job!.id!).then((j) => Number(j!.delay)));
  });
  try {
    const done = new Promise((resolve) => worker.on('completed', resolve));
    await queue.add('j', {}, { attempts: 3, backoff: { type: 'exponential', delay: 100 } });
    await done;

    // In the processor, attemptsMade does not count the attempt running yet.
    expect(attempts.map((a) => a.attemptsMade)).toEqual([0, 1, 2]);
    const announced = attempts.slice(0, 2).map((a) => a.announced);
    expect(announced).toEqual([100, 200]);
    expect(chosen).toEqual(announced);
    expect(await Promise.all(stored)).toEqual(announced);
    // And BullMQ did wait that long before starting the next attempt.
    for (const [i, a] of attempts.slice(0, 2).entries()) {
      expect(attempts[i + 1].startedAt - a.failedAt).toBeGreaterThanOrEqual(a.announced);
      expect(attempts[i + 1].startedAt - a.failedAt).toBeLessThan(a.announced + 1_000);
    }
  } finally {
    await worker.close();
    await queue.close();
  }
});

test('a job without backoff is retried at once; a number is a fixed delay', () => {
  const job = (backoff: number | undefined, attemptsMade: number) => ({ opts: { backoff }, attemptsMade }) as unknown as Job;
  expect(retryDelayMs(job(undefined, 2))).toBe(0);
  expect(retryDelayMs(job(250, 0))).toBe(250);
  expect(retryDelayMs(job(250, 4))).toBe(250);
});
