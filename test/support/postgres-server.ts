import { execFile, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ensureDatabase, migrate } from '../../libs/db/src/migrate.js';
import { freePort } from './redis-server.js';

const run = promisify(execFile);

/** The directory holding initdb, pg_ctl and postgres: PATH first, else the newest /usr/lib/postgresql/N/bin. */
function postgresBin(): string {
  for (const dir of (process.env.PATH ?? '').split(':'))
    if (dir && existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl'))) return dir;
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base)
    ? readdirSync(base)
        .filter((v) => existsSync(join(base, v, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (!versions.length) throw new Error('no PostgreSQL server binaries (initdb, pg_ctl): apt-get install -y postgresql');
  return join(base, versions[0], 'bin');
}

/**
 * A private PostgreSQL that a test may stop, crash and start again on the same port: `initdb` into a
 * temporary directory, `pg_ctl` on a free port with its socket in that directory, never the shared
 * server (ENVIRONMENT.md). PostgreSQL refuses to run as root, so as root every command runs as the
 * `postgres` user (as scripts/start.mjs does) and the directory is handed to that user.
 * fsync and full-page writes are off: a test's data must survive a restart or crash of the server (WAL in the
 * OS cache does), not of the machine; commits stay synchronous, so an acknowledged commit is never lost.
 */
export class PrivatePostgres {
  private readonly bin = postgresBin();
  private readonly dir = mkdtempSync(join(tmpdir(), 'aiaas-pg-'));
  private readonly data = join(this.dir, 'data');
  private readonly asRoot = process.getuid?.() === 0;

  private constructor(readonly port: number) {
    if (this.asRoot) chownSync(this.dir, uid('postgres'), gid('postgres'));
  }

  /** initdb, start, create `database` and apply the repo's migrations with its migrator. */
  static async start(database = 'aiaas_fault'): Promise<PrivatePostgres> {
    const pg = new PrivatePostgres(await freePort());
    await pg.as(join(pg.bin, 'initdb'), ['-D', pg.data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
    await pg.resume();
    await ensureDatabase(pg.url(database));
    await migrate(pg.url(database), join(process.cwd(), 'prisma', 'migrations'));
    return pg;
  }

  url(database = 'aiaas_fault'): string {
    return `postgresql://postgres@127.0.0.1:${this.port}/${database}`;
  }

  /** Starts the server on its port (again) and waits until it accepts connections. */
  async resume(): Promise<void> {
    const options = `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=200`;
    await this.as(join(this.bin, 'pg_ctl'), [
      '-D',
      this.data,
      '-o',
      options,
      '-l',
      join(this.dir, 'postgres.log'),
      '-w',
      '-t',
      '60',
      'start',
    ]);
  }

  /**
   * Stops the server: `fast` closes every session and checkpoints (a clean restart); `immediate`
   * drops everything at once, the way a crash does (recovery replays the WAL at the next start).
   */
  async stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    if (!this.running()) return;
    await this.as(join(this.bin, 'pg_ctl'), ['-D', this.data, '-m', mode, '-w', '-t', '60', 'stop']);
  }

  running(): boolean {
    return existsSync(join(this.data, 'postmaster.pid'));
  }

  /** The server's log, for failure messages. */
  log(): string {
    try {
      return readFileSync(join(this.dir, 'postgres.log'), 'utf8');
    } catch {
      return '';
    }
  }

  async destroy(): Promise<void> {
    await this.stop('immediate').catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async as(file: string, args: string[]): Promise<void> {
    const [cmd, argv] = this.asRoot ? ['runuser', ['-u', 'postgres', '--', file, ...args]] : [file, args];
    try {
      await run(cmd, argv, { cwd: this.dir });
    } catch (err) {
      const e = err as Error & { stdout?: string; stderr?: string };
      throw new Error(`${file.split('/').at(-1)} ${args.at(-1)} failed: ${e.message}\n${e.stderr ?? ''}\n${this.log().slice(-2000)}`);
    }
  }
}

function uid(user: string): number {
  return Number(spawnSync('id', ['-u', user], { encoding: 'utf8' }).stdout.trim());
}

function gid(user: string): number {
  return Number(spawnSync('id', ['-g', user], { encoding: 'utf8' }).stdout.trim());
}
