import type { UploadProgress } from '@app/client';
import cliProgress from 'cli-progress';

/**
 * The bar of an upload's bytes, on stderr (stdout stays the result, for pipes), drawn only when
 * stderr is a terminal and the output is not --json: elsewhere nothing is drawn.
 */
export class UploadBar {
  private bar: cliProgress.SingleBar | null = null;
  private readonly started = Date.now();

  constructor(private readonly enabled: boolean) {}

  static forTerminal(json: boolean): UploadBar {
    return new UploadBar(Boolean(process.stderr.isTTY) && !json);
  }

  /** For `onProgress`. */
  readonly update = (p: UploadProgress): void => {
    if (!this.enabled || p.totalBytes === null) return;
    const payload = {
      sent: formatBytes(p.sentBytes),
      size: formatBytes(p.totalBytes),
      rate: `${formatBytes(p.sentBytes / Math.max(0.001, (Date.now() - this.started) / 1000))}/s`,
    };
    if (!this.bar) {
      this.bar = new cliProgress.SingleBar(
        {
          format: 'uploading {bar} {percentage}% | {sent}/{size} | {rate}',
          hideCursor: true,
          clearOnComplete: false,
          stopOnComplete: false,
          stream: process.stderr,
          fps: 10,
        },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(p.totalBytes, p.sentBytes, payload);
    } else this.bar.update(p.sentBytes, payload);
  };

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
