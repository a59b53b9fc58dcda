import { isActive } from '@app/common';
import { eventView, type Job, JobRepository } from '@app/db';
import { type JobEventMessage, TERMINAL_EVENTS } from '@app/queue';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { JobWatcher } from './job-watcher.js';

const KEEPALIVE_MS = 15_000;

/**
 * `Last-Event-ID` as the event sequence number it must be. Anything else (text, a fraction, 1e308)
 * starts from the beginning: a fraction would throw in `BigInt()` after the response was taken
 * over, and 1e308 skipped the whole history.
 */
export function resumePoint(header: string | string[] | undefined): number {
  const v = (Array.isArray(header) ? header[0] : header)?.trim();
  return v && /^\d{1,15}$/.test(v) ? Number(v) : 0;
}

/**
 * Server-Sent Events for one job: its history from the events table (after `Last-Event-ID` when
 * the client resumes), then live events from pub/sub, in order and without repeats (each event's
 * sequence number is its SSE id), until the terminal event. Subscribing before reading the
 * history means no event falls between the two.
 */
export async function streamJobEvents(opts: {
  job: Job;
  req: FastifyRequest;
  reply: FastifyReply;
  repo: JobRepository;
  watcher: JobWatcher;
}): Promise<void> {
  const { job, req, reply, repo, watcher } = opts;
  let lastSeq = resumePoint(req.headers['last-event-id']);
  let ended = false;
  const buffered: JobEventMessage[] = [];
  let live = false;

  reply.hijack();
  const raw = reply.raw;
  raw.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache',
    Connection: 'keep-alive',
    'X-Accel-Buffering': 'no',
    'Request-Id': String(req.id),
  });
  // Sent now: Node holds the headers until the first write, and a client resuming after the last
  // event has nothing to receive yet, so it saw no answer at all until the 15 s keep-alive (found by
  // the fault suite's fuzz pass).
  raw.flushHeaders();

  let close: () => void = () => undefined;
  // Assigned once subscribed. A client may leave before that (the headers went out at once): `end`
  // then ran into `stop` before its initialization, a ReferenceError in the 'close' handler that
  // killed the whole API process (found by the fault suite's fuzz pass).
  let stop: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (close = resolve));
  const write = (e: JobEventMessage) => {
    if (ended || e.seq <= lastSeq) return;
    lastSeq = e.seq;
    raw.write(
      `id: ${e.seq}\nevent: ${e.type}\ndata: ${JSON.stringify({ id: e.id, object: 'job_event', job_id: e.job_id, type: e.type, data: e.data, created_at: e.created_at })}\n\n`,
    );
    if (TERMINAL_EVENTS.includes(e.type)) end();
  };
  const end = () => {
    if (ended) return;
    ended = true;
    clearInterval(keepalive);
    stop();
    raw.end();
    close();
  };
  const keepalive = setInterval(() => raw.write(': keep-alive\n\n'), KEEPALIVE_MS);
  raw.on('close', end);

  stop = await watcher.watch(job.id, (e) => (live ? write(e) : buffered.push(e)));
  if (ended) return stop(); // the client left while we subscribed
  // History first (in pages), then what arrived meanwhile, then live.
  for (;;) {
    const page = await repo.events(job.id, BigInt(lastSeq), 500);
    for (const e of page) write(eventView(e) as JobEventMessage);
    if (page.length < 500 || ended) break;
  }
  buffered.sort((a, b) => a.seq - b.seq).forEach(write);
  live = true;
  if (!ended) {
    // The job may have ended before we subscribed and after the history was read: look once more.
    const current = await repo.byId(job.id);
    if (current && !isActive(current.status)) {
      for (const e of await repo.events(job.id, BigInt(lastSeq), 500)) write(eventView(e) as JobEventMessage);
      end();
    }
  }
  await finished;
}
