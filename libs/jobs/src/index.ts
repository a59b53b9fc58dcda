export * from './effects.js';
export * from './lifecycle.js';
export { ACTIVE, isActive, isTerminal, type JobStatus, STATUSES, TERMINAL } from '@app/common';
export type { Moved } from './transition.js';
