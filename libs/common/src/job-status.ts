/**
 * Every status of a job (the `JobStatus` enum of prisma/schema.prisma), in the order a job moves
 * through them. Changed only by libs/jobs's JobLifecycle, which re-exports these.
 */
export const STATUSES = ['queued', 'running', 'succeeded', 'failed', 'canceled'] as const;
export type JobStatus = (typeof STATUSES)[number];

/** A job that may still run: it holds its tenant's queue or concurrency slot, and can be canceled. */
export const ACTIVE: readonly JobStatus[] = ['queued', 'running'];

/** A job that has ended: nothing changes it again but an admin's retry of a failed one. */
export const TERMINAL: readonly JobStatus[] = ['succeeded', 'failed', 'canceled'];

export function isActive(status: string): boolean {
  return (ACTIVE as readonly string[]).includes(status);
}

export function isTerminal(status: string): boolean {
  return (TERMINAL as readonly string[]).includes(status);
}
