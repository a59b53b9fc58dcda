import { ApiError, effectiveQuotas, schedulingShare } from '@app/common';
import { APP_CONFIG, type AppConfig } from '@app/config';
import {
  datasetColumns,
  eventView,
  fromDbTask,
  type Job,
  JobRepository,
  type JobTargets,
  type Model,
  ModelRegistry,
  type NewJob,
  toPage,
} from '@app/db';
import { isActive } from '@app/jobs';
import { type JobEventMessage, type TenantShare, TERMINAL_EVENTS } from '@app/queue';
import { Inject, Injectable, Logger } from '@nestjs/common';
import type { z } from 'zod';
import type { TenantPrincipal } from '../auth/principal.js';
import { UsageCache } from '../me/usage-cache.js';
import { AdmissionBatcher } from './admission.js';
import { checkInputs, type InputSchema } from './inputs.js';
import { JobTargetsLoader } from './job-targets.js';
import { JobScheduling } from './job-scheduling.js';
import { JobWatcher } from './job-watcher.js';
import { type CreateJob, type JobListQuery, jobView, type JobView } from './jobs.dto.js';
import { checkWebhookUrl } from '../webhooks/webhook-url.js';
import { isTransferLearning, transferHyperparameters } from './transfer-learning.js';
import { checkArchitecture, checkPreset, checkTrainingTime, resolveTrainingHyperparameters } from './training-limits.js';

/**
 * What a queued job waits for: GPU workers online (null when it asked for none), its tenant's
 * running jobs and their limit; and, when known, its place in the scheduler's order.
 */
interface QueuedContext {
  gpuWorkers: number | null;
  running: number;
  maxConcurrentJobs: number;
  position?: number | null;
}

/** An accepted job, with what admission learned of its tenant (so that the 202 needs no read of its own). */
export interface Submitted {
  job: Job;
  context: QueuedContext;
}

@Injectable()
export class JobsService {
  private readonly logger = new Logger('jobs');

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly jobs: JobRepository,
    private readonly registry: ModelRegistry,
    private readonly watcher: JobWatcher,
    private readonly usage: UsageCache,
    private readonly scheduling: JobScheduling,
    private readonly admission: AdmissionBatcher,
    private readonly targets: JobTargetsLoader,
  ) {}

  /**
   * Validates the job against its model and dataset, then admits it (AdmissionBatcher: the quotas
   * checked and the job written with its first event, committed, in a batch with the submissions
   * that arrive with it); only then hands it to the queue. If Redis is down at that
   * moment the job is still accepted: the workers' reconciler enqueues it when Redis returns.
   */
  async submit(p: TenantPrincipal, body: CreateJob): Promise<Submitted> {
    const serving = body.type === 'training' ? {} : { version: body.version, alias: body.alias };
    if (serving.version !== undefined && serving.alias !== undefined)
      throw ApiError.invalid('parameter_invalid', 'Give version or alias, not both', 'alias');
    const datasetId = 'dataset' in body ? body.dataset : undefined;
    const found = await this.targets.load({
      tenantId: p.tenantId,
      model: body.model,
      datasetId,
      version: serving.version,
      alias: serving.alias && serving.alias !== 'latest' ? serving.alias : undefined,
    });
    const { model, dataset } = found;
    if (!model) throw ApiError.notFound('model', body.model, 'model');
    if (datasetId && !dataset) throw ApiError.notFound('dataset', datasetId, 'dataset');
    const task = fromDbTask(model.task);
    if (dataset && fromDbTask(dataset.task) !== task) {
      throw ApiError.invalid(
        'task_mismatch',
        `Dataset '${dataset.id}' is for ${fromDbTask(dataset.task)}; model '${model.name}' is for ${task}`,
        'dataset',
      );
    }
    // Checked as an endpoint's URL is: a refusal at delivery would be one the tenant never sees.
    if (body.webhook_url !== undefined) await checkWebhookUrl(body.webhook_url, this.config.webhookAllowedHosts, 'webhook_url');
    const data: NewJob = {
      type: body.type,
      modelId: model.id,
      datasetId: dataset?.id ?? null,
      accelerator: body.resources?.accelerator === 'gpu' ? 'gpu' : null,
      metadata: body.metadata ?? {},
      webhookUrl: body.webhook_url ?? null,
      webhookEvents: body.webhook_events ?? (body.webhook_url ? ['completed'] : []),
    };
    if (body.type === 'training' && isTransferLearning(task, dataset!, body)) {
      data.hyperparameters = transferHyperparameters(task, dataset!, body) as object;
    } else if (body.type === 'training') {
      const given = body.hyperparameters ?? {};
      const fineTuned = body.base_version !== undefined;
      // Resolved as the worker will resolve them: the preset's keys apply only to a preset.
      const hp = resolveTrainingHyperparameters(task, given, { preset: !body.architecture && !fineTuned, textData: !fineTuned });
      data.hyperparameters = given as object;
      if (task === 'image-classification' && (body.architecture || fineTuned)) {
        const param = body.architecture ? 'architecture' : 'base_version';
        throw ApiError.invalid(
          'parameter_invalid',
          `An image-classification model trains the convolutional preset, or a head on a foundation model (base_model); ${param} is not supported for images`,
          param,
        );
      }
      // An image CNN's size follows the images' size, known once the worker reads them: max_model_parameters is checked there.
      if (body.architecture) {
        checkArchitecture(p, task, dataset!, body.architecture);
        data.architecture = body.architecture as object;
      } else if (!fineTuned && task !== 'image-classification') checkPreset(p.quotas, task, dataset!, hp);
      checkTrainingTime(p.quotas, dataset!, hp);
      if (body.base_version !== undefined) {
        if (!(await this.registry.version(p.tenantId, model.id, body.base_version))) {
          throw ApiError.invalid('version_missing', `Model '${model.name}' has no version ${body.base_version}`, 'base_version');
        }
        data.baseVersion = body.base_version;
      }
    } else {
      checkVersionChoice(model, found, body.version, body.alias, body.type === 'inference' ? body.inputs : undefined);
      data.version = body.version ?? null;
      data.alias = body.version === undefined ? (body.alias ?? 'latest') : null;
      if (body.type === 'inference') {
        if ((body.inputs === undefined) === (body.dataset === undefined)) {
          throw ApiError.invalid('parameter_invalid', 'Give exactly one of inputs (rows to predict) or dataset', 'inputs');
        }
        data.inputs = body.inputs ?? null;
        data.explain = body.explain ?? false;
        if (body.output) {
          checkBatchOutput(body, found);
          data.output = { format: body.output.format, include_inputs: body.output.include_inputs ?? false };
        }
      }
    }

    const admitted = await this.admission.admit(p.tenantId, data, {
      maxQueuedJobs: p.quotas.max_queued_jobs,
      monthlyComputeSeconds: p.quotas.monthly_compute_seconds,
    });
    if (admitted.refused !== undefined) throw refusal(p, admitted.refused, admitted.count);
    const { job, running } = admitted;
    // Sent together, in this order, in one write to Redis: the usage invalidation, the job into the
    // scheduler, the workers' wake-up, and the job's place (for the answer).
    const [, , position] = await Promise.all([
      this.usage.changed(p.tenantId),
      this.schedule(job, schedulingShare(p.plan, p.quotas)),
      this.scheduling.scheduler.position(job).catch(() => null),
    ]);
    return { job, context: { gpuWorkers: null, running, maxConcurrentJobs: p.quotas.max_concurrent_jobs, position } };
  }

  /**
   * The job waits in the fair scheduler until a worker has a slot for it (docs/scheduling.md); the
   * workers are woken. If Redis cannot take it now, the reconciler enqueues it later.
   */
  private async schedule(job: Job, share: TenantShare): Promise<void> {
    await this.scheduling.port
      .schedule(job, share)
      .catch((err: Error) =>
        this.logger.warn({ job_id: job.id, err: err.message }, 'queue unavailable; the reconciler will enqueue the job'),
      );
  }

  async list(tenantId: string, query: z.infer<typeof JobListQuery>) {
    let modelId: string | undefined;
    if (query.model) modelId = (await this.registry.find(tenantId, query.model))?.id ?? 'mdl_none';
    const rows = await this.jobs.list(tenantId, { ...query, modelId });
    const page = toPage(rows, query.limit, (j) => j);
    return { ...page, data: await Promise.all(page.data.map((j) => this.view(j))) };
  }

  async get(tenantId: string, id: string): Promise<Job> {
    const job = await this.jobs.get(tenantId, id);
    if (!job) throw ApiError.notFound('job', id);
    return job;
  }

  /**
   * The job as API.md shows it; a queued job also says where it stands and what it waits for
   * (`known`: what its submission already learned; a GPU job still asks for the GPU workers).
   */
  async view(job: Job, known?: QueuedContext): Promise<JobView> {
    if (job.status !== 'queued') return jobView(job);
    // One round trip for what it waits for, and its place in the scheduler's order; if Redis
    // cannot say, the place in plain arrival order.
    const [r, place] = await Promise.all([
      known && job.accelerator !== 'gpu' ? known : this.queuedContext(job),
      known?.position ?? this.scheduling.scheduler.position(job).catch(() => this.jobs.arrivalPosition(job)),
    ]);
    let waitingFor: JobView['waiting_for'] = 'capacity';
    if (job.accelerator === 'gpu' && r && r.gpuWorkers === 0) waitingFor = 'gpu';
    else if (r && r.running >= r.maxConcurrentJobs) waitingFor = 'tenant_concurrency_limit';
    return jobView(job, { position: place ?? 1, waitingFor });
  }

  private async queuedContext(job: Job): Promise<QueuedContext | null> {
    const r = await this.jobs.waitContext(job.tenantId, job.accelerator === 'gpu');
    return r && { gpuWorkers: r.gpuWorkers, running: r.running, maxConcurrentJobs: effectiveQuotas(r.plan, r.quotas).max_concurrent_jobs };
  }

  async events(tenantId: string, id: string, query: { limit: number; starting_after?: string }) {
    await this.get(tenantId, id);
    let after = 0n;
    if (query.starting_after) {
      const cursor = await this.jobs.eventSeq(id, query.starting_after);
      if (cursor === null)
        throw ApiError.invalid('invalid_cursor', `starting_after '${query.starting_after}' is not an event of this job`, 'starting_after');
      after = cursor;
    }
    const rows = await this.jobs.events(id, after, query.limit + 1);
    return toPage(rows, query.limit, (e) => ({ ...eventView(e), object: 'job_event' as const }));
  }

  /** One page of an inference job's output; a job with no output yet has none (404 past the pages there are). */
  async output(tenantId: string, id: string, page: number) {
    const job = await this.get(tenantId, id);
    if (job.type !== 'inference')
      throw ApiError.invalid('not_inference', `Job ${id} is a ${job.type} job; only inference jobs have an output`, 'id');
    const found = await this.jobs.outputPage(tenantId, id, page);
    if (!found || found.data === null) {
      if (job.status !== 'succeeded')
        throw ApiError.invalid('output_not_ready', `Job ${id} is ${job.status}; its output is there once it succeeded`, 'id', 409);
      throw ApiError.notFound('output page', String(page), 'page');
    }
    const data = found.data as { predictions?: unknown[]; explanations?: unknown[] };
    return {
      object: 'job_output' as const,
      job_id: id,
      page,
      pages: found.pages,
      has_more: page + 1 < found.pages,
      predictions: data.predictions ?? [],
      ...(data.explanations ? { explanations: data.explanations } : {}),
    };
  }

  /**
   * A queued job never starts: it leaves the queue and is canceled. A running job is flagged and
   * its worker told over pub/sub; it stops within two seconds and ends canceled (libs/jobs).
   */
  async cancel(tenantId: string | null, id: string): Promise<Job> {
    const outcome = await this.scheduling.lifecycle.cancel(tenantId, id);
    if (!outcome) throw ApiError.notFound('job', id);
    if ('finished' in outcome) {
      throw new ApiError(
        409,
        'invalid_request_error',
        'job_finished',
        `Job ${id} has already ${outcome.finished.status}; only queued and running jobs can be canceled`,
      );
    }
    return outcome;
  }

  /**
   * Waits up to `seconds` for the job to end, on its event channel, re-reading the row every
   * second in case a message was missed. Never blocks the event loop.
   */
  async waitFor(job: Job, seconds: number): Promise<Job> {
    if (!isActive(job.status)) return job;
    const deadline = Date.now() + seconds * 1000;
    let wake: () => void = () => undefined;
    const stop = await this.watcher.watch(job.id, (e: JobEventMessage) => {
      if (TERMINAL_EVENTS.includes(e.type)) wake();
    });
    try {
      for (;;) {
        const current = (await this.jobs.byId(job.id))!;
        if (!isActive(current.status)) return current;
        const left = deadline - Date.now();
        if (left <= 0) return current;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(1_000, left));
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    } finally {
      stop();
    }
  }
}

/** The answer to a submission a quota refused: 429 while the tenant has max_queued_jobs queued, 403 past its compute. */
function refusal(p: TenantPrincipal, quota: 'max_queued_jobs' | 'monthly_compute_seconds', count: number): ApiError {
  if (quota === 'max_queued_jobs') {
    return new ApiError(
      429,
      'quota_exceeded_error',
      'max_queued_jobs',
      `The tenant has ${count} queued jobs, its max_queued_jobs; retry when some have started`,
      undefined,
      { 'Retry-After': '10' },
    );
  }
  return new ApiError(
    403,
    'quota_exceeded_error',
    'monthly_compute_seconds',
    `The tenant has used its ${p.quotas.monthly_compute_seconds} compute seconds this month`,
  );
}

/**
 * A batch prediction (`output`) scores a dataset, without explanations, and the dataset has every
 * column the version reads (checked against the named or newest version): a 400 names the ones
 * missing, and the dataset's columns the version does not know.
 */
function checkBatchOutput(body: Extract<CreateJob, { type: 'inference' }>, found: JobTargets): void {
  if (!body.dataset || !found.dataset)
    throw ApiError.invalid('parameter_invalid', 'A batch prediction (output) scores a dataset: give `dataset`, not `inputs`', 'dataset');
  if (body.explain)
    throw ApiError.invalid(
      'parameter_invalid',
      'explain is not available with output (a batch prediction); predict those rows with explain',
      'explain',
    );
  const schema = (found.version?.inputSchema ?? {}) as InputSchema;
  const needed = [
    ...(schema.features ?? []).map((f) => f.name),
    ...(schema.text_field ? [schema.text_field] : []),
    ...(schema.image_field ? [schema.image_field] : []),
  ];
  const columns = datasetColumns(found.dataset);
  const missing = needed.filter((c) => !columns.includes(c));
  if (missing.length === 0) return;
  const unknown = columns.filter((c) => !needed.includes(c) && c !== found.dataset!.label);
  throw ApiError.invalid(
    'dataset_columns_mismatch',
    `Dataset '${found.dataset.id}' lacks the column${missing.length > 1 ? 's' : ''} ${missing.map((c) => `'${c}'`).join(', ')} that version ${found.version?.number} reads` +
      (unknown.length ? `; it has ${unknown.map((c) => `'${c}'`).join(', ')}, which the version does not know` : ''),
    'dataset',
  );
}

/**
 * The version or alias the job names exists (or the model has a version at all), and inline
 * inputs carry the columns the model reads (checked against the given or newest version), from
 * what the submission's batched read found.
 */
function checkVersionChoice(
  model: Model,
  found: JobTargets,
  version: number | undefined,
  alias: string | undefined,
  inputs: Array<Record<string, unknown>> | undefined,
): void {
  if (version !== undefined && !found.version)
    throw ApiError.invalid('version_missing', `Model '${model.name}' has no version ${version}`, 'version');
  if (found.latest === null)
    throw ApiError.invalid('model_not_trained', `Model '${model.name}' has no version yet: train it first`, 'model');
  if (alias && alias !== 'latest' && !found.alias)
    throw ApiError.invalid('alias_missing', `Model '${model.name}' has no alias '${alias}'`, 'alias');
  if (inputs) checkInputs(found.version?.inputSchema, inputs);
}
