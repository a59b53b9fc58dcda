import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const root = process.cwd();

export interface RunningProcess {
  proc: ChildProcess;
  /** Everything the process printed, for assertions and for failure messages. */
  output: string[];
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Starts a built entry point (dist/) as a real process and waits for the JSON line it prints
 * when ready (`{"event": readyEvent, ...}`).
 */
export async function startProcess<T extends Record<string, unknown>>(
  entry: string,
  readyEvent: string,
  env: Record<string, string | undefined> = {},
  timeoutMs = 20_000,
): Promise<RunningProcess & { ready: T }> {
  const proc = spawn(process.execPath, [join(root, entry)], {
    cwd: root,
    env: { ...process.env, NODE_OPTIONS: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  let exited = false;
  proc.on('exit', (code, signal) => {
    exited = true;
    // A process that dies on its own takes the tests with it: show why.
    if (!stopping && code !== 0) process.stderr.write(`${entry} exited (${code ?? signal}):\n${output.slice(-40).join('\n')}\n`);
  });
  let stopping = false;
  createInterface({ input: proc.stderr! }).on('line', (l) => output.push(l));
  const ready = await new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${entry} not ready in ${timeoutMs} ms:\n${output.join('\n')}`)), timeoutMs);
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      output.push(line);
      if (!line.startsWith('{')) return;
      try {
        const msg = JSON.parse(line) as { event?: string };
        if (msg.event === readyEvent) {
          clearTimeout(timer);
          resolve(msg as T);
        }
      } catch {
        // a log line that is not ours
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${entry} exited with ${code} before it was ready:\n${output.join('\n')}`));
    });
  });
  return {
    proc,
    output,
    ready,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (exited) return proc.exitCode;
      stopping = true;
      proc.kill(signal);
      const [code] = (await once(proc, 'exit')) as [number | null];
      return code;
    },
  };
}

export interface RunningApi extends RunningProcess {
  url: string;
}

/** An API process on a free port, with the test run's database, Redis prefix and admin key. */
export async function startApi(env: Record<string, string | undefined> = {}): Promise<RunningApi> {
  const p = await startProcess<{ url: string }>('dist/apps/api/src/main.js', 'api.listening', { PORT: '0', HOST: '127.0.0.1', ...env });
  return { ...p, url: p.ready.url };
}

export function startWorker(env: Record<string, string | undefined> = {}) {
  return startProcess<{ id: string }>('dist/apps/worker/src/main.js', 'worker.ready', env);
}
