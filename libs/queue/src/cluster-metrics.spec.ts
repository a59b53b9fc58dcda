import { jest } from '@jest/globals';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { ClusterMetrics, JOB_SECONDS_BUCKETS } from './cluster-metrics.js';

// Against the real Redis of the test run, under a prefix of its own.
const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `${process.env.REDIS_PREFIX ?? 'test'}-cluster-metrics-${process.pid}`;
let redis: Redis;
let metrics: ClusterMetrics;
let registry: Registry;

beforeAll(() => {
  redis = new Redis(url, { maxRetriesPerRequest: 1 });
  metrics = new ClusterMetrics({ redisPrefix: prefix }, redis);
  registry = new Registry();
  metrics.register(registry);
});
afterAll(async () => {
  const keys = await redis.keys(`{${prefix}:*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();
});

const HELP = {
  wait: [
    '# HELP aiaas_job_wait_seconds Seconds from a job being accepted to its start, by type (cluster-wide)',
    '# TYPE aiaas_job_wait_seconds histogram',
  ],
  run: [
    '# HELP aiaas_job_run_seconds Seconds from a job starting to its end, by type (cluster-wide)',
    '# TYPE aiaas_job_run_seconds histogram',
  ],
  ended: ['# HELP aiaas_jobs_ended_total Jobs that ended, by type and status (cluster-wide)', '# TYPE aiaas_jobs_ended_total counter'],
  webhooks: [
    '# HELP aiaas_webhook_attempts_total Webhook delivery attempts by outcome (cluster-wide)',
    '# TYPE aiaas_webhook_attempts_total counter',
  ],
};

test('with nothing counted: every family, no series, and the four webhook outcomes at 0', async () => {
  expect(await registry.metrics()).toBe(
    [
      ...HELP.wait,
      '',
      ...HELP.run,
      '',
      ...HELP.ended,
      '',
      ...HELP.webhooks,
      'aiaas_webhook_attempts_total{scope="cluster",outcome="succeeded"} 0',
      'aiaas_webhook_attempts_total{scope="cluster",outcome="retried"} 0',
      'aiaas_webhook_attempts_total{scope="cluster",outcome="failed"} 0',
      'aiaas_webhook_attempts_total{scope="cluster",outcome="gone"} 0',
      '',
    ].join('\n'),
  );
});

test('what workers counted, as cumulative histograms by type and counters, read from Redis once per scrape', async () => {
  // As two workers would: the figures add up in Redis.
  const other = new ClusterMetrics({ redisPrefix: prefix }, redis);
  await metrics.observeJob('training', 'succeeded', 0.07, 12);
  await other.observeJob('training', 'failed', 4000, 0.05);
  await metrics.observeJob('inference', 'succeeded', 0.2, 0.3);
  await other.observeJob('inference', 'succeeded', 0.01, 0);
  await metrics.webhookAttempt('succeeded');
  await other.webhookAttempt('succeeded');
  await other.webhookAttempt('gone');

  const reads = jest.spyOn(redis, 'hgetall');
  const text = await registry.metrics();
  expect(reads).toHaveBeenCalledTimes(2);
  reads.mockRestore();

  const [wait, run, ended, webhooks] = text
    .trimEnd()
    .split('\n\n')
    .map((family) => family.split('\n'));
  // One series per type (sorted): the buckets (cumulative, `le` last), then the sum and the count.
  const histogram = (name: string, type: string, cumulative: number[], sum: number) => [
    ...[...JOB_SECONDS_BUCKETS, '+Inf'].map((le, i) => `${name}_bucket{scope="cluster",type="${type}",le="${le}"} ${cumulative[i]}`),
    `${name}_sum{scope="cluster",type="${type}"} ${sum}`,
    `${name}_count{scope="cluster",type="${type}"} ${cumulative.at(-1)}`,
  ];
  expect(wait).toEqual([
    ...HELP.wait,
    ...histogram('aiaas_job_wait_seconds', 'inference', [1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2], 0.21),
    ...histogram('aiaas_job_wait_seconds', 'training', [0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2], 4000.07),
  ]);
  expect(run).toEqual([
    ...HELP.run,
    ...histogram('aiaas_job_run_seconds', 'inference', [1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2], 0.3),
    ...histogram('aiaas_job_run_seconds', 'training', [1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2], 12.05),
  ]);
  expect(ended).toEqual([
    ...HELP.ended,
    'aiaas_jobs_ended_total{scope="cluster",type="inference",status="succeeded"} 2',
    'aiaas_jobs_ended_total{scope="cluster",type="training",status="failed"} 1',
    'aiaas_jobs_ended_total{scope="cluster",type="training",status="succeeded"} 1',
  ]);
  expect(webhooks).toEqual([
    ...HELP.webhooks,
    'aiaas_webhook_attempts_total{scope="cluster",outcome="succeeded"} 2',
    'aiaas_webhook_attempts_total{scope="cluster",outcome="retried"} 0',
    'aiaas_webhook_attempts_total{scope="cluster",outcome="failed"} 0',
    'aiaas_webhook_attempts_total{scope="cluster",outcome="gone"} 1',
  ]);
});
