import { describe, expect, it } from '@jest/globals';
import * as webhooks from '@app/webhooks';

// The building blocks work as one through the path alias (what the API and the worker import): a secret
// made, encrypted at rest and read back signs a message that verify accepts, and refuses once altered.
describe('@app/webhooks', () => {
  it('signs with a secret that survives encryption at rest, and verifies what it signed', () => {
    const secret = webhooks.newSecret();
    const key = webhooks.parseEncryptionKey(Buffer.alloc(32, 7).toString('hex'));
    const stored = webhooks.encryptSecret(secret, key);
    expect(stored).not.toContain(secret);
    const readBack = webhooks.decryptSecret(stored, key);
    expect(readBack).toBe(secret);
    const now = Math.floor(Date.now() / 1000);
    const body = JSON.stringify({ type: 'job.succeeded', data: { id: 'job_1' } });
    const headers = webhooks.headersFor({ id: 'msg_1', timestamp: now, body, secrets: [readBack] });
    expect(() => webhooks.verify(body, headers, secret, 300, now)).not.toThrow();
    expect(() => webhooks.verify(body.replace('job_1', 'job_2'), headers, secret, 300, now)).toThrow(webhooks.SignatureVerificationError);
    expect(() => webhooks.verify(body, headers, webhooks.newSecret(), 300, now)).toThrow(webhooks.SignatureVerificationError);
  });

  it('exports the retry schedule and the destination guard', () => {
    expect(webhooks.DEFAULT_SCHEDULE).toHaveLength(7);
    expect(webhooks.nextDelayMs(webhooks.DEFAULT_SCHEDULE, 1)).toBeGreaterThan(0);
    expect(new webhooks.DestinationRefused('dns_failed', 'x')).toBeInstanceOf(Error);
  });
});
