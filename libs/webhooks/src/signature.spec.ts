import { describe, expect, it } from '@jest/globals';
import { Webhook } from 'standardwebhooks';
import { newSecret } from './secrets.js';
import { headersFor, sign, SignatureVerificationError, USER_AGENT, verify } from './signature.js';

const now = () => Math.floor(Date.now() / 1000);
const body = JSON.stringify({ type: 'job.succeeded', timestamp: '2025-01-01T00:00:00.000Z', data: { id: 'job_1', note: 'héllo ✓' } });

describe('Standard Webhooks signatures', () => {
  it('signs as the reference implementation does', () => {
    const secret = newSecret();
    const ts = now();
    expect(sign({ id: 'msg_1', timestamp: ts, body, secrets: [secret] })).toBe(
      new Webhook(secret).sign('msg_1', new Date(ts * 1000), body),
    );
  });

  it('gives the Standard Webhooks headers, which the reference implementation verifies', () => {
    const secret = newSecret();
    const headers = headersFor({ id: 'msg_2', timestamp: now(), body, secrets: [secret] });
    expect(headers).toEqual({
      'webhook-id': 'msg_2',
      'webhook-timestamp': expect.stringMatching(/^\d+$/),
      'webhook-signature': expect.stringMatching(/^v1,[A-Za-z0-9+/]{43}=$/),
      'content-type': 'application/json',
      'user-agent': USER_AGENT,
    });
    expect(new Webhook(secret).verify(body, headers)).toEqual(JSON.parse(body));
    expect(() => new Webhook(newSecret()).verify(body, headers)).toThrow('No matching signature');
    expect(() => new Webhook(secret).verify(`${body} `, headers)).toThrow('No matching signature');
  });

  it('sends both signatures during a rotation, so a receiver holding either secret verifies', () => {
    const [next, previous] = [newSecret(), newSecret()];
    const headers = headersFor({ id: 'msg_3', timestamp: now(), body, secrets: [next, previous] });
    expect(headers['webhook-signature'].split(' ')).toHaveLength(2);
    for (const s of [next, previous]) {
      expect(new Webhook(s).verify(body, headers)).toEqual(JSON.parse(body));
      expect(() => verify(body, headers, s)).not.toThrow();
    }
    expect(() => new Webhook(newSecret()).verify(body, headers)).toThrow();
    expect(() => verify(body, headers, newSecret())).toThrow(SignatureVerificationError);
  });

  it('verifies what the reference implementation signs, from raw bytes, with case-insensitive headers', () => {
    const secret = newSecret();
    const ts = now();
    const signature = new Webhook(secret).sign('msg_4', new Date(ts * 1000), body);
    const headers = { 'Webhook-Id': 'msg_4', 'Webhook-Timestamp': String(ts), 'Webhook-Signature': `v2,ignored ${signature}` };
    expect(() => verify(Buffer.from(body), headers, secret)).not.toThrow();
  });

  it('refuses missing headers, a wrong body, an old or future timestamp, and unknown versions', () => {
    const secret = newSecret();
    const ts = now();
    const headers = headersFor({ id: 'msg_5', timestamp: ts, body, secrets: [secret] });
    expect(() => verify(body, { ...headers, 'webhook-id': '' }, secret)).toThrow(/missing/);
    expect(() => verify('{}', headers, secret)).toThrow(/no matching signature/);
    expect(() => verify(body, { ...headers, 'webhook-id': 'msg_6' }, secret)).toThrow(/no matching signature/);
    expect(() => verify(body, { ...headers, 'webhook-signature': headers['webhook-signature'].replace('v1,', 'v2,') }, secret)).toThrow(
      /no matching signature/,
    );
    expect(() => verify(body, headers, secret, 300, ts + 301)).toThrow(/too old/);
    expect(() => verify(body, headers, secret, 300, ts - 301)).toThrow(/too new/);
    expect(() => verify(body, headers, secret, 300, ts + 299)).not.toThrow();
    expect(() => verify(body, { ...headers, 'webhook-timestamp': '12abc' }, secret)).toThrow(/Unix time/);
  });

  it('refuses to sign without a secret or with a timestamp that is not whole seconds', () => {
    expect(() => sign({ id: 'msg_7', timestamp: now(), body, secrets: [] })).toThrow(/at least one/);
    expect(() => sign({ id: 'msg_7', timestamp: Date.now() / 1000, body, secrets: [newSecret()] })).toThrow(/whole seconds/);
  });
});
