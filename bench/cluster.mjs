// Scenario "cluster": the API and sync predict on a Redis Cluster beside single-node Redis, same run.
// Two full stacks run side by side (an API and a worker each): one on the machine's Redis, one on a
// 3-master, 3-replica Redis Cluster started here on loopback (bench/redis-cluster.mjs). Each round
// loads one stack at a time, alternating, with autocannon:
//  - GET /v1/me at BENCH_CONNECTIONS (auth from the key cache, the rate limiter's script on the tenant's slot);
//  - POST /v1/jobs at BENCH_CONNECTIONS (admission to PostgreSQL, the fair scheduler's script, a wake-up
//    publish), a tenant of its own per round, its worker stopped meanwhile so the jobs stay queued; the
//    tenant is deleted after its round;
//  - sync predict (one row, Prefer: wait) at 64 clients (the predict request list, a worker, the reply channel).
// Figures: requests/s on the cluster ÷ on the single node (target ≥ 0.8 each, "cluster ≥ 0.8 of
// single-node on one machine"), and pub/sub throughput: plain PUBLISH vs sharded SPUBLISH. All six cluster nodes share the machine's two cores with everything else.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { benchTenant, envNumber, loadTest, median, RATIO_COLUMNS, readStat, requestJson, root, round, startApi, step } from './harness.mjs';
import { startWorker } from './inference.mjs';
import { startRedisCluster } from './redis-cluster.mjs';

const PUBSUB_MESSAGES = 20_000;
const PUBSUB_CHANNELS = 64;

/**
 * Messages/s from one publisher to one subscriber over PUBSUB_CHANNELS channels (as job events of
 * many jobs go to the API instances), and the CPU every redis-server spent per message. `mode`:
 * plain PUBLISH on one Redis, plain PUBLISH on the cluster, sharded SPUBLISH on the cluster.
 */
async function pubsubRun(mode, { redisUrl, nodes, pids }) {
  const { Cluster, Redis } = await import('ioredis');
  const make = (opts = {}) => (mode === 'single' ? new Redis(redisUrl) : new Cluster(nodes, opts));
  const sharded = mode === 'cluster-sharded';
  const pub = make();
  const sub = make(sharded ? { shardedSubscribers: true } : {});
  const channels = Array.from({ length: PUBSUB_CHANNELS }, (_, i) => `{bench-pubsub:${i}}:events`);
  try {
    let got = 0;
    let done;
    const all = new Promise((r) => (done = r));
    const onMessage = () => {
      if (++got === PUBSUB_MESSAGES) done();
    };
    sub.on(sharded ? 'smessage' : 'message', onMessage);
    if (sharded) for (const c of channels) await sub.ssubscribe(c);
    else await sub.subscribe(...channels);
    const ticks = () => pids.reduce((sum, pid) => sum + (readStat(pid)?.ticks ?? 0), 0);
    const t0 = performance.now();
    const before = ticks();
    for (let i = 0; i < PUBSUB_MESSAGES; i += 100) {
      const batch = [];
      for (let j = i; j < Math.min(i + 100, PUBSUB_MESSAGES); j++) {
        const c = channels[j % PUBSUB_CHANNELS];
        batch.push(sharded ? pub.spublish(c, 'x'.repeat(200)) : pub.publish(c, 'x'.repeat(200)));
      }
      await Promise.all(batch);
    }
    await all;
    const seconds = (performance.now() - t0) / 1000;
    return {
      mode,
      rate: Math.round(PUBSUB_MESSAGES / seconds),
      redis_us_per_message: round(((ticks() - before) * 10_000) / PUBSUB_MESSAGES, 1),
    };
  } finally {
    pub.disconnect();
    sub.disconnect();
  }
}

export const TARGETS = { cluster_vs_single: 0.8 };
const PREDICT_CLIENTS = 64;
const MODES = ['single', 'cluster'];

export default {
  id: 'cluster',
  title: 'Redis Cluster: the API and sync predict on a 3-master cluster vs single-node Redis',

  async run({ env, settings }) {
    const seconds = envNumber(process.env, 'BENCH_CLUSTER_SECONDS', 5, 1);
    const { connections, rounds } = settings;
    const { blobRows } = await import(pathToFileURL(join(root, 'dist', 'libs', 'ml', 'src', 'synthetic.js')).href);
    const rows = blobRows(300, { features: 4, classes: 3, seed: 5 });
    const row = Object.fromEntries(Object.entries(rows[0]).filter(([k]) => k !== 'label'));
    step('cluster: starting a 3-master, 3-replica Redis Cluster on loopback');
    const cluster = await startRedisCluster();
    const stacks = {};
    try {
      for (const mode of MODES) {
        const modeEnv = mode === 'cluster' ? { ...env, ...cluster.env, REDIS_PREFIX: `${env.REDIS_PREFIX}-cluster` } : env;
        const api = await startApi(modeEnv);
        const worker = await startWorker(modeEnv);
        stacks[mode] = { api, worker };
        const t = await benchTenant(api, env, `bench-cluster-${mode}`, { max_concurrent_jobs: 1_000, max_queued_jobs: 100_000_000 });
        const ds = t.must(await t.t('POST', '/v1/datasets', { name: 'c', task: 'classification', records: rows }), 201, 'dataset');
        const model = t.must(await t.t('POST', '/v1/models', { name: 'c', task: 'classification' }), 201, 'model');
        t.must(
          await t.t(
            'POST',
            '/v1/jobs',
            { type: 'training', model: 'c', dataset: ds.id, hyperparameters: { epochs: 5, seed: 1 } },
            { Prefer: 'wait=60' },
          ),
          200,
          `training (${mode})`,
        );
        Object.assign(stacks[mode], { tenant: t, model: model.id });
        step(`cluster: ${mode} stack up (API ${api.url}, worker ${worker.ready.id}), model trained`);
      }

      const targets = (mode) => {
        const s = stacks[mode];
        const auth = { authorization: `Bearer ${s.tenant.secret}` };
        return {
          me: { url: `${s.api.url}/v1/me`, headers: auth },
          predict: {
            url: `${s.api.url}/v1/models/${s.model}/predict`,
            method: 'POST',
            headers: { ...auth, 'content-type': 'application/json', prefer: 'wait=30' },
            body: JSON.stringify({ inputs: [row] }),
          },
        };
      };
      const runs = [];
      const measure = async (mode, figure, target, clients) => {
        const r = await loadTest({
          ...target,
          duration: seconds,
          connections: clients,
          label: `${figure} (${mode})`,
          serverPid: stacks[mode].api.proc.pid,
        });
        if (r.non2xx || r.errors)
          throw new Error(`${figure} on ${mode}: ${r.non2xx} non-2xx, ${r.errors} errors: ${JSON.stringify(r.status_codes)}`);
        return r;
      };
      for (const mode of MODES) {
        await loadTest({ ...targets(mode).me, duration: 1, connections, label: 'warm-up' });
        await loadTest({ ...targets(mode).predict, duration: 2, connections: PREDICT_CLIENTS, label: 'warm-up' });
      }
      for (let i = 1; i <= rounds; i++) {
        for (const mode of MODES) {
          for (const [figure, clients] of [
            ['me', connections],
            ['predict', PREDICT_CLIENTS],
          ]) {
            const r = await measure(mode, figure, targets(mode)[figure], clients);
            runs.push({ ...r, round: i, mode, figure });
            step(
              `cluster: round ${i}/${rounds} ${figure} on ${mode}: ${r.rps.toLocaleString('en-US')} req/s, p50 ${r.latency_ms.p50} ms, p99 ${r.latency_ms.p99} ms`,
            );
          }
        }
      }
      // Pub/sub: plain PUBLISH on the single node and on the cluster, sharded SPUBLISH on the cluster.
      const pubsub = [];
      const singlePid = Number((await import('node:child_process')).execSync('pgrep -x redis-server -o || true').toString().trim()) || null;
      for (let i = 1; i <= rounds; i++) {
        for (const mode of ['single', 'cluster-plain', 'cluster-sharded']) {
          const r = await pubsubRun(mode, {
            redisUrl: env.REDIS_URL,
            nodes: cluster.ports.map((port) => ({ host: '127.0.0.1', port })),
            pids: mode === 'single' ? (singlePid ? [singlePid] : []) : cluster.pids,
          });
          pubsub.push({ ...r, round: i });
          step(
            `cluster: round ${i}/${rounds} pub/sub ${mode}: ${r.rate.toLocaleString('en-US')} messages/s, Redis ${r.redis_us_per_message} µs/message`,
          );
        }
      }
      const ps = (mode) => {
        const mine = pubsub.filter((r) => r.mode === mode);
        return { rate: median(mine.map((r) => r.rate)), redis_us: median(mine.map((r) => r.redis_us_per_message)) };
      };

      // Submissions last: the workers stop so the jobs stay queued (and cost the same on both stacks).
      for (const mode of MODES) await stacks[mode].worker.stop();
      for (let i = 1; i <= rounds; i++) {
        for (const mode of MODES) {
          const s = stacks[mode];
          const t = await benchTenant(s.api, env, `bench-cluster-submit-${mode}-${i}`, { max_queued_jobs: 100_000_000 });
          const ds = t.must(
            await t.t('POST', '/v1/datasets', { name: 's', task: 'classification', records: rows.slice(0, 60) }),
            201,
            'dataset',
          );
          t.must(await t.t('POST', '/v1/models', { name: 's', task: 'classification' }), 201, 'model');
          const target = {
            url: `${s.api.url}/v1/jobs`,
            method: 'POST',
            headers: { authorization: `Bearer ${t.secret}`, 'content-type': 'application/json' },
            body: JSON.stringify({ type: 'training', model: 's', dataset: ds.id }),
          };
          const r = await measure(mode, 'submit', target, connections);
          runs.push({ ...r, round: i, mode, figure: 'submit' });
          step(`cluster: round ${i}/${rounds} submit on ${mode}: ${r.rps.toLocaleString('en-US')} jobs/s, p99 ${r.latency_ms.p99} ms`);
          await requestJson(`${s.api.url}/v1/admin/tenants/${t.id}`, { method: 'DELETE', token: env.ADMIN_API_KEY });
        }
      }

      const pick = (mode, figure) => {
        const mine = runs.filter((r) => r.mode === mode && r.figure === figure);
        return {
          rps: median(mine.map((r) => r.rps)),
          p50: median(mine.map((r) => r.latency_ms.p50)),
          p99: median(mine.map((r) => r.latency_ms.p99)),
        };
      };
      const perRound = (figure) =>
        Array.from({ length: rounds }, (_, i) => {
          const of = (mode) => runs.find((r) => r.round === i + 1 && r.mode === mode && r.figure === figure).rps;
          return round(of('cluster') / of('single'), 3);
        });
      const FIGURES = [
        ['me', `GET /v1/me at ${connections} connections`, 'req/s'],
        ['submit', `POST /v1/jobs at ${connections} connections (jobs stay queued)`, 'jobs/s'],
        ['predict', `sync predict at ${PREDICT_CLIENTS} clients`, 'req/s'],
      ];
      const fmt = (f, unit) => `${f.rps.toLocaleString('en-US')} ${unit} (p50 ${f.p50} ms, p99 ${f.p99} ms)`;
      const table = FIGURES.map(([key, label, unit]) => {
        const c = pick('cluster', key);
        const s = pick('single', key);
        const ratio = round(median(perRound(key)), 3);
        return {
          key,
          row: {
            figure: `${label}: Redis Cluster vs single-node Redis`,
            measured: fmt(c, unit),
            baseline: fmt(s, unit),
            ratio,
            target: `≥ ${TARGETS.cluster_vs_single}`,
            result: ratio >= TARGETS.cluster_vs_single ? 'PASS' : 'BELOW',
          },
          check: {
            name: `${label}, cluster ÷ single node`,
            value: ratio,
            target: `≥ ${TARGETS.cluster_vs_single}`,
            pass: ratio >= TARGETS.cluster_vs_single,
            text: `${ratio} (per round: ${perRound(key).join(', ')}; ${c.rps} vs ${s.rps} ${unit})`,
          },
          figures: { cluster: c, single: s, ratio, per_round: perRound(key) },
        };
      });
      return {
        area: 'cluster',
        title: this.title,
        description:
          `Two stacks side by side (API + worker each, TF_BACKEND=wasm, WORKER_CONCURRENCY=2): one on the machine's Redis, one on a 3-master, 3-replica Redis Cluster on loopback (cluster-node-timeout 2000, no persistence, like the single node). ` +
          `Each round loads one stack at a time, alternating; ${seconds} s runs, ${rounds} rounds, medians; the ratio is the median of the rounds' cluster ÷ single ratios. ` +
          'POST /v1/jobs runs with the workers stopped (jobs stay queued), a fresh tenant per round, deleted after it. ' +
          `Pub/sub: ${PUBSUB_MESSAGES.toLocaleString('en-US')} messages of 200 bytes from one publisher over ${PUBSUB_CHANNELS} channels to one subscriber (pipelined 100 at a time), until all arrived; Redis CPU from /proc of every node.`,
        columns: RATIO_COLUMNS,
        rows: [
          ...table.map((t) => t.row),
          ...['cluster-plain', 'cluster-sharded'].map((mode) => ({
            figure: `pub/sub over ${PUBSUB_CHANNELS} channels, one subscriber: ${mode === 'cluster-plain' ? 'PUBLISH' : 'SPUBLISH (sharded)'} on the cluster vs PUBLISH on one Redis`,
            measured: `${ps(mode).rate.toLocaleString('en-US')} messages/s (Redis ${ps(mode).redis_us} µs/message, all nodes)`,
            baseline: `${ps('single').rate.toLocaleString('en-US')} messages/s (Redis ${ps('single').redis_us} µs/message)`,
            ratio: round(ps(mode).rate / ps('single').rate, 2),
            target: '—',
            result: '—',
          })),
        ],
        checks: table.map((t) => t.check),
        figures: {
          ...Object.fromEntries(table.map((t) => [t.key, t.figures])),
          pubsub: { single: ps('single'), plain: ps('cluster-plain'), sharded: ps('cluster-sharded') },
        },
        runs,
        notes: [
          `Cluster nodes on ports ${cluster.ports.join(', ')}.`,
          `Pub/sub rounds (messages/s, Redis µs/message): ${pubsub.map((r) => `${r.mode} ${r.rate} (${r.redis_us_per_message})`).join('; ')}.`,
        ],
      };
    } finally {
      for (const s of Object.values(stacks)) {
        await s.worker?.stop().catch(() => undefined);
        await s.api?.stop().catch(() => undefined);
      }
      await cluster.stop();
    }
  },
};
