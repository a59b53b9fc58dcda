// Helper of the "jobs" bench scenario (bench/jobs.mjs): reads TF.js's tensor count from a worker's
// compute child, which does not report it. The scenario opens the child's inspector beforehand
// (SIGUSR1: Node's inspector on 127.0.0.1:9229, as `node --inspect` would), before the jobs it
// compares, so that both measurements pay for it alike. This helper connects over the DevTools
// protocol and evaluates `globalThis._tfengine.memory()` (TF.js keeps its engine there), the
// wasm backend's heap size and `process.memoryUsage()` in the child.
//
//   JOBS_INSPECT_PID=<pid> [JOBS_INSPECT_PORT=9229] node --experimental-websocket bench/jobs-inspect.mjs
//
// Prints ONE JSON line: {"event":"jobs.inspect", ok, pid, numTensors, numDataBuffers, numBytes, wasmHeapBytes, backend, memoryUsage}
// or {"event":"jobs.inspect", ok: false, reason}. Node 20 needs --experimental-websocket for WebSocket.
const pid = Number(process.env.JOBS_INSPECT_PID ?? 0);
const port = Number(process.env.JOBS_INSPECT_PORT ?? 9229);

const EXPRESSION = `JSON.stringify((() => {
  const e = globalThis._tfengine;
  const mu = process.memoryUsage();
  const js = { rss: mu.rss, heapUsed: mu.heapUsed, heapTotal: mu.heapTotal, external: mu.external, arrayBuffers: mu.arrayBuffers };
  if (!e) return { pid: process.pid, tfjs: false, memoryUsage: js };
  const m = e.memory();
  const heap = e.registry?.wasm?.wasm?.HEAPU8?.length ?? null;
  return { pid: process.pid, tfjs: true, backend: e.backendName, numTensors: m.numTensors, numDataBuffers: m.numDataBuffers, numBytes: m.numBytes, wasmHeapBytes: heap, memoryUsage: js };
})())`;

function done(msg) {
  process.stdout.write(`${JSON.stringify({ event: 'jobs.inspect', ...msg })}\n`);
  process.exit(0);
}

setTimeout(() => done({ ok: false, reason: 'no answer from the inspector in 10 s' }), 10_000).unref();

try {
  if (typeof WebSocket !== 'function') done({ ok: false, reason: 'no WebSocket in this Node (run with --experimental-websocket)' });
  const list = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
  const target = list.find((t) => /compute\/child\.js$/.test(t.url ?? ''));
  if (!target) done({ ok: false, reason: `no compute child behind 127.0.0.1:${port} (${list.map((t) => t.url).join(', ') || 'nothing'})` });
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error('cannot connect to the inspector'));
  });
  const answer = await new Promise((resolve, reject) => {
    ws.onmessage = (m) => {
      const msg = JSON.parse(m.data);
      if (msg.id === 1) resolve(msg);
    };
    ws.onerror = () => reject(new Error('inspector connection failed'));
    ws.send(JSON.stringify({ id: 1, method: 'Runtime.evaluate', params: { expression: EXPRESSION, returnByValue: true } }));
  });
  ws.close();
  const value = answer.result?.result?.value;
  if (typeof value !== 'string') done({ ok: false, reason: `unexpected inspector answer ${JSON.stringify(answer).slice(0, 300)}` });
  const r = JSON.parse(value);
  // Port 9229 belongs to whoever opened it first: make sure it is the child we meant.
  if (pid && r.pid !== pid) done({ ok: false, reason: `the inspector on ${port} belongs to pid ${r.pid}, not ${pid}` });
  if (!r.tfjs) done({ ok: false, reason: 'TF.js is not loaded in that process' });
  done({ ok: true, ...r });
} catch (err) {
  done({ ok: false, reason: err.message });
}
