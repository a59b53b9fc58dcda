import { AiaasError, ImageFileError, JobFailedError, JobWaitTimeoutError, ZipEntryChangedError } from '@app/client';
import { Command, CommanderError } from 'commander';
import { adminCommand } from './commands/admin.js';
import { datasetsCommand } from './commands/datasets.js';
import { filesCommand } from './commands/files.js';
import { jobsCommand } from './commands/jobs.js';
import { keysCommand } from './commands/keys.js';
import { modelsCommand } from './commands/models.js';
import { JobEndedBadly } from './commands/outcome.js';
import { predictCommand } from './commands/predict.js';
import { webhooksCommand } from './commands/webhooks.js';
import { contextOf, DEFAULT_URL, Interrupted, UsageError } from './context.js';
import { details, table } from './output.js';

/**
 * `aiaas`: the command line of the API. Exit codes: 0 done; 1 the API refused (its message and
 * request id are printed), could not be reached, or the job failed or was canceled; 2 a usage
 * mistake or an unreadable local file; 130 stopped watching or downloading with Ctrl-C.
 */
export function buildProgram(): Command {
  const program = new Command('aiaas')
    .description(
      'The aiaas API from a terminal: datasets, models, training, evaluation, predictions (batch ones into files), jobs, webhooks, keys; admin commands for operators.',
    )
    .option('--url <url>', `the API (default: $AIAAS_URL, else ${DEFAULT_URL})`)
    .option('--api-key <key>', 'the API key (default: $AIAAS_API_KEY; admin commands: $AIAAS_ADMIN_KEY first)')
    .option('--json', 'print JSON, for scripts')
    .option('-v, --verbose', 'say when a request is retried')
    .showHelpAfterError('(add --help for usage)')
    .exitOverride();

  program
    .command('me')
    .description('the tenant of the key: its quotas and usage now')
    .action(async (_opts: unknown, cmd: Command) => {
      const ctx = contextOf(cmd);
      const me = await ctx.client.call(ctx.client.api.GET('/v1/me', {}));
      ctx.out.result(me, (m) => [
        ...details([
          ['tenant', `${m.tenant.id} (${m.tenant.name}), plan ${m.tenant.plan}, ${m.tenant.status}`],
          ['key', `${m.key.id}: ${m.key.scopes.join(' ')}`],
        ]),
        '',
        ...table(Object.entries(m.usage), [
          ['usage', ([k]) => k],
          ['now', ([, v]) => v],
        ]),
      ]);
    });
  datasetsCommand(program);
  modelsCommand(program);
  jobsCommand(program);
  predictCommand(program);
  filesCommand(program);
  webhooksCommand(program);
  keysCommand(program);
  adminCommand(program);
  return program;
}

export async function run(argv: string[] = process.argv): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    process.exitCode = report(err, argv.includes('--json'));
  }
}

/** Prints an error as people or scripts (--json, on stderr) want it; returns the exit code. */
function report(err: unknown, json: boolean): number {
  if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2; // Commander printed it
  const print = (body: Record<string, unknown>, lines: string[]) =>
    process.stderr.write(`${json ? JSON.stringify({ error: body }) : lines.join('\n')}\n`);
  if (err instanceof AiaasError) {
    const where = [err.type, err.code, err.param ? `param ${err.param}` : '', err.status ? `HTTP ${err.status}` : '']
      .filter(Boolean)
      .join(', ');
    print(err.toJSON(), [`error: ${err.message}`, `  (${where})`, ...(err.requestId ? [`  request id: ${err.requestId}`] : [])]);
    return 1;
  }
  if (err instanceof UsageError || err instanceof ImageFileError || err instanceof ZipEntryChangedError) {
    print({ type: 'usage_error', message: err.message }, [`error: ${err.message}`]);
    return 2;
  }
  if (err instanceof JobEndedBadly || err instanceof JobFailedError) {
    print({ type: 'job_error', message: err.message, job: err.job }, [`error: ${err.message}`]);
    return 1;
  }
  if (err instanceof Interrupted) {
    print({ type: 'interrupted', message: err.message }, [err.message]);
    return 130;
  }
  if (err instanceof JobWaitTimeoutError) {
    print({ type: 'timeout', message: err.message, job_id: err.jobId }, [`error: ${err.message}`]);
    return 1;
  }
  const e = err instanceof Error ? err : new Error(String(err));
  print({ type: 'internal_error', message: e.message }, [`error: ${e.message}`, ...(process.env.AIAAS_DEBUG ? [e.stack ?? ''] : [])]);
  return 1;
}
