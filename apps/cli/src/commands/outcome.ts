import type { Job } from '@app/client';

/**
 * A job that ended failed or canceled, where the command needed it to succeed: exit code 1.
 * `notes`: more lines under the error (what the job kept, say).
 */
export class JobEndedBadly extends Error {
  override readonly name = 'JobEndedBadly';
  constructor(
    readonly job: Job,
    notes: string[] = [],
  ) {
    super(
      `${job.id} ${job.status}${job.error ? `: ${job.error.message} (${job.error.code})` : ''}${notes.map((n) => `\n  ${n}`).join('')}`,
    );
  }
}

/** 0 when the job succeeded or is still going (not waited for), 1 when it failed or was canceled. */
export function exitCodeOf(job: Job): number {
  return job.status === 'failed' || job.status === 'canceled' ? 1 : 0;
}
