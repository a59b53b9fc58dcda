import type { FileObject } from '@app/client';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { access, constants, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type Context, Interrupted, UsageError } from './context.js';
import { TransferBar } from './transfer-bar.js';

/** Fails as a usage error, before anything is asked of the API, when `out` cannot be written. */
export async function checkWritable(out: string): Promise<void> {
  const folder = dirname(resolve(out));
  try {
    await access(folder, constants.W_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(`cannot write ${out}: ${code === 'ENOENT' ? `no such folder ${folder}` : (err as Error).message}`);
  }
  if ((await stat(out).catch(() => null))?.isDirectory()) throw new UsageError(`${out} is a folder: --out names the file to write`);
}

/**
 * Streams an output file to `out`: into a temporary file in the same folder (so that the rename is
 * atomic), checked against the file's size and sha256, then renamed over `out`. A failure or
 * Ctrl-C removes the temporary file and leaves `out` as it was.
 */
export async function saveFile(ctx: Context, file: FileObject, out: string): Promise<void> {
  const part = join(dirname(out), `.${basename(out)}.${randomBytes(4).toString('hex')}.part`);
  const stop = new AbortController();
  const onInterrupt = () => stop.abort();
  process.once('SIGINT', onInterrupt);
  const bar = TransferBar.forTerminal('downloading', ctx.json);
  try {
    const body = await ctx.client.files.download(file.id, { signal: stop.signal });
    await pipeline(body, new FileCheck(file, (n) => bar.update(n, file.bytes)), createWriteStream(part, { flags: 'wx' }), {
      signal: stop.signal,
    });
    await rename(part, out);
  } catch (err) {
    await rm(part, { force: true });
    if (stop.signal.aborted)
      throw new Interrupted(`stopped: ${out} was not written; ${file.id} stays on the API (aiaas files download ${file.id} --out ${out})`);
    throw err;
  } finally {
    process.off('SIGINT', onInterrupt);
    bar.stop();
  }
}

/** Streams an output file to stdout, checked as it goes (a mismatch is an error after the bytes). */
export async function printFile(ctx: Context, file: FileObject): Promise<void> {
  const body = await ctx.client.files.download(file.id);
  try {
    await pipeline(body, new FileCheck(file), process.stdout);
  } catch (err) {
    // The reader went away (`| head`): what it read is what it wanted.
    if ((err as NodeJS.ErrnoException).code === 'EPIPE') return;
    throw err;
  }
}

/** Passes the bytes through, counting and hashing them; at the end, fails unless they are the file the API described. */
class FileCheck extends Transform {
  private readonly hash = createHash('sha256');
  private bytes = 0;

  constructor(
    private readonly file: FileObject,
    private readonly onBytes?: (bytes: number) => void,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.onBytes?.(this.bytes);
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    const sha256 = this.hash.digest('hex');
    if (this.bytes === this.file.bytes && sha256 === this.file.sha256) return done();
    done(
      new Error(
        `the download of ${this.file.id} is not the file the API describes: ${this.bytes} bytes, sha256 ${sha256}, for ${this.file.bytes} bytes, sha256 ${this.file.sha256}`,
      ),
    );
  }
}
