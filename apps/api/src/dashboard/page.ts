/**
 * The dashboard's page and script, served as they are (apps/api/src/dashboard). Plain DOM and
 * fetch, no framework, no build step; every figure comes from the admin routes of API.md. Text
 * from the API is always inserted as text (textContent), never as HTML.
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>aiaas · operations</title>
<style>
  :root { --fg: #1d232b; --muted: #6a737d; --line: #e3e6ea; --bg: #f6f7f9; --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; --accent: #0969da; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
  header { display: flex; align-items: center; gap: 16px; padding: 10px 20px; background: #fff; border-bottom: 1px solid var(--line); }
  header h1 { font-size: 16px; margin: 0; }
  header .status { color: var(--muted); font-size: 12px; margin-left: auto; }
  main { padding: 16px 20px; display: grid; gap: 16px; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); }
  section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 12px 14px; min-width: 0; }
  section.wide { grid-column: 1 / -1; }
  h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); margin: 0 0 8px; }
  table { width: 100%; border-collapse: collapse; font-size: 13px; }
  th, td { text-align: left; padding: 4px 6px; border-bottom: 1px solid var(--line); white-space: nowrap; overflow: hidden; text-overflow: ellipsis; max-width: 260px; }
  th { color: var(--muted); font-weight: 600; }
  td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
  .tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(110px, 1fr)); gap: 8px; }
  .tile { border: 1px solid var(--line); border-radius: 6px; padding: 8px; }
  .tile b { display: block; font-size: 20px; font-variant-numeric: tabular-nums; }
  .tile span { color: var(--muted); font-size: 12px; }
  .s-succeeded { color: var(--ok); } .s-failed, .s-suspended { color: var(--bad); } .s-running { color: var(--accent); } .s-queued { color: var(--warn); }
  button { font: inherit; font-size: 12px; padding: 2px 8px; border: 1px solid var(--line); background: #fff; border-radius: 4px; cursor: pointer; }
  button:hover { border-color: var(--accent); }
  select, input { font: inherit; font-size: 13px; padding: 3px 6px; border: 1px solid var(--line); border-radius: 4px; }
  .filters { display: flex; gap: 8px; margin-bottom: 8px; flex-wrap: wrap; }
  #login { max-width: 460px; margin: 12vh auto; background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 24px; }
  #login input { width: 100%; margin: 10px 0; padding: 8px; }
  #login .error { color: var(--bad); min-height: 1.4em; }
  #job-detail { display: none; }
  #job-detail.open { display: block; }
  .muted { color: var(--muted); }
  svg text { font-size: 11px; fill: var(--muted); }
</style>
</head>
<body>
<div id="login">
  <h1>aiaas operations</h1>
  <p class="muted">Paste an admin key. It stays in this tab (session storage) and is sent only to this service.</p>
  <form id="login-form">
    <input id="admin-key" type="password" autocomplete="off" placeholder="adm_…" aria-label="admin key">
    <button type="submit" id="login-button">Open the dashboard</button>
  </form>
  <p class="error" id="login-error"></p>
</div>
<div id="app" hidden>
  <header>
    <h1>aiaas operations</h1>
    <span class="status" id="refreshed">…</span>
    <button id="logout">Forget key</button>
  </header>
  <main>
    <section class="wide">
      <h2>Overview</h2>
      <div class="tiles" id="tiles"></div>
    </section>
    <section>
      <h2>Queues</h2>
      <table id="queues"><thead><tr><th>queue</th><th class="num">scheduled</th><th class="num">ready</th><th class="num">active</th><th class="num">delayed</th></tr></thead><tbody></tbody></table>
    </section>
    <section>
      <h2>Workers</h2>
      <table id="workers"><thead><tr><th>id</th><th>host</th><th>backend</th><th class="num">slots</th><th>current jobs</th><th>heartbeat</th></tr></thead><tbody></tbody></table>
    </section>
    <section class="wide">
      <h2>Tenants</h2>
      <table id="tenants"><thead><tr><th>name</th><th>id</th><th>plan</th><th>status</th><th class="num">queued</th><th class="num">running</th><th class="num">compute s (month)</th><th class="num">storage</th><th class="num">requests (month)</th><th>quotas</th><th></th></tr></thead><tbody></tbody></table>
    </section>
    <section class="wide">
      <h2>Recent jobs</h2>
      <div class="filters">
        <input id="f-tenant" placeholder="tenant id (ten_…)" size="26" aria-label="tenant filter">
        <select id="f-type" aria-label="type filter"><option value="">any type</option><option>training</option><option>evaluation</option><option>inference</option></select>
        <select id="f-status" aria-label="status filter"><option value="">any status</option><option>queued</option><option>running</option><option>succeeded</option><option>failed</option><option>canceled</option></select>
      </div>
      <table id="jobs"><thead><tr><th>job</th><th>tenant</th><th>type</th><th>status</th><th class="num">progress</th><th>created</th><th>error</th><th></th></tr></thead><tbody></tbody></table>
    </section>
    <section class="wide" id="job-detail">
      <h2>Job <span id="jd-id"></span> <button id="jd-close">close</button></h2>
      <div id="jd-summary" class="muted"></div>
      <div id="jd-chart"></div>
      <table id="jd-events"><thead><tr><th>time</th><th>event</th><th>data</th></tr></thead><tbody></tbody></table>
    </section>
    <section class="wide">
      <h2>Webhook failures</h2>
      <table id="webhooks"><thead><tr><th>message</th><th>tenant</th><th>event</th><th>url</th><th>status</th><th class="num">attempts</th><th>last error</th></tr></thead><tbody></tbody></table>
    </section>
  </main>
</div>
<script src="/dashboard/app.js"></script>
</body>
</html>
`;

export const DASHBOARD_JS = `'use strict';
(() => {
  const KEY = 'aiaas.adminKey';
  const REFRESH_MS = 5000;
  const $ = (id) => document.getElementById(id);
  let timer = null;
  let openJob = null;

  async function api(method, path, body) {
    const res = await fetch(path, {
      method,
      headers: { authorization: 'Bearer ' + sessionStorage.getItem(KEY), ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const data = res.status === 204 ? null : await res.json().catch(() => null);
    if (!res.ok) {
      const err = new Error((data && data.error && data.error.message) || 'HTTP ' + res.status);
      err.status = res.status;
      throw err;
    }
    return data;
  }

  /** A table row of text cells (and optional element cells). */
  function row(cells) {
    const tr = document.createElement('tr');
    for (const c of cells) {
      const td = document.createElement('td');
      if (c && typeof c === 'object' && 'nodeType' in c) td.appendChild(c);
      else if (c && typeof c === 'object') {
        td.textContent = c.text == null ? '' : String(c.text);
        if (c.cls) td.className = c.cls;
        if (c.title) td.title = c.title;
      } else td.textContent = c == null ? '' : String(c);
      tr.appendChild(td);
    }
    return tr;
  }
  const num = (v) => ({ text: v == null ? '—' : typeof v === 'number' ? v.toLocaleString() : v, cls: 'num' });
  const fill = (id, rows) => $(id).querySelector('tbody').replaceChildren(...rows);
  const ago = (iso) => (iso ? Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000)) + ' s ago' : '');
  const bytes = (n) => (n >= 1 << 30 ? (n / (1 << 30)).toFixed(1) + ' GiB' : n >= 1 << 20 ? (n / (1 << 20)).toFixed(1) + ' MiB' : n >= 1024 ? (n / 1024).toFixed(1) + ' KiB' : n + ' B');
  function button(label, onClick, name) {
    const b = document.createElement('button');
    b.textContent = label;
    if (name) b.dataset.action = name;
    b.addEventListener('click', async (e) => {
      e.stopPropagation();
      b.disabled = true;
      try { await onClick(); await refresh(); } catch (err) { alert(err.message); } finally { b.disabled = false; }
    });
    return b;
  }
  function buttons(...list) {
    const span = document.createElement('span');
    for (const b of list) if (b) { span.appendChild(b); span.appendChild(document.createTextNode(' ')); }
    return span;
  }

  function renderOverview(o) {
    const s = o.jobs.by_status;
    const tiles = [
      ['queued', s.queued], ['running', s.running], ['succeeded', s.succeeded], ['failed', s.failed], ['canceled', s.canceled],
      ['jobs/min (5 min)', o.recent.throughput_per_minute], ['failure rate (5 min)', (o.recent.failure_rate * 100).toFixed(1) + ' %'],
      ['wait p50 / p95 (s)', fmtPair(o.latency_seconds.queue_wait)], ['run p50 / p95 (s)', fmtPair(o.latency_seconds.run)],
      ['workers online', o.workers.online], ['slots busy', o.workers.busy + ' / ' + o.workers.slots],
      ['webhooks pending', o.webhooks.pending], ['webhooks failing', o.webhooks.failing], ['webhooks failed', o.webhooks.failed],
    ];
    $('tiles').replaceChildren(...tiles.map(([label, value]) => {
      const d = document.createElement('div');
      d.className = 'tile';
      d.dataset.tile = label;
      const b = document.createElement('b');
      b.textContent = value == null ? '—' : String(value);
      const sp = document.createElement('span');
      sp.textContent = label;
      d.append(b, sp);
      return d;
    }));
    fill('queues', o.queues.map((q) => row([q.name, num(q.scheduled), num(q.ready), num(q.active), num(q.delayed)])));
    return new Map(o.tenants.map((t) => [t.tenant_id, t]));
  }
  const fmtPair = (q) => (q.p50 == null ? '—' : q.p50 + ' / ' + q.p95);

  function renderWorkers(list) {
    fill('workers', list.data.map((w) => row([{ text: w.id, title: w.id }, w.host, w.backend, num(w.concurrency), w.current_jobs.join(', '), ago(w.last_heartbeat_at)])));
  }

  async function renderTenants(active) {
    const tenants = (await api('GET', '/v1/admin/tenants?limit=100')).data;
    const usages = await Promise.all(tenants.map((t) => api('GET', '/v1/admin/tenants/' + t.id + '/usage').catch(() => null)));
    fill('tenants', tenants.map((t, i) => {
      const u = usages[i];
      const a = active.get(t.id) || { queued: 0, running: 0 };
      const q = t.quotas;
      const tr = row([
        t.name, { text: t.id, title: t.id }, t.plan, { text: t.status, cls: 's-' + t.status },
        num(a.queued), num(a.running),
        num(u ? u.compute_seconds : null), num(u ? bytes(u.storage_bytes) : null), num(u ? u.requests : null),
        { text: 'conc ' + q.max_concurrent_jobs + ', queued ' + q.max_queued_jobs + ', rpm ' + q.requests_per_minute, title: JSON.stringify(q) },
        buttons(
          t.status === 'active'
            ? button('suspend', () => api('PATCH', '/v1/admin/tenants/' + t.id, { status: 'suspended' }), 'suspend')
            : button('activate', () => api('PATCH', '/v1/admin/tenants/' + t.id, { status: 'active' }), 'activate'),
          button('quotas…', async () => {
            const text = prompt('Quota overrides for ' + t.name + ' as JSON (null resets one to the plan):', JSON.stringify(t.quota_overrides));
            if (text === null) return;
            await api('PATCH', '/v1/admin/tenants/' + t.id, { quotas: JSON.parse(text) });
          }, 'quotas'),
        ),
      ]);
      tr.dataset.tenant = t.id;
      return tr;
    }));
  }

  async function renderJobs() {
    const params = new URLSearchParams({ limit: '50' });
    for (const [id, key] of [['f-tenant', 'tenant'], ['f-type', 'type'], ['f-status', 'status']]) if ($(id).value.trim()) params.set(key, $(id).value.trim());
    const jobs = (await api('GET', '/v1/admin/jobs?' + params)).data;
    fill('jobs', jobs.map((j) => {
      const tr = row([
        { text: j.id, title: j.id }, { text: j.tenant_id, title: j.tenant_id }, j.type, { text: j.status, cls: 's-' + j.status },
        num(j.progress.percent + ' %'), new Date(j.created_at).toLocaleTimeString(), { text: j.error ? j.error.code : '', title: j.error ? j.error.message : '' },
        buttons(
          (j.status === 'queued' || j.status === 'running') && button('cancel', () => api('POST', '/v1/admin/jobs/' + j.id + '/cancel', {}), 'cancel'),
          j.status === 'failed' && button('retry', () => api('POST', '/v1/admin/jobs/' + j.id + '/retry', {}), 'retry'),
        ),
      ]);
      tr.dataset.job = j.id;
      tr.style.cursor = 'pointer';
      tr.addEventListener('click', () => { openJob = j.id; renderJob().catch(showError); });
      return tr;
    }));
  }

  async function renderJob() {
    if (!openJob) return;
    const [job, events] = await Promise.all([api('GET', '/v1/admin/jobs/' + openJob), api('GET', '/v1/admin/jobs/' + openJob + '/events?limit=100')]);
    $('job-detail').classList.add('open');
    $('jd-id').textContent = job.id;
    $('jd-summary').textContent = job.type + ' · ' + job.status + ' · tenant ' + job.tenant_id + ' · attempts ' + job.attempts +
      (job.backend ? ' · ' + job.backend : '') + (job.compute_seconds ? ' · ' + job.compute_seconds + ' s of compute' : '') + (job.error ? ' · ' + job.error.code + ': ' + job.error.message : '');
    const epochs = events.data.filter((e) => e.type === 'job.progress' && typeof e.data.loss === 'number');
    $('jd-chart').replaceChildren(epochs.length ? lossChart(epochs.map((e) => e.data)) : document.createTextNode(''));
    fill('jd-events', events.data.map((e) => row([new Date(e.created_at).toLocaleTimeString(), e.type, { text: JSON.stringify(e.data), title: JSON.stringify(e.data) }])));
  }

  /** Training loss and validation loss per epoch, as an inline SVG. */
  function lossChart(points) {
    const W = 640, H = 220, L = 48, R = 110, T = 12, B = 28;
    const NS = 'http://www.w3.org/2000/svg';
    const el = (name, attrs, text) => {
      const e = document.createElementNS(NS, name);
      for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
      if (text != null) e.textContent = text;
      return e;
    };
    const series = [['loss', '#0969da'], ['val_loss', '#cf222e']].filter(([k]) => points.some((p) => typeof p[k] === 'number'));
    const values = series.flatMap(([k]) => points.map((p) => p[k]).filter((v) => typeof v === 'number'));
    const max = Math.max(...values), min = Math.min(0, ...values);
    const maxEpoch = Math.max(...points.map((p) => p.epoch));
    const x = (e) => L + ((e - 1) / Math.max(1, maxEpoch - 1)) * (W - L - R);
    const y = (v) => T + (1 - (v - min) / ((max - min) || 1)) * (H - T - B);
    const svg = el('svg', { width: W, height: H, viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': 'loss per epoch', id: 'loss-chart' });
    svg.appendChild(el('line', { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: '#e3e6ea' }));
    svg.appendChild(el('line', { x1: L, y1: T, x2: L, y2: H - B, stroke: '#e3e6ea' }));
    svg.appendChild(el('text', { x: L - 6, y: y(max) + 4, 'text-anchor': 'end' }, max.toFixed(3)));
    svg.appendChild(el('text', { x: L - 6, y: y(min) + 4, 'text-anchor': 'end' }, min.toFixed(3)));
    svg.appendChild(el('text', { x: (L + W - R) / 2, y: H - 6, 'text-anchor': 'middle' }, 'epoch (1–' + maxEpoch + ')'));
    series.forEach(([k, color], i) => {
      const pts = points.filter((p) => typeof p[k] === 'number').map((p) => x(p.epoch).toFixed(1) + ',' + y(p[k]).toFixed(1)).join(' ');
      svg.appendChild(el('polyline', { points: pts, fill: 'none', stroke: color, 'stroke-width': 2, 'data-series': k }));
      svg.appendChild(el('text', { x: W - R + 10, y: T + 14 + i * 16, fill: color }, k));
    });
    return svg;
  }

  async function renderWebhooks() {
    const [failed, failing] = await Promise.all([api('GET', '/v1/admin/webhook-failures?state=failed&limit=25'), api('GET', '/v1/admin/webhook-failures?state=failing&limit=25')]);
    fill('webhooks', [...failing.data, ...failed.data].map((m) => row([{ text: m.id, title: m.id }, { text: m.tenant_id, title: m.tenant_id }, m.event_type, { text: m.url, title: m.url }, { text: m.status, cls: m.status === 'failed' ? 's-failed' : 's-queued' }, num(m.attempts), { text: m.last_error || '', title: m.last_error || '' }])));
  }

  function showError(err) {
    if (err && err.status === 401) return logout('The key was refused: paste an admin key.');
    $('refreshed').textContent = 'refresh failed: ' + err.message;
  }

  async function refresh() {
    const [overview, workers] = await Promise.all([api('GET', '/v1/admin/overview'), api('GET', '/v1/admin/workers')]);
    const active = renderOverview(overview);
    renderWorkers(workers);
    await Promise.all([renderTenants(active), renderJobs(), renderWebhooks(), renderJob()]);
    $('refreshed').textContent = 'updated ' + new Date().toLocaleTimeString() + ' · every ' + REFRESH_MS / 1000 + ' s';
    document.body.dataset.refreshedAt = String(Date.now());
  }

  function start() {
    $('login').hidden = true;
    $('app').hidden = false;
    refresh().catch(showError);
    clearInterval(timer);
    timer = setInterval(() => refresh().catch(showError), REFRESH_MS);
  }

  function logout(message) {
    clearInterval(timer);
    sessionStorage.removeItem(KEY);
    $('app').hidden = true;
    $('login').hidden = false;
    $('login-error').textContent = message || '';
  }

  $('login-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    sessionStorage.setItem(KEY, $('admin-key').value.trim());
    try {
      await api('GET', '/v1/admin/overview');
      $('admin-key').value = '';
      start();
    } catch (err) {
      logout(err.status === 401 || err.status === 403 ? 'That is not an admin key.' : err.message);
    }
  });
  $('logout').addEventListener('click', () => logout());
  $('jd-close').addEventListener('click', () => { openJob = null; $('job-detail').classList.remove('open'); });
  for (const id of ['f-tenant', 'f-type', 'f-status']) $(id).addEventListener('change', () => renderJobs().catch(showError));
  if (sessionStorage.getItem(KEY)) start();
})();
`;
