import type { AppConfig } from '@app/config';
import { Counter, type Histogram, type Registry } from 'prom-client';
import { redisKey, type RedisClient } from './redis.js';

/**
 * Figures that happen in workers (which have no HTTP server) but belong on `GET /metrics`: job
 * wait and run times, webhook attempts by outcome. Workers add them up in Redis hashes (one
 * pipelined write per observation); every API instance serves the same cluster-wide totals through
 * prom-client, labelled `scope="cluster"` — aggregate them with max(), not sum().
 */
export const JOB_SECONDS_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

export type WebhookOutcome = 'succeeded' | 'retried' | 'failed' | 'gone';

export class ClusterMetrics {
  private readonly jobsKey: string;
  private readonly webhooksKey: string;
  private reading: Promise<{ jobs: Record<string, string>; webhooks: Record<string, string> }> | null = null;

  constructor(
    config: Pick<AppConfig, 'redisPrefix'>,
    private readonly redis: RedisClient,
  ) {
    this.jobsKey = redisKey(config, 'metrics', 'jobs');
    this.webhooksKey = redisKey(config, 'metrics', 'webhooks');
  }

  /** A job ended: how long it waited (created → started) and ran (started → finished). */
  async observeJob(type: string, status: string, waitSeconds: number, runSeconds: number): Promise<void> {
    const p = this.redis.pipeline();
    for (const [name, value] of [
      ['wait', waitSeconds],
      ['run', runSeconds],
    ] as const) {
      const bucket = JOB_SECONDS_BUCKETS.find((b) => value <= b) ?? '+Inf';
      p.hincrby(this.jobsKey, `${name}|${type}|${bucket}`, 1);
      p.hincrbyfloat(this.jobsKey, `${name}|${type}|sum`, Math.max(0, value));
    }
    p.hincrby(this.jobsKey, `ended|${type}|${status}`, 1);
    await p.exec();
  }

  async webhookAttempt(outcome: WebhookOutcome): Promise<void> {
    await this.redis.hincrby(this.webhooksKey, outcome, 1);
  }

  /**
   * Registers the cluster-wide figures in a prom-client registry (the API's, for GET /metrics):
   * every scrape reads them from Redis, so each API instance serves the same totals.
   */
  register(registry: Registry): void {
    const read = () => this.read();
    for (const [name, help] of [
      ['wait', 'Seconds from a job being accepted to its start, by type (cluster-wide)'],
      ['run', 'Seconds from a job starting to its end, by type (cluster-wide)'],
    ] as const) {
      const histogram = new CountedHistogram(`aiaas_job_${name}_seconds`, help, JOB_SECONDS_BUCKETS, async () => {
        const { jobs } = await read();
        const types = new Set(
          Object.keys(jobs)
            .filter((k) => k.startsWith(`${name}|`))
            .map((k) => k.split('|')[1]),
        );
        return [...types].sort().map((type) => ({
          labels: { scope: 'cluster', type },
          counts: [...JOB_SECONDS_BUCKETS, '+Inf'].map((le) => Number(jobs[`${name}|${type}|${le}`] ?? 0)),
          sum: Number(jobs[`${name}|${type}|sum`] ?? 0),
        }));
      });
      // Not one of prom-client's classes, but what its registry reads of one (see CountedHistogram).
      registry.registerMetric(histogram as unknown as Histogram);
    }
    new Counter({
      name: 'aiaas_jobs_ended_total',
      help: 'Jobs that ended, by type and status (cluster-wide)',
      labelNames: ['scope', 'type', 'status'] as const,
      registers: [registry],
      async collect() {
        const { jobs } = await read();
        this.reset();
        for (const [field, n] of Object.entries(jobs)
          .filter(([k]) => k.startsWith('ended|'))
          .sort()) {
          const [, type, status] = field.split('|');
          this.inc({ scope: 'cluster', type, status }, Number(n));
        }
      },
    });
    new Counter({
      name: 'aiaas_webhook_attempts_total',
      help: 'Webhook delivery attempts by outcome (cluster-wide)',
      labelNames: ['scope', 'outcome'] as const,
      registers: [registry],
      async collect() {
        const { webhooks } = await read();
        this.reset();
        for (const outcome of ['succeeded', 'retried', 'failed', 'gone'] as const) {
          this.inc({ scope: 'cluster', outcome }, Number(webhooks[outcome] ?? 0));
        }
      },
    });
  }

  /** The two hashes, read once for all the figures of a scrape (they all ask in the same tick). */
  private read(): Promise<{ jobs: Record<string, string>; webhooks: Record<string, string> }> {
    this.reading ??= Promise.all([this.redis.hgetall(this.jobsKey), this.redis.hgetall(this.webhooksKey)])
      .then(([jobs, webhooks]) => ({ jobs, webhooks }))
      .finally(() => {
        this.reading = null;
      });
    return this.reading;
  }
}

interface CountedSeries {
  labels: Record<string, string>;
  /** Observations per bucket (not cumulative), the last one above every bound (`+Inf`). */
  counts: number[];
  sum: number;
}

/**
 * A histogram whose observations were counted elsewhere (by every worker, in Redis). prom-client's
 * Histogram counts only its own observe() calls, so this gives the registry the buckets as they
 * are, in the shape of a metric's get() (the way prom-client's AggregatorRegistry registers the
 * metrics it merged); the registry writes the text. `le` stays the last label, as before.
 */
class CountedHistogram {
  readonly type = 'histogram';

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly bounds: readonly number[],
    private readonly series: () => Promise<CountedSeries[]>,
  ) {}

  async get() {
    const values: Array<{ metricName: string; labels: Record<string, string | number>; value: number }> = [];
    for (const { labels, counts, sum } of await this.series()) {
      let cumulative = 0;
      for (const [i, le] of [...this.bounds, '+Inf'].entries()) {
        cumulative += counts[i] ?? 0;
        values.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le }, value: cumulative });
      }
      values.push({ metricName: `${this.name}_sum`, labels, value: sum }, { metricName: `${this.name}_count`, labels, value: cumulative });
    }
    return { name: this.name, help: this.help, type: this.type, values };
  }

  /** Nothing of its own to reset (registry.resetMetrics() calls it). */
  reset(): void {}
}
