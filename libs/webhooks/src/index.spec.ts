import { describe, expect, it } from '@jest/globals';
import * as webhooks from '@app/webhooks';

describe('@app/webhooks', () => {
  it('exports the building blocks under the path alias', () => {
    for (const name of ['newSecret', 'secretBytes', 'encryptSecret', 'decryptSecret', 'parseEncryptionKey', 'sign', 'headersFor', 'verify',
      'parseSchedule', 'nextDelayMs', 'retryAfterMs', 'checkDestination', 'parseAllowedHosts', 'deliver', 'closeDeliveryAgents']) {
      expect(typeof (webhooks as Record<string, unknown>)[name]).toBe('function');
    }
    expect(webhooks.DEFAULT_SCHEDULE).toHaveLength(7);
    expect(new webhooks.DestinationRefused('dns_failed', 'x')).toBeInstanceOf(Error);
  });
});
