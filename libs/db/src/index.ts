export * from './database.js';
export * from './migrate.js';
export * from './pagination.js';
export * from './repositories.js';
export * from './usage.js';
export * from './datasets.js';
export * from './models.js';
export * from './jobs.js';
