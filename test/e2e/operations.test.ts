import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ALL_QUEUES, WEBHOOKS_QUEUE } from '@app/queue';
import { Validator } from '@seriousme/openapi-schema-validator';
import { adminKey, createTenant } from '../support/factories.js';
import { Api } from '../support/http.js';
import { metricFamilies } from '../support/prometheus.js';
import { type RunningApi, startApi } from '../support/processes.js';

let server: RunningApi;
let anon: Api;

beforeAll(async () => {
  server = await startApi();
  anon = new Api(server.url);
});
afterAll(() => server?.stop());

describe('discovery and operations', () => {
  it('GET /healthz answers without a key', async () => {
    const r = await anon.get('/healthz');
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ status: 'ok' });
    expect(r.headers.get('request-id')).toMatch(/^req_/);
  });

  it('GET /readyz says PostgreSQL and Redis answer', async () => {
    const r = await anon.get('/readyz');
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ status: 'ok', checks: { postgres: 'ok', redis: 'ok' } });
  });

  it('serves a valid OpenAPI 3.1 document that describes every route with its errors', async () => {
    const r = await anon.get('/openapi.json');
    expect(r.status).toBe(200);
    const doc = r.body;
    expect(doc.openapi).toBe('3.1.0');
    const result = await new Validator().validate(doc);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);

    const operations = Object.entries(doc.paths as Record<string, Record<string, any>>).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`),
    );
    expect(operations.sort()).toEqual(
      [
        'GET /healthz',
        'GET /readyz',
        'GET /metrics',
        'GET /v1/me',
        'POST /v1/api-keys',
        'GET /v1/api-keys',
        'DELETE /v1/api-keys/{id}',
        'POST /v1/admin/tenants',
        'GET /v1/admin/tenants',
        'GET /v1/admin/tenants/{id}',
        'PATCH /v1/admin/tenants/{id}',
        'DELETE /v1/admin/tenants/{id}',
        'GET /v1/admin/tenants/{id}/usage',
        'POST /v1/admin/tenants/{id}/api-keys',
        'GET /v1/admin/tenants/{id}/api-keys',
        'DELETE /v1/admin/tenants/{id}/api-keys/{key_id}',
        'GET /v1/admin/audit-log',
        'GET /v1/admin/workers',
        'POST /v1/datasets',
        'POST /v1/embeddings',
        'POST /v1/foundation-models/{id}/predict',
        'GET /v1/datasets',
        'GET /v1/datasets/{id}',
        'GET /v1/files',
        'GET /v1/files/{id}',
        'GET /v1/files/{id}/content',
        'DELETE /v1/files/{id}',
        'GET /v1/foundation-models',
        'GET /v1/foundation-models/{id}',
        'DELETE /v1/datasets/{id}',
        'POST /v1/jobs',
        'GET /v1/jobs',
        'GET /v1/jobs/{id}',
        'GET /v1/jobs/{id}/events',
        'GET /v1/jobs/{id}/stream',
        'GET /v1/jobs/{id}/output',
        'POST /v1/jobs/{id}/cancel',
        'POST /v1/models/{id}/predict',
        'POST /v1/models',
        'GET /v1/models',
        'GET /v1/models/{id}',
        'DELETE /v1/models/{id}',
        'GET /v1/models/{id}/versions',
        'POST /v1/models/{id}/versions',
        'GET /v1/models/{id}/versions/{n}',
        'GET /v1/models/{id}/versions/{n}/artifact',
        'PUT /v1/models/{id}/aliases/{alias}',
        'DELETE /v1/models/{id}/aliases/{alias}',
        'GET /v1/admin/overview',
        'GET /v1/admin/jobs',
        'GET /v1/admin/jobs/{id}',
        'GET /v1/admin/jobs/{id}/events',
        'POST /v1/admin/jobs/{id}/cancel',
        'POST /v1/admin/jobs/{id}/retry',
        'GET /v1/admin/webhook-failures',
        'POST /v1/webhooks',
        'GET /v1/webhooks',
        'GET /v1/webhooks/default/secret',
        'GET /v1/webhooks/{id}',
        'PATCH /v1/webhooks/{id}',
        'DELETE /v1/webhooks/{id}',
        'POST /v1/webhooks/{id}/rotate-secret',
        'GET /v1/webhooks/{id}/deliveries',
        'POST /v1/webhooks/{id}/deliveries/{message_id}/redeliver',
      ].sort(),
    );
    // Every authenticated POST honours Idempotency-Key.
    for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
      if (ops.post)
        expect([path, ops.post.parameters.map((p: { name: string }) => p.name)]).toEqual([
          path,
          expect.arrayContaining(['Idempotency-Key']),
        ]);
    }
    const create = doc.paths['/v1/api-keys'].post;
    expect(create.requestBody.content['application/json'].schema.properties.name).toBeDefined();
    expect(Object.keys(create.responses)).toEqual(expect.arrayContaining(['201', '400', '401', '403', '409', '413', '415', '422', '429']));
    expect(create.responses['201'].headers.RateLimit).toBeDefined();
    expect(create.parameters.map((p: { name: string }) => p.name)).toContain('Idempotency-Key');
    expect(doc.paths['/v1/admin/tenants/{id}'].get.responses['404']).toBeDefined();
    expect(doc.components.schemas.Error).toBeDefined();
    expect(doc.components.schemas.Tenant).toBeDefined();
    expect(Object.keys(doc.paths['/v1/datasets'].post.requestBody.content)).toEqual([
      'application/json',
      'text/csv',
      'application/x-ndjson',
      'application/zip',
    ]);
    // A body that is not JSON is described as what it is: a file's bytes (ranges, ETag), an event stream, Prometheus text.
    const content = doc.paths['/v1/files/{id}/content'].get;
    expect(content.responses['200'].content).toEqual({
      'application/x-ndjson': { schema: { type: 'string', format: 'binary' } },
      'text/csv': { schema: { type: 'string', format: 'binary' } },
    });
    expect(Object.keys(content.responses)).toEqual(expect.arrayContaining(['200', '206', '304', '416']));
    expect(Object.keys(content.responses['206'].headers)).toEqual(
      expect.arrayContaining(['ETag', 'Content-Length', 'Content-Range', 'Content-Disposition', 'Accept-Ranges']),
    );
    expect(content.responses['200'].headers['Content-Range']).toBeUndefined();
    expect(content.responses['304'].content).toBeUndefined();
    expect(content.responses['416'].headers['Content-Range']).toBeDefined();
    expect(content.parameters.map((p: { name: string }) => p.name)).toEqual(expect.arrayContaining(['Range', 'If-None-Match']));
    expect(Object.keys(doc.paths['/v1/jobs/{id}/stream'].get.responses['200'].content)).toEqual(['text/event-stream']);
    expect(Object.keys(doc.paths['/metrics'].get.responses['200'].content)).toEqual(['text/plain']);
  });

  it('serves the interactive docs page and its assets without the internet', async () => {
    const page = await anon.get('/docs');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(page.text).toContain('/openapi.json');
    const js = await anon.get('/docs/assets/swagger-ui-bundle.js');
    expect(js.status).toBe(200);
    expect(js.text.length).toBeGreaterThan(100_000);
    expect((await anon.get('/docs/assets/other.js')).status).toBe(404);
  });

  it('exposes Prometheus metrics to the admin key: requests by route and status, and a latency histogram', async () => {
    const t = await createTenant(server.url);
    await t.api.get('/v1/me');
    await t.api.get('/v1/admin/tenants');
    expect((await anon.get('/metrics')).status).toBe(401);
    const r = await anon.as(adminKey()).get('/metrics');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toContain('text/plain');
    expect(r.text).toMatch(/aiaas_http_requests_total\{method="GET",route="\/v1\/me",status="200"\} \d+/);
    expect(r.text).toMatch(/aiaas_http_requests_total\{method="GET",route="\/v1\/admin\/tenants",status="403"\} \d+/);
    expect(r.text).toMatch(/aiaas_http_request_duration_seconds_bucket\{le="0\.005",method="GET",route="\/v1\/me"\} \d+/);
  });

  it("serves the cluster-wide figures after the process's, in Prometheus' text format, each family once", async () => {
    const families = metricFamilies((await anon.as(adminKey()).get('/metrics')).text);
    const types = Object.fromEntries([...families].filter(([name]) => name.startsWith('aiaas_')).map(([name, f]) => [name, f.type]));
    expect(types).toEqual({
      aiaas_admission_batch_submissions: 'histogram',
      aiaas_http_requests_total: 'counter',
      aiaas_http_request_duration_seconds: 'histogram',
      aiaas_api_key_lookups_total: 'counter',
      aiaas_sync_predictions_total: 'counter',
      aiaas_sync_prediction_duration_seconds: 'histogram',
      aiaas_sync_prediction_batch_rows: 'histogram',
      aiaas_sync_prediction_batch_requests: 'histogram',
      aiaas_jobs: 'gauge',
      aiaas_queue_depth: 'gauge',
      aiaas_workers_online: 'gauge',
      aiaas_job_wait_seconds: 'histogram',
      aiaas_job_run_seconds: 'histogram',
      aiaas_jobs_ended_total: 'counter',
      aiaas_webhook_attempts_total: 'counter',
    });
    const labels = (name: string) => families.get(name)!.samples.map((s) => s.replace(/ \d+$/, ''));
    expect(labels('aiaas_jobs')).toEqual(
      ['queued', 'running', 'succeeded', 'failed', 'canceled'].map((s) => `aiaas_jobs{scope="cluster",status="${s}"}`),
    );
    // Every queue with the stages it has: BullMQ's queues all four, the predict list only what it can tell.
    expect(labels('aiaas_queue_depth')).toEqual([
      ...[...ALL_QUEUES, WEBHOOKS_QUEUE].flatMap((q) =>
        ['scheduled', 'ready', 'active', 'delayed'].map((stage) => `aiaas_queue_depth{scope="cluster",queue="${q}",stage="${stage}"}`),
      ),
      'aiaas_queue_depth{scope="cluster",queue="predict",stage="scheduled"}',
      'aiaas_queue_depth{scope="cluster",queue="predict",stage="ready"}',
    ]);
    expect(labels('aiaas_workers_online')).toEqual(['aiaas_workers_online{scope="cluster"}']);
    expect(labels('aiaas_webhook_attempts_total')).toEqual(
      ['succeeded', 'retried', 'failed', 'gone'].map((o) => `aiaas_webhook_attempts_total{scope="cluster",outcome="${o}"}`),
    );
    for (const name of ['aiaas_job_wait_seconds', 'aiaas_job_run_seconds', 'aiaas_jobs_ended_total']) {
      expect(families.get(name)!.samples.every((s) => s.includes('{scope="cluster",type="'))).toBe(true);
    }
  });

  it('never logs a key or a secret', async () => {
    const t = await createTenant(server.url);
    const made = await t.api.post('/v1/api-keys', { name: 'secret-check' });
    await t.api.as(made.body.secret).get('/v1/me');
    await new Api(server.url, 'aik_notarealkeynotarealkeynotarealkey0000000').get('/v1/me');
    const all = server.output.join('\n');
    expect(all).not.toContain(made.body.secret);
    expect(all).not.toContain(t.key.secret);
    expect(all).not.toContain(adminKey());
    expect(all).not.toContain('aik_notarealkey');
  });
});
