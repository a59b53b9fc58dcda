// Scenario "api-me": GET /v1/me through the whole API (passport bearer auth with the in-memory key
// cache, the Redis rate limiter + request meter, one PostgreSQL usage query, Nest + Fastify
// serialization) against a bare Fastify server answering the same JSON body, measured in the same
// run, alternating, so that the ratio is about the API's own cost and not about this machine.
import { join } from 'node:path';
import { loadTest, median, requestJson, round, root, startApi, startProcess, step } from './harness.mjs';

export const TARGET_RATIO = 0.35;
/** Other processes using more than this many cores during a run make its figures suspect. */
const CONTENDED_CORES = 0.2;

/** Cores used during a run by processes that are not part of the measurement, live or exited. */
function disturbance(r) {
  return r.cpu ? round(r.cpu.cores_used.other + r.cpu.unattributed_cores, 2) : 0;
}

export default {
  id: 'api-me',
  title: 'API: GET /v1/me vs bare Fastify',

  /** @param {{ env: Record<string,string>, settings: ReturnType<typeof import('./harness.mjs').benchSettings> }} ctx */
  async run({ env, settings }) {
    const { duration, warmup, connections, rounds } = settings;
    const profileDir = settings.profile ? join(root, 'bench', 'out', 'profiles') : undefined;
    let api;
    let baseline;
    try {
      step('api-me: starting the API');
      api = await startApi(env, { profileDir });
      const admin = env.ADMIN_API_KEY;
      const tenant = await requestJson(`${api.url}/v1/admin/tenants`, {
        method: 'POST',
        token: admin,
        body: { name: 'bench', plan: 'enterprise', quotas: { requests_per_minute: 100_000_000 } },
      });
      const key = await requestJson(`${api.url}/v1/admin/tenants/${tenant.body.id}/api-keys`, {
        method: 'POST',
        token: admin,
        body: { name: 'bench' },
      });
      const secret = key.body.secret;
      const me = await requestJson(`${api.url}/v1/me`, { token: secret });
      step(`api-me: tenant ${tenant.body.id}, /v1/me answers ${me.text.length} bytes; starting the baseline`);
      baseline = await startProcess('bench/baseline-server.mjs', 'baseline.listening', {
        env: { ...process.env, NODE_OPTIONS: '', BASELINE_BODY: me.text, BASELINE_PATH: '/v1/me' },
      });
      const check = await requestJson(`${baseline.ready.url}/v1/me`);
      if (JSON.stringify(check.body) !== JSON.stringify(me.body)) throw new Error('the baseline does not answer the same body as the API');

      const targets = {
        baseline: { url: `${baseline.ready.url}/v1/me`, headers: {}, serverPid: baseline.proc.pid },
        api: { url: `${api.url}/v1/me`, headers: { authorization: `Bearer ${secret}` }, serverPid: api.proc.pid },
      };
      const runOnce = async (name, seconds, phase) => {
        const r = await loadTest({ ...targets[name], duration: seconds, connections, label: name });
        if (r.non2xx > 0 || r.errors > 0) {
          throw new Error(
            `${name} (${phase}): ${r.non2xx} non-2xx answer(s) and ${r.errors} error(s) out of ${r.requests}; status codes ${JSON.stringify(r.status_codes)}` +
              (name === 'api' ? ' — the rate limiter or something else refused requests' : ''),
          );
        }
        return r;
      };

      const warmups = [];
      if (warmup > 0) {
        step(`api-me: warming up both (${warmup} s each)`);
        warmups.push(await runOnce('baseline', warmup, 'warm-up'), await runOnce('api', warmup, 'warm-up'));
      }
      const runs = [];
      for (let i = 1; i <= rounds; i++) {
        for (const name of ['baseline', 'api']) {
          if (warmup > 0) warmups.push(await runOnce(name, warmup, 'warm-up'));
          const r = await runOnce(name, duration, 'measured');
          r.round = i;
          runs.push(r);
          const other = disturbance(r);
          step(
            `api-me: round ${i}/${rounds} ${name.padEnd(8)} ${r.rps} req/s, p99 ${r.latency_ms.p99} ms` +
              (r.cpu ? `, server ${r.cpu.cores_used.server} cores, other processes ${other} cores` : ''),
          );
          if (other > CONTENDED_CORES)
            console.warn(
              `  \x1b[33mwarning:\x1b[0m other processes used ${other} cores during this run (${r.cpu.top_other.join(', ') || 'short-lived processes'}): figures are disturbed`,
            );
        }
      }

      const summary = (name) => {
        const mine = runs.filter((r) => r.label === name);
        const cpu = mine.filter((r) => r.cpu);
        return {
          rps: median(mine.map((r) => r.rps)),
          cpu_us: cpu.length ? round(median(cpu.map((r) => (r.cpu.cores_used.server * 1e6) / r.rps)), 0) : undefined,
          other_cores: cpu.length ? median(cpu.map(disturbance)) : undefined,
          p50: median(mine.map((r) => r.latency_ms.p50)),
          p99: median(mine.map((r) => r.latency_ms.p99)),
          requests: mine.reduce((s, r) => s + r.requests, 0),
          non2xx: mine.reduce((s, r) => s + r.non2xx, 0),
        };
      };
      const b = summary('baseline');
      const a = summary('api');
      const perRound = [];
      for (let i = 1; i <= rounds; i++) {
        const rb = runs.find((r) => r.round === i && r.label === 'baseline');
        const ra = runs.find((r) => r.round === i && r.label === 'api');
        perRound.push(round(ra.rps / rb.rps, 3));
      }
      // The median of the rounds' ratios, as the other scenarios report: each round pairs an API run
      // with the baseline run just before it, so drift of the machine between rounds cancels out.
      const ratio = round(median(perRound), 3);
      const contended = runs.filter((r) => disturbance(r) > CONTENDED_CORES);
      return {
        area: 'api-me',
        title: this.title,
        description:
          'GET /v1/me with `Authorization: Bearer <key>` on the real API process (enterprise tenant, requests_per_minute 100,000,000 so the ' +
          'rate limiter runs on every request but never refuses) against a bare Fastify process returning the same JSON body. ' +
          `Medians of ${rounds} alternating runs (baseline, API, baseline, API, …).`,
        columns: [
          { key: 'name', label: 'target', align: 'left' },
          { key: 'rps', label: 'requests/s' },
          { key: 'p50', label: 'p50 ms' },
          { key: 'p99', label: 'p99 ms' },
          { key: 'cpu_us', label: 'server CPU µs/request' },
          { key: 'requests', label: 'requests (all runs)' },
          { key: 'non2xx', label: 'non-2xx' },
        ],
        rows: [
          { name: 'bare Fastify (baseline)', ...b },
          { name: 'API GET /v1/me', ...a },
        ],
        checks: [
          {
            name: 'API rps / baseline rps',
            value: ratio,
            target: `≥ ${TARGET_RATIO} on 2 cores`,
            pass: ratio >= TARGET_RATIO,
            text: `${ratio} (per round: ${perRound.join(', ')})`,
          },
        ],
        figures: {
          baseline: b,
          api: a,
          ratio,
          ratio_per_round: perRound,
          target_ratio: TARGET_RATIO,
          pass: ratio >= TARGET_RATIO,
          response_bytes: me.text.length,
        },
        runs,
        warmups,
        notes: [
          ...(contended.length
            ? [
                `**${contended.length} of ${runs.length} measured runs were disturbed** by other processes (> ${CONTENDED_CORES} cores): rounds ${contended.map((r) => `${r.round} ${r.label}`).join(', ')}.`,
              ]
            : [`No measured run was disturbed by other processes (each below ${CONTENDED_CORES} cores).`]),
          `Body of /v1/me (${me.text.length} bytes) captured from the API at the start of the run and served as-is by the baseline.`,
        ],
      };
    } finally {
      await baseline?.stop();
      await api?.stop();
      if (profileDir) step(`api-me: CPU profile of the API written under ${profileDir}`);
    }
  },
};
