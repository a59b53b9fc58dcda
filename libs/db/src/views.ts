import type { Job, ModelVersion } from './generated/client.js';

/**
 * Objects as the API shows them, built from rows. They live here rather than in apps/api because
 * webhooks carry "the full object as the API returns it", and webhook messages are written inside
 * the database transactions of the changes that cause them (docs/webhooks.md).
 */
const iso = (d: Date | null | undefined): string | null => (d ? d.toISOString() : null);

export type WaitingFor = 'capacity' | 'tenant_concurrency_limit' | 'gpu' | null;

/** A job as `GET /v1/jobs/{id}` returns it; `queue` says where a queued job stands and what it waits for. */
export function jobView(j: Job, queue: { position: number | null; waitingFor: WaitingFor } = { position: null, waitingFor: null }) {
  const p = (j.progress ?? {}) as {
    percent?: number;
    epoch?: number;
    epochs?: number;
    eta_seconds?: number;
    rows_done?: number;
    rows_total?: number;
  };
  return {
    id: j.id,
    object: 'job' as const,
    type: j.type,
    status: j.status,
    model_id: j.modelId,
    version: j.version,
    alias: j.alias,
    dataset_id: j.datasetId,
    // A transfer-learning job keeps its base with its hyperparameters; the API shows it on its own.
    ...splitBaseModel(j.hyperparameters),
    metadata: j.metadata as Record<string, unknown>,
    resources: { accelerator: j.accelerator },
    progress: {
      percent: j.status === 'succeeded' ? 100 : (p.percent ?? 0),
      epoch: p.epoch ?? null,
      epochs: p.epochs ?? null,
      eta_seconds: j.status === 'running' ? (p.eta_seconds ?? null) : null,
      // a batch prediction counts rows
      ...(p.rows_total !== undefined ? { rows_done: p.rows_done ?? 0, rows_total: p.rows_total } : {}),
    },
    output: (j.output as { format: 'ndjson' | 'csv'; include_inputs: boolean } | null) ?? null,
    queue_position: j.status === 'queued' ? queue.position : null,
    waiting_for: j.status === 'queued' ? queue.waitingFor : null,
    attempts: j.attempts,
    cancel_requested: j.cancelRequested,
    worker_id: j.workerId,
    backend: j.backend,
    compute_seconds: Math.round(j.computeSeconds * 1000) / 1000,
    result: (j.result as Record<string, unknown> | null) ?? null,
    error: (j.error as { code: string; message: string } | null) ?? null,
    webhook_url: j.webhookUrl,
    webhook_events: j.webhookEvents,
    created_at: iso(j.createdAt)!,
    started_at: iso(j.startedAt),
    finished_at: iso(j.finishedAt),
  };
}

/** A model version as `GET /v1/models/{id}/versions/{n}` returns it. */
export function versionView(v: ModelVersion) {
  return {
    id: v.id,
    object: 'model_version' as const,
    model_id: v.modelId,
    version: v.number,
    metrics: v.metrics as Record<string, unknown>,
    architecture: v.architecture as Record<string, unknown>,
    hyperparameters: v.hyperparameters as Record<string, unknown>,
    input_schema: v.inputSchema as Record<string, unknown>,
    labels: (v.labels as string[] | null) ?? null,
    parameters: v.parameters,
    bytes: Number(v.bytes),
    sha256: v.sha256,
    backend: v.backend,
    source: v.source as 'training' | 'import',
    training_job_id: v.trainingJobId,
    dataset_id: v.datasetId,
    base_version: v.baseVersion,
    base_model: ((v.inputSchema as { base_model?: { id: string; sha256: string } } | null)?.base_model ?? null) as {
      id: string;
      sha256: string;
    } | null,
    created_at: iso(v.createdAt)!,
  };
}

function splitBaseModel(hyperparameters: unknown): { hyperparameters: Record<string, unknown>; base_model: string | null } {
  const { base_model, ...rest } = (hyperparameters ?? {}) as Record<string, unknown>;
  return { hyperparameters: rest, base_model: typeof base_model === 'string' ? base_model : null };
}
