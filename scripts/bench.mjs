// `npm run bench`: builds the API, gives the run its own PostgreSQL database, Redis prefix and
// admin key, runs every benchmark scenario under bench/ (or those named: `npm run bench -- api-me`),
// prints a table per area, writes bench/report.md and bench/report.json, then drops what it made.
// Settings: BENCH_DURATION (s per measured run, default 10), BENCH_WARMUP (s, default 2),
// BENCH_CONNECTIONS (default 50), BENCH_ROUNDS (default 3), BENCH_PROFILE=1 (CPU profile of the
// API under bench/out/profiles). Exits 1 if a scenario fails (e.g. a non-2xx answer);
// BENCH_STRICT=1 also exits 1 when a figure is below its target.
import { build, ensureDependencies, generatePrismaClient, step } from './lib.mjs';

ensureDependencies();
const harness = await import('../bench/harness.mjs');
// Taken before the build, so that the load average says whether something else was running.
const machine = harness.machineInfo();
step('generating the Prisma client');
generatePrismaClient();
step('building dist/ (SWC)');
// What gets built is what gets measured: HEAD plus whatever differs in the work tree right now.
const source = harness.sourceInfo();
build();

const scenarios = [
  (await import('../bench/api-me.mjs')).default,
  (await import('../bench/ml-training.mjs')).default,
  (await import('../bench/jobs.mjs')).default,
  (await import('../bench/inference.mjs')).default,
  (await import('../bench/webhooks.mjs')).default,
  (await import('../bench/hot-routes.mjs')).default,
  (await import('../bench/foundation.mjs')).default,
  (await import('../bench/images.mjs')).default,
  (await import('../bench/batch.mjs')).default,
  (await import('../bench/cluster.mjs')).default,
];

const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !scenarios.some((s) => s.id === w));
if (unknown.length) {
  console.error(`unknown scenario(s): ${unknown.join(', ')}; known: ${scenarios.map((s) => s.id).join(', ')}`);
  process.exit(2);
}
const selected = wanted.length ? scenarios.filter((s) => wanted.includes(s.id)) : scenarios;
const settings = harness.benchSettings();
const startedAt = new Date().toISOString();
step(
  `bench: ${selected.map((s) => s.id).join(', ')}; ${settings.connections} connections, ${settings.duration} s runs, ` +
    `${settings.warmup} s warm-ups, ${settings.rounds} rounds; ${machine.cores} cores`,
);

const { env } = harness.prepareEnvironment();
// Another build or test run on the same cores disturbs every figure: say so before starting.
const quietBefore = harness.cpuSnapshot();
await new Promise((r) => setTimeout(r, 1000));
const quiet = harness.cpuUsage(quietBefore, harness.cpuSnapshot(), {});
if (quiet) {
  const c = quiet.cores_used;
  machine.other_cores_before_runs = round2(c.other + c.postgres + c.redis + quiet.unattributed_cores);
  if (machine.other_cores_before_runs > 0.2) {
    console.warn(
      `\x1b[33mwarning:\x1b[0m the machine is not idle (${quiet.top_other.join(', ') || `${machine.other_cores_before_runs} cores`}): figures will be disturbed`,
    );
  }
}
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, async () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    console.error(`\n${signal}: stopping and cleaning up`);
    await harness.stopAll();
    await harness.cleanUpEnvironment(env).catch((err) => console.error(`cleanup: ${err.message}`));
    process.exit(130);
  });
}

const areas = [];
let failure;
for (const scenario of selected) {
  try {
    areas.push(await scenario.run({ env, settings, areas }));
  } catch (err) {
    failure = err;
    console.error(`\n\x1b[31mbench ${scenario.id} failed:\x1b[0m ${err.message}`);
    break;
  }
}
await harness.stopAll();
step('dropping the bench database and Redis keys');
await harness.cleanUpEnvironment(env).catch((err) => console.error(`cleanup: ${err.message}`));

if (failure) process.exit(1);
for (const a of areas) harness.printArea(a);
harness.writeReport({ settings, machine, source, areas, startedAt, finishedAt: new Date().toISOString() });
step('wrote bench/report.md and bench/report.json');
const below = areas.flatMap((a) => (a.checks ?? []).filter((c) => !c.pass));
if (below.length && process.env.BENCH_STRICT === '1') process.exit(1);

function round2(x) {
  return Math.round(x * 100) / 100;
}
