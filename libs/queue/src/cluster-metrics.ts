import type { AppConfig } from '@app/config';
import type { Redis } from 'ioredis';
import { redisKey } from './redis.js';

/**
 * Figures that happen in workers (which have no HTTP server) but belong on `GET /metrics`: job
 * wait and run times, webhook attempts by outcome. Workers add them up in Redis hashes (one
 * pipelined write per observation); every API instance renders the same cluster-wide totals in
 * Prometheus' text format, labelled `scope="cluster"` — aggregate them with max(), not sum().
 */
export const JOB_SECONDS_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

export type WebhookOutcome = 'succeeded' | 'retried' | 'failed' | 'gone';

export class ClusterMetrics {
  private readonly jobsKey: string;
  private readonly webhooksKey: string;

  constructor(
    config: Pick<AppConfig, 'redisPrefix'>,
    private readonly redis: Redis,
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

  /** The Prometheus text of the cluster-wide figures. */
  async render(): Promise<string> {
    const [jobs, webhooks] = await Promise.all([this.redis.hgetall(this.jobsKey), this.redis.hgetall(this.webhooksKey)]);
    const out: string[] = [];
    for (const [name, help] of [
      ['wait', 'Seconds from a job being accepted to its start, by type (cluster-wide)'],
      ['run', 'Seconds from a job starting to its end, by type (cluster-wide)'],
    ] as const) {
      const metric = `aiaas_job_${name}_seconds`;
      out.push(`# HELP ${metric} ${help}`, `# TYPE ${metric} histogram`);
      const types = new Set(
        Object.keys(jobs)
          .filter((k) => k.startsWith(`${name}|`))
          .map((k) => k.split('|')[1]),
      );
      for (const type of [...types].sort()) {
        let cumulative = 0;
        for (const le of [...JOB_SECONDS_BUCKETS, '+Inf']) {
          cumulative += Number(jobs[`${name}|${type}|${le}`] ?? 0);
          out.push(`${metric}_bucket{scope="cluster",type="${type}",le="${le}"} ${cumulative}`);
        }
        out.push(`${metric}_sum{scope="cluster",type="${type}"} ${Number(jobs[`${name}|${type}|sum`] ?? 0)}`);
        out.push(`${metric}_count{scope="cluster",type="${type}"} ${cumulative}`);
      }
    }
    out.push('# HELP aiaas_jobs_ended_total Jobs that ended, by type and status (cluster-wide)', '# TYPE aiaas_jobs_ended_total counter');
    for (const [field, n] of Object.entries(jobs)
      .filter(([k]) => k.startsWith('ended|'))
      .sort()) {
      const [, type, status] = field.split('|');
      out.push(`aiaas_jobs_ended_total{scope="cluster",type="${type}",status="${status}"} ${n}`);
    }
    out.push(
      '# HELP aiaas_webhook_attempts_total Webhook delivery attempts by outcome (cluster-wide)',
      '# TYPE aiaas_webhook_attempts_total counter',
    );
    for (const outcome of ['succeeded', 'retried', 'failed', 'gone'] as const) {
      out.push(`aiaas_webhook_attempts_total{scope="cluster",outcome="${outcome}"} ${Number(webhooks[outcome] ?? 0)}`);
    }
    return `${out.join('\n')}\n`;
  }
}
