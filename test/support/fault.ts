import { readFileSync } from 'node:fs';
import { blobRows } from '../../libs/ml/src/synthetic.js';
import { createTenant, type TenantFixture, until } from './factories.js';
import { type RunningProcess, startWorker } from './processes.js';

/**
 * Shared by the fault suite (test/fault, docs/reliability.md). `npm test` runs a shorter variant of
 * each fault that still kills, restarts and checks; `npm run test:fault` (FAULT_FULL=1) runs the
 * counts issue 8 asks for.
 */
export const FULL = process.env.FAULT_FULL === '1';

/** The short count under `npm test`, the full one under `npm run test:fault`. */
export const count = (short: number, full: number): number => (FULL ? full : short);

/**
 * Locks, stalls and reconciliation within seconds (as in test/e2e/worker.test.ts), wasm children,
 * so that a killed worker's job moves on before the test's patience runs out.
 */
export const FAST_WORKER = {
  TF_BACKEND: 'wasm',
  WORKER_LOCK_DURATION_MS: '2000',
  WORKER_STALLED_INTERVAL_MS: '1000',
  WORKER_HEARTBEAT_MS: '500',
  WORKER_RECONCILE_INTERVAL_MS: '1000',
  WORKER_RECONCILE_AGE_MS: '3000',
  LOG_LEVEL: 'error',
};

export { until };

/** A process's resident memory, from /proc (Linux). */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

/** One line per fault with its figures, picked up by docs/reliability.md. */
export function report(fault: string, figures: Record<string, unknown>): void {
  process.stdout.write(
    `fault ${fault}${FULL ? ' (full)' : ''}: ${Object.entries(figures)
      .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : v}`)
      .join(' ')}\n`,
  );
}

/** Worker processes a test starts, keeps and kills; all of them SIGKILLed at the end. */
export class Fleet {
  readonly live: Array<RunningProcess & { ready: { id: string } }> = [];
  private readonly all: RunningProcess[] = [];

  constructor(private readonly env: Record<string, string>) {}

  async start(extra: Record<string, string> = {}): Promise<RunningProcess & { ready: { id: string } }> {
    const w = await startWorker({ ...FAST_WORKER, ...this.env, ...extra });
    this.live.push(w);
    this.all.push(w);
    return w;
  }

  /** kill -9: no shutdown hook runs, locks and leases are left to expire. */
  async kill(id: string): Promise<void> {
    const i = this.live.findIndex((w) => w.ready.id === id);
    if (i < 0) throw new Error(`no live worker ${id}`);
    const [w] = this.live.splice(i, 1);
    await w.stop('SIGKILL');
  }

  ids(): Set<string> {
    return new Set(this.live.map((w) => w.ready.id));
  }

  /** No worker exited on its own (a crash would be a finding, not a fault the test injected). */
  crashed(): string[] {
    return this.live.filter((w) => w.proc.exitCode !== null || w.proc.signalCode !== null).map((w) => w.ready.id);
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.all.splice(0).map((w) => w.stop('SIGKILL')));
    this.live.splice(0);
  }
}

/** A tenant (quotas out of the way unless given) with a classification dataset of `rows` rows and a model `m`. */
export async function trainingTenant(
  url: string,
  rows: number,
  quotas: Record<string, number> = {},
): Promise<TenantFixture & { dataset: string; model: string }> {
  const t = await createTenant(url, {
    quotas: { requests_per_minute: 100_000, max_queued_jobs: 10_000, max_concurrent_jobs: 32, ...quotas },
  });
  const ds = await t.api.post('/v1/datasets', {
    name: 'fault',
    task: 'classification',
    records: blobRows(rows, { features: 4, classes: 3, seed: 7 }),
  });
  if (ds.status !== 201) throw new Error(`dataset: ${ds.status} ${ds.text}`);
  const m = await t.api.post('/v1/models', { name: 'm', task: 'classification' });
  if (m.status !== 201) throw new Error(`model: ${m.status} ${m.text}`);
  return { ...t, dataset: ds.body.id, model: m.body.id };
}

export const seconds = (since: number): number => Math.round((Date.now() - since) / 100) / 10;

/** Each finding that quotes an error id (a 5xx), followed by what the process logged with that id. */
export function explain(findings: string[], output: string[]): string[] {
  return findings.map((f) => {
    const id = /(req_[A-Za-z0-9]+)/.exec(f)?.[1];
    const logged = id ? output.filter((l) => l.includes(id)).map((l) => l.slice(0, 1_500)) : [];
    return [f, ...logged].join('\n    ');
  });
}
