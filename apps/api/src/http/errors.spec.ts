import { describe, expect, it } from '@jest/globals';
import { toApiError } from './errors.js';

describe('toApiError', () => {
  it('answers 503 with Retry-After, never 500, while Redis or a cluster slot has no master', () => {
    for (const message of [
      'CLUSTERDOWN The cluster is down',
      'Too many Cluster redirections. Last error: Error: Connection is closed.',
      'Command timed out',
    ]) {
      const e = toApiError(new Error(message), 'req_1');
      expect(e.status).toBe(503);
      expect(e.code).toBe('redis_unavailable');
      expect(e.headers['Retry-After']).toBe('2');
      expect(e.message).not.toContain(message);
    }
  });

  it('keeps 500 for what is our bug', () => {
    expect(toApiError(new Error('WRONGTYPE Operation against a key holding the wrong kind of value'), 'req_2').status).toBe(500);
  });
});
