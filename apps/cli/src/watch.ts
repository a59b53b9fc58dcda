import type { Job, JobEvent } from '@app/client';
import cliProgress from 'cli-progress';
import { createInterface } from 'node:readline';
import type { Context } from './context.js';
import { formatNumber, formatSeconds } from './output.js';

export interface Watched {
  job: Job;
  /** Ctrl-C, then "no" to canceling: the job goes on, unwatched. */
  detached: boolean;
  /** Ctrl-C, then "yes": canceled at the user's request. */
  canceledByUser: boolean;
}

/**
 * Follows a job's events until it ends. On a terminal: a progress bar of epochs with loss,
 * validation loss and ETA (a batch prediction's: of rows, with ETA); otherwise one plain line per
 * event. Ctrl-C asks whether to cancel the job: yes cancels it and watches it end, no (or no
 * answer) leaves it running.
 */
export async function watchJob(ctx: Context, job: Job): Promise<Watched> {
  const tty = Boolean(process.stdout.isTTY);
  const stop = new AbortController();
  const view = tty ? new BarView() : new LineView(ctx);
  let asking = false;
  let detached = false;
  let canceledByUser = false;

  const onInterrupt = () => {
    if (asking) return;
    asking = true;
    view.pause();
    void ask(`Cancel ${job.id}? [y/N] `).then(async (yes) => {
      asking = false;
      if (!yes) {
        detached = true;
        stop.abort();
        return;
      }
      canceledByUser = true;
      process.stderr.write(`canceling ${job.id}\n`);
      await ctx.client.jobs.cancel(job.id).catch((err: Error) => process.stderr.write(`cancel: ${err.message}\n`));
    });
  };
  process.on('SIGINT', onInterrupt);
  try {
    view.line(`${job.id}: ${job.type} of ${job.model_id}${job.dataset_id ? ` on ${job.dataset_id}` : ''}`);
    for await (const event of ctx.client.jobs.stream(job.id, { signal: stop.signal })) view.event(event);
  } catch (err) {
    if (!detached) throw err;
  } finally {
    process.off('SIGINT', onInterrupt);
    view.pause();
  }
  if (detached) {
    process.stderr.write(`${job.id} goes on; see it with: aiaas jobs show ${job.id}\n`);
    return { job: await ctx.client.jobs.get(job.id), detached: true, canceledByUser };
  }
  return { job: await ctx.client.jobs.get(job.id), detached: false, canceledByUser };
}

interface View {
  event(e: JobEvent): void;
  line(text: string): void;
  pause(): void;
}

type Progress = {
  epoch?: number;
  epochs?: number;
  loss?: number | null;
  val_loss?: number | null;
  eta_seconds?: number | null;
  /** A batch prediction counts rows instead of epochs. */
  rows_done?: number;
  rows_total?: number;
  percent?: number;
  resumed_from_row?: number;
} & Record<string, unknown>;

const num = (v: unknown) => (typeof v === 'number' ? formatNumber(v) : '-');
const countsRows = (p: Progress) => typeof p.rows_total === 'number';
/** A batch prediction's new attempt goes on after the rows its last one committed. */
const resumed = (p: Progress) => (p.resumed_from_row !== undefined ? `resumed from row ${p.resumed_from_row}` : null);

function describe(e: JobEvent): string | null {
  const d = e.data as Record<string, unknown>;
  switch (e.type) {
    case 'job.queued':
      return 'queued';
    case 'job.started':
      return `started (attempt ${d.attempt ?? 1}${d.worker_id ? `, worker ${d.worker_id}` : ''}${d.backend ? `, ${d.backend}` : ''})`;
    case 'job.retrying':
      return `retrying${d.reason ? `: ${d.reason}` : ''}`;
    case 'job.succeeded':
      return 'succeeded';
    case 'job.failed': {
      const error = (d.error ?? d) as { code?: string; message?: string };
      return `failed${error.message ? `: ${error.message}` : ''}${error.code ? ` (${error.code})` : ''}`;
    }
    case 'job.canceled':
      return 'canceled';
    default:
      return null;
  }
}

/** Not a terminal (a pipe, a file, CI): one line per event, so progress shows in any log. */
class LineView implements View {
  constructor(private readonly ctx: Context) {}

  event(e: JobEvent): void {
    if (e.type === 'job.progress' && countsRows(e.data as Progress)) {
      const p = e.data as Progress;
      const again = resumed(p);
      if (again) this.line(again);
      this.line(`rows ${p.rows_done ?? 0}/${p.rows_total}  ${num(p.percent)}%  eta ${formatSeconds(p.eta_seconds)}`);
      return;
    }
    if (e.type === 'job.progress') {
      const p = e.data as Progress;
      const extra = Object.entries(p)
        .filter(([k, v]) => typeof v === 'number' && !['epoch', 'epochs', 'loss', 'val_loss', 'eta_seconds'].includes(k))
        .map(([k, v]) => `  ${k} ${num(v)}`)
        .join('');
      this.line(
        `epoch ${p.epoch}/${p.epochs}  loss ${num(p.loss)}  val_loss ${num(p.val_loss)}${extra}  eta ${formatSeconds(p.eta_seconds)}`,
      );
      return;
    }
    const text = describe(e);
    if (text) this.line(text);
  }

  line(text: string): void {
    this.ctx.out.line(text);
  }

  pause(): void {}
}

/** A terminal: a live bar per epoch with loss, val_loss and the ETA the worker estimates (a batch prediction's: of rows). */
class BarView implements View {
  private bar: cliProgress.SingleBar | null = null;
  private running = false;

  event(e: JobEvent): void {
    if (e.type !== 'job.progress') {
      const text = describe(e);
      if (text) this.line(text);
      return;
    }
    const p = e.data as Progress;
    const rows = countsRows(p);
    const again = resumed(p);
    if (again) this.line(again);
    const [value, total] = rows ? [p.rows_done ?? 0, p.rows_total ?? 0] : [p.epoch ?? 0, p.epochs ?? 0];
    // `eta` is cli-progress's own estimate; the worker's, from epoch (or chunk) times, goes in `eta_text`.
    const payload = { loss: num(p.loss), val_loss: num(p.val_loss), eta_text: formatSeconds(p.eta_seconds) };
    if (!this.running) {
      // Started at the first progress, and again after a line or a prompt stopped it.
      this.bar ??= new cliProgress.SingleBar(
        {
          format: rows
            ? 'rows {value}/{total} {bar} {percentage}% | ETA {eta_text}'
            : 'epoch {value}/{total} {bar} {percentage}% | loss {loss} | val_loss {val_loss} | ETA {eta_text}',
          hideCursor: true,
          clearOnComplete: false,
          stopOnComplete: false,
          stream: process.stdout,
        },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(total, value, payload);
      this.running = true;
    } else {
      this.bar!.setTotal(total);
      this.bar!.update(value, payload);
    }
  }

  line(text: string): void {
    this.pause();
    process.stdout.write(`${text}\n`);
  }

  pause(): void {
    if (this.running) this.bar?.stop();
    this.running = false;
  }
}

/** Asks on stderr and reads a line from stdin; no answer (end of input, a second Ctrl-C) is no. */
function ask(question: string): Promise<boolean> {
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr });
    let answered = false;
    const done = (yes: boolean) => {
      if (answered) return;
      answered = true;
      rl.close();
      // A pipe on stdin that stays open (a parent process) would otherwise keep the CLI alive.
      (process.stdin as { unref?: () => void }).unref?.();
      resolve(yes);
    };
    rl.on('SIGINT', () => done(false));
    rl.on('close', () => done(false));
    rl.question(`\n${question}`, (answer) => done(/^y(es)?$/i.test(answer.trim())));
  });
}
