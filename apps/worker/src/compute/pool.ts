import { type BackendInfo, type EpochProgress, InputError, MlError, type MlErrorCode } from '@app/ml';
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ComputeOp, ComputeOps, FromChild, SerializedError, ToChild } from './protocol.js';

/** The child running a job exited (crashed, OOM, killed from outside): a transient failure, retried. */
export class ChildCrashed extends Error {
  override readonly name = 'ChildCrashed';
}

export interface PoolOptions {
  size: number;
  /** TF_BACKEND, passed to each child's initBackend */
  forcedBackend: string | null;
  /** After an abort, how long a child has to stop before it is killed and replaced */
  cancelKillMs: number;
  /** Inference children: the byte budget of each child's cache of loaded models (0: none). */
  modelCacheBytes?: number;
  /** Called for each child once it is ready (logging, tests that look for the pid). */
  onChild?: (pid: number, backend: BackendInfo) => void;
  onError?: (message: string) => void;
}

interface Running {
  id: number;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  onEpoch?: (p: EpochProgress) => void;
  aborted: boolean;
}

interface Child {
  proc: ChildProcess;
  ready: boolean;
  running: Running | null;
}

const CHILD_FILE = fileURLToPath(new URL('./child.js', import.meta.url));

function revive(e: SerializedError): Error {
  if (e.name === 'MlError' && e.code) return new MlError(e.code as MlErrorCode, e.message, e.details ?? []);
  if (e.name === 'InputError' && e.index !== undefined) return new InputError(e.index, e.message);
  const err = new Error(e.message);
  err.name = e.name;
  return err;
}

/**
 * A fixed number of long-lived child processes that run TF.js (libs/ml) for the worker, one
 * operation each at a time. The parent's event loop, which renews BullMQ's job locks, never runs
 * TF.js. A child that dies is replaced; the operation it ran fails with `ChildCrashed`.
 */
export class ComputePool {
  private readonly children = new Set<Child>();
  private readonly waiters: Array<(c: Child) => void> = [];
  private seq = 0;
  private closing = false;
  backend: BackendInfo | null = null;

  constructor(private readonly opts: PoolOptions) {}

  /** Starts every child and waits until each has its backend; fails if the backend cannot load. */
  async start(): Promise<BackendInfo> {
    const infos = await Promise.all(Array.from({ length: this.opts.size }, () => this.spawn()));
    this.backend = infos[0];
    return this.backend;
  }

  pids(): number[] {
    return [...this.children].map((c) => c.proc.pid!).filter(Boolean);
  }

  /** Runs one operation in an idle child. `signal` aborts it (libs/ml's `canceled`, or the child is killed). */
  async run<Op extends ComputeOp>(
    op: Op,
    args: ComputeOps[Op]['args'],
    options: { signal?: AbortSignal; onEpoch?: (p: EpochProgress) => void } = {},
  ): Promise<ComputeOps[Op]['result']> {
    if (options.signal?.aborted) throw new MlError('canceled', 'canceled before it started');
    const child = await this.acquire();
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      let killTimer: NodeJS.Timeout | undefined;
      const onAbort = () => {
        running.aborted = true;
        child.proc.send({ type: 'abort', id } satisfies ToChild);
        // A child stuck in a long synchronous step (a big predict, a slow batch) is killed and replaced.
        killTimer = setTimeout(() => child.proc.kill('SIGKILL'), this.opts.cancelKillMs);
      };
      const settle = () => {
        clearTimeout(killTimer);
        options.signal?.removeEventListener('abort', onAbort);
      };
      const running: Running = {
        id,
        aborted: false,
        onEpoch: options.onEpoch,
        resolve: (v) => {
          settle();
          resolve(v as ComputeOps[Op]['result']);
        },
        reject: (e) => {
          settle();
          reject(e);
        },
      };
      child.running = running;
      options.signal?.addEventListener('abort', onAbort, { once: true });
      child.proc.send({ type: 'run', id, op, args } satisfies ToChild, (err) => {
        if (err) child.proc.kill('SIGKILL');
      });
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(
      [...this.children].map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.proc.exitCode !== null || c.proc.signalCode !== null) return resolve();
            c.proc.once('exit', () => resolve());
            c.proc.kill('SIGKILL');
          }),
      ),
    );
  }

  private acquire(): Promise<Child> {
    for (const c of this.children) {
      if (c.ready && !c.running) {
        c.running = { id: 0, resolve: () => undefined, reject: () => undefined, aborted: false };
        return Promise.resolve(c);
      }
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private release(c: Child): void {
    c.running = null;
    const next = this.waiters.shift();
    if (next) {
      c.running = { id: 0, resolve: () => undefined, reject: () => undefined, aborted: false };
      next(c);
    }
  }

  private spawn(): Promise<BackendInfo> {
    const proc = fork(CHILD_FILE, [this.opts.forcedBackend ?? '', String(this.opts.modelCacheBytes ?? 0)], {
      execArgv: [],
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const child: Child = { proc, ready: false, running: null };
    this.children.add(child);
    return new Promise<BackendInfo>((resolve, reject) => {
      proc.on('message', (msg: FromChild) => {
        switch (msg.type) {
          case 'ready':
            child.ready = true;
            this.opts.onChild?.(proc.pid!, msg.backend);
            resolve(msg.backend);
            this.release(child);
            break;
          case 'init_error':
            reject(revive(msg.error));
            break;
          case 'epoch':
            if (child.running?.id === msg.id) child.running.onEpoch?.(msg.progress);
            break;
          case 'done':
          case 'error': {
            const r = child.running;
            if (!r || r.id !== msg.id) break;
            this.release(child);
            if (msg.type === 'done') r.resolve(msg.result);
            else r.reject(revive(msg.error));
            break;
          }
        }
      });
      proc.on('error', (err) => this.opts.onError?.(`compute child: ${err.message}`));
      proc.on('exit', (code, signal) => {
        this.children.delete(child);
        const r = child.running;
        child.running = null;
        if (!child.ready) reject(new Error(`compute child exited (${code ?? signal}) before it was ready`));
        if (r && r.id !== 0) {
          r.reject(
            r.aborted
              ? new MlError('canceled', 'canceled (the compute process was stopped)')
              : new ChildCrashed(`the compute process exited (${signal ?? code}) during the job`),
          );
        }
        if (!this.closing && child.ready) {
          this.spawn().catch((err: Error) => {
            this.opts.onError?.(`could not replace a compute child: ${err.message}`);
          });
        }
      });
    });
  }
}
