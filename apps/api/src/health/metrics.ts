import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';

/** The process's Prometheus registry; `GET /metrics` serves it. */
export const registry = new Registry();
collectDefaultMetrics({ register: registry });

export const httpRequests = new Counter({
  name: 'aiaas_http_requests_total',
  help: 'HTTP requests by method, route and status',
  labelNames: ['method', 'route', 'status'] as const,
  registers: [registry],
});

export const httpDuration = new Histogram({
  name: 'aiaas_http_request_duration_seconds',
  help: 'HTTP request latency by method and route',
  labelNames: ['method', 'route'] as const,
  buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  registers: [registry],
});

export const keyLookups = new Counter({
  name: 'aiaas_api_key_lookups_total',
  help: 'API key resolutions by where the answer came from (the in-memory cache, or PostgreSQL)',
  labelNames: ['source'] as const,
  registers: [registry],
});

// Label children cached per method/route/status: prom-client hashes the labels on every call otherwise.
const counters = new Map<string, ReturnType<typeof httpRequests.labels>>();
const timers = new Map<string, ReturnType<typeof httpDuration.labels>>();

export function recordRequest(method: string, route: string, status: number, seconds: number): void {
  const key = `${method} ${route}`;
  const statusKey = `${key} ${status}`;
  let counter = counters.get(statusKey);
  if (!counter) counters.set(statusKey, (counter = httpRequests.labels(method, route, String(status))));
  let timer = timers.get(key);
  if (!timer) timers.set(key, (timer = httpDuration.labels(method, route)));
  counter.inc();
  timer.observe(seconds);
}

// ---- Sync inference (POST /v1/models/{id}/predict under Prefer: wait) ----

export const syncPredictions = new Counter({
  name: 'aiaas_sync_predictions_total',
  help: 'Sync prediction requests by outcome: succeeded, failed (answered 4xx/5xx after reaching a worker), accepted (not done in time: answered 202 with a queued job)',
  labelNames: ['outcome'] as const,
  registers: [registry],
});

export const syncPredictionDuration = new Histogram({
  name: 'aiaas_sync_prediction_duration_seconds',
  help: 'Sync predictions answered 200: from the request reaching the service to the reply',
  buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  registers: [registry],
});

export const syncPredictionBatchRows = new Histogram({
  name: 'aiaas_sync_prediction_batch_rows',
  help: 'Rows of the batch each sync prediction was computed in (dynamic batching at work)',
  buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096],
  registers: [registry],
});

export const syncPredictionBatchRequests = new Histogram({
  name: 'aiaas_sync_prediction_batch_requests',
  help: 'Requests in the batch each sync prediction was computed in',
  buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
  registers: [registry],
});

// ---- Job admission (POST /v1/jobs) ----

export const admissionBatchSubmissions = new Histogram({
  name: 'aiaas_admission_batch_submissions',
  help: 'Submissions in each admission batch (one statement, one commit) that POST /v1/jobs wrote',
  buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 1024],
  registers: [registry],
});
