import { Aiaas } from '@app/client';
import type { Command } from 'commander';
import { Output } from './output.js';

export const DEFAULT_URL = 'http://127.0.0.1:3000';

/** Options every command takes (before or after its name). */
export interface GlobalOptions {
  url?: string;
  apiKey?: string;
  json?: boolean;
  verbose?: boolean;
}

export interface Context {
  client: Aiaas;
  out: Output;
  json: boolean;
}

/** A mistake in how the command was called or in a local file: exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Ctrl-C stopped what the command was doing (a download): exit code 130. */
export class Interrupted extends Error {
  override readonly name = 'Interrupted';
}

/**
 * The client and output of one command, from flags or the environment: `AIAAS_URL`,
 * `AIAAS_API_KEY`; admin commands take `AIAAS_ADMIN_KEY` first, so one shell can hold both keys.
 */
export function contextOf(cmd: Command, kind: 'tenant' | 'admin' = 'tenant'): Context {
  const g = cmd.optsWithGlobals<GlobalOptions>();
  // An empty variable counts as unset.
  const baseUrl = g.url || process.env.AIAAS_URL || DEFAULT_URL;
  const apiKey = g.apiKey || (kind === 'admin' ? process.env.AIAAS_ADMIN_KEY : undefined) || process.env.AIAAS_API_KEY;
  if (!apiKey) throw new UsageError(`no API key: set AIAAS_API_KEY${kind === 'admin' ? ' or AIAAS_ADMIN_KEY' : ''}, or pass --api-key`);
  const client = new Aiaas({
    baseUrl,
    apiKey,
    headers: { 'User-Agent': 'aiaas-cli/1' },
    onRetry: g.verbose
      ? ({ attempt, delayMs, status, error }) =>
          process.stderr.write(`retry ${attempt} in ${Math.round(delayMs)} ms (${status ?? (error as Error).message})\n`)
      : undefined,
  });
  return { client, out: new Output(Boolean(g.json)), json: Boolean(g.json) };
}

/** Option parsers that fail as usage errors. */
export const parse = {
  int: (name: string) => (v: string) => {
    if (!/^-?\d+$/.test(v)) throw new UsageError(`${name} must be a whole number, not '${v}'`);
    return Number(v);
  },
  number: (name: string) => (v: string) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n)) throw new UsageError(`${name} must be a number, not '${v}'`);
    return n;
  },
  list: (v: string) =>
    v
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  json: (name: string) => (v: string) => {
    try {
      return JSON.parse(v) as unknown;
    } catch (err) {
      throw new UsageError(`${name} must be JSON: ${(err as Error).message}`);
    }
  },
};

/** The options that were given: a body without the keys of those left out. */
export function defined<T extends Record<string, unknown>>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
