// Scenario "hot-routes": the tenant routes a client calls most, side by side, under 50 connections.
// GET /v1/jobs/{id} is measured here (a queued job, whose answer carries its place in the fair
// scheduler, and a finished one); GET /v1/me and POST /v1/jobs come from the api-me and jobs
// scenarios of the same run (when they ran), so that one table shows all of them with the bare
// Fastify baseline of api-me beside them.
import { loadTest, median, requestJson, round, startApi, step } from './harness.mjs';

/** BENCH_HOT_SECONDS (5 s per measured run); rounds and connections as BENCH_ROUNDS, BENCH_CONNECTIONS. */
const seconds = () => Number(process.env.BENCH_HOT_SECONDS ?? 5);

export default {
  id: 'hot-routes',
  title: 'Hot tenant routes under load: requests/s and latency',

  async run({ env, settings, areas = [] }) {
    const { connections, rounds, warmup } = settings;
    let api;
    try {
      step('hot-routes: starting the API (no worker: jobs stay as they are)');
      api = await startApi(env);
      const admin = env.ADMIN_API_KEY;
      const tenant = await requestJson(`${api.url}/v1/admin/tenants`, {
        method: 'POST',
        token: admin,
        body: { name: 'bench-hot', plan: 'enterprise', quotas: { requests_per_minute: 100_000_000 } },
      });
      const key = (
        await requestJson(`${api.url}/v1/admin/tenants/${tenant.body.id}/api-keys`, {
          method: 'POST',
          token: admin,
          body: { name: 'bench' },
        })
      ).body.secret;
      const t = (method, path, body) => requestJson(`${api.url}${path}`, { method, token: key, body });
      const records = Array.from({ length: 40 }, (_, i) => ({ x1: i % 7, x2: (i * 3) % 5, label: i % 2 ? 'a' : 'b' }));
      const ds = (await t('POST', '/v1/datasets', { name: 'hot', task: 'classification', records })).body;
      await t('POST', '/v1/models', { name: 'hot', task: 'classification' });
      const job = { type: 'training', model: 'hot', dataset: ds.id };
      const queued = (await t('POST', '/v1/jobs', job)).body;
      const finished = (await t('POST', '/v1/jobs', job)).body;
      await t('POST', `/v1/jobs/${finished.id}/cancel`, {});

      const runs = [];
      for (const [label, id] of [
        ['queued', queued.id],
        ['finished', finished.id],
      ]) {
        const target = { url: `${api.url}/v1/jobs/${id}`, headers: { authorization: `Bearer ${key}` } };
        if (warmup) await loadTest({ ...target, duration: warmup, connections, label: `warm-up ${label}` });
        for (let i = 1; i <= rounds; i++) {
          const r = await loadTest({
            ...target,
            duration: seconds(),
            connections,
            label: `GET /v1/jobs/{id} (${label})`,
            serverPid: api.proc.pid,
          });
          if (r.non2xx || r.errors) throw new Error(`GET /v1/jobs/{id} (${label}): ${r.non2xx} non-2xx, ${r.errors} errors`);
          runs.push({ ...r, round: i, which: label });
          step(
            `hot-routes: GET /v1/jobs/{id} (${label}) round ${i}/${rounds}: ${r.rps} req/s, p50 ${r.latency_ms.p50} ms, p99 ${r.latency_ms.p99} ms`,
          );
        }
      }
      const of = (which) => {
        const mine = runs.filter((r) => r.which === which);
        return {
          rps: median(mine.map((r) => r.rps)),
          p50: median(mine.map((r) => r.latency_ms.p50)),
          p99: median(mine.map((r) => r.latency_ms.p99)),
        };
      };
      const me = areas.find((a) => a.area === 'api-me')?.figures;
      const submit = areas.find((a) => a.area === 'jobs')?.figures?.submission?.api;
      const fastify = me?.baseline;
      const row = (route, f, source) => ({
        route,
        rps: f ? f.rps : 'not run',
        p50: f?.p50 ?? '—',
        p99: f?.p99 ?? '—',
        vs_fastify: f && fastify ? round(f.rps / fastify.rps, 3) : '—',
        source,
      });
      return {
        area: 'hot-routes',
        title: this.title,
        description:
          `${connections} connections, medians of ${rounds} runs. GET /v1/jobs/{id} measured here (${seconds()} s runs, no worker: a queued job answers with its scheduler position and what it waits for; ` +
          'a canceled one is plain). GET /v1/me and POST /v1/jobs are the api-me and jobs figures of this run; "vs bare Fastify" divides by api-me\'s bare-Fastify baseline.',
        columns: [
          { key: 'route', label: 'route', align: 'left' },
          { key: 'rps', label: 'requests/s' },
          { key: 'p50', label: 'p50 ms' },
          { key: 'p99', label: 'p99 ms' },
          { key: 'vs_fastify', label: 'vs bare Fastify' },
          { key: 'source', label: 'measured in', align: 'left' },
        ],
        rows: [
          row('bare Fastify, same body as GET /v1/me (baseline)', fastify, 'api-me'),
          row('GET /v1/me', me?.api, 'api-me'),
          row('GET /v1/jobs/{id} (queued)', of('queued'), 'hot-routes'),
          row('GET /v1/jobs/{id} (finished)', of('finished'), 'hot-routes'),
          row('POST /v1/jobs', submit, 'jobs'),
        ],
        checks: [],
        figures: { get_job_queued: of('queued'), get_job_finished: of('finished'), me: me?.api ?? null, submit: submit ?? null },
        runs,
        notes: [],
      };
    } finally {
      await api?.stop().catch(() => undefined);
    }
  },
};
