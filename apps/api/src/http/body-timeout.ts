import { ApiError } from '@app/common';
import { type Readable, Transform, type TransformCallback } from 'node:stream';

export interface BodyTimeouts {
  /** Longest pause between two pieces of the body. */
  idleMs: number;
  /** Longest time to receive the whole body. */
  totalMs: number;
}

/**
 * A request body with deadlines: it fails with 408 when the client pauses longer than `idleMs`
 * or sends for longer than `totalMs`, and with an error when the client goes away mid-body, so
 * that whoever reads it (Fastify's JSON parser, an upload's row parser) stops at once instead of
 * waiting on a socket that will never send again.
 */
export class TimedBody extends Transform {
  /** Fastify compares it with the body limit when a preParsing hook replaces the payload. */
  receivedEncodedLength = 0;
  private draining = false;
  private idle: NodeJS.Timeout;
  private readonly total: NodeJS.Timeout;

  constructor(
    private readonly source: Readable,
    private readonly timeouts: BodyTimeouts,
  ) {
    super();
    // Its readers attach their own listener; a body that fails after its route has answered must not crash the process.
    this.on('error', () => undefined);
    this.idle = setTimeout(() => this.expire('idle'), timeouts.idleMs);
    this.total = setTimeout(() => this.expire('total'), timeouts.totalMs);
    const gone = () => {
      if (!source.readableEnded && !this.destroyed)
        this.destroy(ApiError.invalid('client_closed', 'The client closed the connection before the body ended'));
    };
    source.on('error', gone);
    source.on('close', gone);
    source.on('data', () => this.draining && this.idle.refresh());
    source.on('end', () => this.draining && this.clear());
    source.pipe(this);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.receivedEncodedLength += chunk.length;
    this.idle.refresh();
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    this.clear();
    done();
  }

  override _destroy(err: Error | null, done: (error?: Error | null) => void): void {
    this.clear();
    this.source.unpipe(this);
    done(err);
  }

  /**
   * The answer has been sent: whatever of the body is still coming is read and dropped, so that
   * the next request on a kept-alive connection is parsed (Node only discards an unread body
   * itself when nobody piped it). A client that then stalls loses its connection at the deadline.
   */
  drain(): void {
    if (this.source.readableEnded) return;
    this.draining = true;
    this.source.unpipe(this);
    this.source.resume();
  }

  private expire(which: 'idle' | 'total'): void {
    if (this.draining) {
      this.source.destroy();
      return;
    }
    const message =
      which === 'idle'
        ? `The body stalled: nothing arrived for ${this.timeouts.idleMs} ms`
        : `The body took longer than ${this.timeouts.totalMs} ms to arrive`;
    this.destroy(new ApiError(408, 'invalid_request_error', 'body_timeout', message, undefined, { Connection: 'close' }));
  }

  private clear(): void {
    clearTimeout(this.idle);
    clearTimeout(this.total);
  }
}
