export * from './redis.js';
export * from './jobs.js';
