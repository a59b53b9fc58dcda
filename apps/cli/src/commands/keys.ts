import type { Command } from 'commander';
import { contextOf, parse } from '../context.js';
import { ago, table } from '../output.js';

export function keysCommand(program: Command): void {
  const keys = program.command('keys').description("the tenant's API keys");

  keys
    .command('create')
    .description('a new key; its secret is shown once')
    .requiredOption('--name <name>', 'what the key is for')
    .option('--scopes <scopes>', 'comma-separated, e.g. models:read,jobs:read (default: all)', parse.list)
    .option('--expires-at <time>', 'ISO 8601, in the future')
    .action(async (opts: { name: string; scopes?: string[]; expiresAt?: string }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const key = await ctx.client.call(
        ctx.client.api.POST('/v1/api-keys', {
          body: {
            name: opts.name,
            ...(opts.scopes ? { scopes: opts.scopes as never } : {}),
            ...(opts.expiresAt ? { expires_at: opts.expiresAt } : {}),
          },
        }),
      );
      ctx.out.result(key, (k) => [`created ${k.id} (${k.name}, scopes ${k.scopes.join(' ')})`, `secret ${k.secret}  (shown once)`]);
    });

  keys
    .command('list')
    .description('keys, with their prefix and last use (never their secret)')
    .action(async (_opts: unknown, cmd: Command) => {
      const ctx = contextOf(cmd);
      const list = await ctx.client.call(ctx.client.api.GET('/v1/api-keys', {}));
      ctx.out.result(list, (l) =>
        table(l.data, [
          ['id', (k) => k.id],
          ['name', (k) => k.name],
          ['prefix', (k) => k.prefix],
          ['scopes', (k) => k.scopes.join(',')],
          ['last used', (k) => ago(k.last_used_at)],
          ['state', (k) => (k.revoked_at ? 'revoked' : k.expires_at && Date.parse(k.expires_at) < Date.now() ? 'expired' : 'active')],
        ]),
      );
    });

  keys
    .command('revoke')
    .description('revoke a key: refused everywhere within a second')
    .argument('<id>', 'key_…')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const ctx = contextOf(cmd);
      const key = await ctx.client.call(ctx.client.api.DELETE('/v1/api-keys/{id}', { params: { path: { id } } }));
      ctx.out.result(key, () => `revoked ${id}`);
    });
}
