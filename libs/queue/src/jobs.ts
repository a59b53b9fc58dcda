import type { AppConfig } from '@app/config';
import { redisKey } from './redis.js';

/**
 * The contract between the API (which writes jobs to PostgreSQL, then enqueues their ids) and
 * the workers (which consume the queues). Jobs carry ids, never data: the worker re-reads the row.
 */
export type JobType = 'training' | 'evaluation' | 'inference';
export const JOB_TYPES: readonly JobType[] = ['training', 'evaluation', 'inference'];

/** A job's BullMQ payload. The BullMQ job id is the database job id, so a double enqueue is a no-op. */
export interface JobPayload {
  jobId: string;
  tenantId: string;
}

/** The queue a job goes to: one per type, and a separate one per type for jobs that need a GPU. */
export function queueName(type: JobType, accelerator: string | null | undefined): string {
  return accelerator === 'gpu' ? `${type}-gpu` : type;
}

export const ALL_QUEUES = JOB_TYPES.flatMap((t) => [queueName(t, null), queueName(t, 'gpu')]);

/**
 * BullMQ's key prefix of one queue: the queue is its own unit (hash tag), as BullMQ's scripts need
 * every key of a queue in one slot, and different queues spread over a cluster's slots.
 */
export function bullPrefix(config: Pick<AppConfig, 'redisPrefix'>, queue: string): string {
  return redisKey(config, `bull:${queue}`);
}

/** Pub/sub channel of one job's events (the JSON of the event row), for streams and waiters. */
export function jobEventsChannel(config: Pick<AppConfig, 'redisPrefix'>, jobId: string): string {
  return redisKey(config, `job:${jobId}`, 'events');
}

/** Pub/sub channel on which the API asks workers to stop a running job (the message is the job id). */
export function jobCancelChannel(config: Pick<AppConfig, 'redisPrefix'>): string {
  return redisKey(config, 'bus', 'cancel');
}

/** The event types of API.md, in a job's life. */
export type JobEventType = 'job.queued' | 'job.started' | 'job.progress' | 'job.retrying' | 'job.succeeded' | 'job.failed' | 'job.canceled';
export const TERMINAL_EVENTS: readonly JobEventType[] = ['job.succeeded', 'job.failed', 'job.canceled'];

export interface JobEventMessage {
  id: string;
  job_id: string;
  seq: number;
  type: JobEventType;
  data: Record<string, unknown>;
  created_at: string;
}

/** The BullMQ queue of webhook deliveries: one job per outbox message, its id the message id (the `webhook-id`). */
export const WEBHOOKS_QUEUE = 'webhooks';
