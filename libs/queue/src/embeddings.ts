import type { AppConfig } from '@app/config';
import type { Redis } from 'ioredis';
import { redisKey } from './redis.js';

/**
 * Requests to foundation models (POST /v1/embeddings, POST /v1/foundation-models/{id}/predict),
 * on the sync inference path's transport: the API pushes one request on this list and waits on
 * its own reply channel; a worker takes many at once, batches the requests of every tenant that
 * name the same model into one encoder call, and publishes the replies. Nothing is written to
 * PostgreSQL (an embedding is an answer, not a job): a request with no reply in time is a 503.
 */
export interface FoundationPayload {
  id: string;
  tenantId: string;
  model: string;
  op: 'embed' | 'classify';
  /** Texts, or images as base64 of their PNG/JPEG bytes. */
  inputs: string[];
  replyTo: string;
  /** Epoch ms after which nobody waits for the answer: the worker skips the request. */
  deadline: number;
}

export type FoundationReply =
  | {
      id: string;
      ok: true;
      /** embed: each vector as base64 of little-endian float32. */
      vectors?: string[];
      tokens?: number[];
      truncated?: boolean[];
      /** classify: probabilities per input, in the model's label order. */
      probabilities?: number[][];
      seconds: number;
    }
  | { id: string; ok: false; error: { code: string; message: string; index?: number } };

/** A plain Redis list (as the predict queue): one RPUSH per request, one BLMPOP per take. */
export class FoundationQueue {
  readonly key: string;

  constructor(
    config: Pick<AppConfig, 'redisPrefix'>,
    private readonly redis: Redis,
  ) {
    this.key = redisKey(config, 'foundation', 'requests');
  }

  async add(payload: FoundationPayload): Promise<void> {
    await this.redis.rpush(this.key, JSON.stringify(payload));
  }

  /** Takes up to `max` requests, waiting up to `timeoutSeconds` for one. Needs a connection of its own. */
  async take(blocking: Redis, max: number, timeoutSeconds: number): Promise<FoundationPayload[]> {
    const got = (await blocking.call('BLMPOP', String(timeoutSeconds), '1', this.key, 'LEFT', 'COUNT', String(max))) as [string, string[]] | null;
    return got ? got[1].map((raw) => JSON.parse(raw) as FoundationPayload) : [];
  }
}

/** The channel on which workers publish replies (a JSON array of FoundationReply) meant for one API instance. */
export function foundationRepliesChannel(config: Pick<AppConfig, 'redisPrefix'>, instanceId: string): string {
  return redisKey(config, 'foundation', 'replies', instanceId);
}

/** float32 vectors over JSON: base64 of their little-endian bytes (exact, and a third of the text). */
export function encodeVector(v: Float32Array): string {
  const le = new Float32Array(v);
  return Buffer.from(le.buffer, le.byteOffset, le.byteLength).toString('base64');
}

export function decodeVector(b64: string): Float32Array {
  const bytes = Buffer.from(b64, 'base64');
  const out = new Float32Array(bytes.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = bytes.readFloatLE(i * 4);
  return out;
}
