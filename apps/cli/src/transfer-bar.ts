import type { UploadProgress } from '@app/client';
import cliProgress from 'cli-progress';

/**
 * The bar of an upload's or a download's bytes, on stderr (stdout stays the result, for pipes),
 * drawn only when stderr is a terminal and the output is not --json: elsewhere nothing is drawn.
 */
export class TransferBar {
  private bar: cliProgress.SingleBar | null = null;
  private readonly started = Date.now();

  constructor(
    private readonly verb: 'uploading' | 'downloading',
    private readonly enabled: boolean,
  ) {}

  static forTerminal(verb: 'uploading' | 'downloading', json: boolean): TransferBar {
    return new TransferBar(verb, Boolean(process.stderr.isTTY) && !json);
  }

  /** For an upload's `onProgress`. */
  readonly onUpload = (p: UploadProgress): void => this.update(p.sentBytes, p.totalBytes);

  update(doneBytes: number, totalBytes: number | null): void {
    if (!this.enabled || totalBytes === null) return;
    const payload = {
      done: formatBytes(doneBytes),
      size: formatBytes(totalBytes),
      rate: `${formatBytes(doneBytes / Math.max(0.001, (Date.now() - this.started) / 1000))}/s`,
    };
    if (!this.bar) {
      this.bar = new cliProgress.SingleBar(
        {
          format: `${this.verb} {bar} {percentage}% | {done}/{size} | {rate}`,
          hideCursor: true,
          clearOnComplete: false,
          stopOnComplete: false,
          stream: process.stderr,
          fps: 10,
        },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(totalBytes, doneBytes, payload);
    } else this.bar.update(doneBytes, payload);
  }

  stop(): void {
    this.bar?.stop();
    this.bar = null;
  }
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${Math.round(n)} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let i = 0;
  for (; v >= 1024 && i < units.length - 1; i++) v /= 1024;
  return `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}
