import type { AppConfig } from '@app/config';
import { redisKey, type RedisClient } from './redis.js';
import { RequestList } from './request-list.js';

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

export class FoundationQueue extends RequestList<FoundationPayload> {
  constructor(config: Pick<AppConfig, 'redisPrefix'>, redis: RedisClient) {
    super(redisKey(config, 'foundation', 'requests'), redis);
  }
}

/** The channel on which workers publish replies (a JSON array of FoundationReply) meant for one API instance. */
export function foundationRepliesChannel(config: Pick<AppConfig, 'redisPrefix'>, instanceId: string): string {
  return redisKey(config, `i:${instanceId}`, 'foundation-replies');
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
