import { describe, expect, it } from '@jest/globals';
import { coalescingPublisher } from './redis.js';

/** A stand-in for ioredis's publish that records what was sent, answering (or failing) when told. */
function fakeRedis(fail = false) {
  const sent: string[] = [];
  return {
    sent,
    publish: (channel: string, message: string) => {
      sent.push(`${channel} ${message}`);
      return fail ? Promise.reject(new Error('redis down')) : Promise.resolve(1);
    },
  };
}

const turn = () => new Promise((r) => setImmediate(r));

describe('coalescingPublisher', () => {
  it('sends the same message to the same channel once per event-loop turn, and settles every caller', async () => {
    const redis = fakeRedis();
    const publish = coalescingPublisher(redis);
    const calls = [publish('a', 'x'), publish('a', 'x'), publish('a', 'y'), publish('b', 'x'), publish('a', 'x')];
    expect(redis.sent).toEqual([]);
    await Promise.all(calls);
    expect(redis.sent).toEqual(['a x', 'a y', 'b x']);
  });

  it('sends again in a later turn: a message asked for after one went out goes out too', async () => {
    const redis = fakeRedis();
    const publish = coalescingPublisher(redis);
    await publish('a', 'x');
    await turn();
    await publish('a', 'x');
    expect(redis.sent).toEqual(['a x', 'a x']);
  });

  it('sends at the end of the turn, after whatever its callers sent before asking', async () => {
    const redis = fakeRedis();
    const publish = coalescingPublisher(redis);
    const done = publish('a', 'wake');
    await redis.publish('a', 'enqueue');
    await done;
    expect(redis.sent).toEqual(['a enqueue', 'a wake']);
  });

  it('fails every caller of a message Redis refused', async () => {
    const publish = coalescingPublisher(fakeRedis(true));
    const results = await Promise.allSettled([publish('a', 'x'), publish('a', 'x')]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
  });
});
