export * from './ids.js';
export * from './errors.js';
export * from './plans.js';
export * from './scopes.js';
export * from './paths.js';
export * from './logger.js';
export * from './shutdown.js';
export * from './traffic.js';
