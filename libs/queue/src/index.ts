export * from './redis.js';
export * from './jobs.js';
export * from './job-queues.js';
export * from './scheduler.js';
export * from './predict.js';
export * from './predict-queue.js';
export * from './cluster-metrics.js';
export * from './load-checks.js';
