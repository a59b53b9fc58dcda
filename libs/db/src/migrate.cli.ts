import { join } from 'node:path';
import { repoRoot } from '@app/common';
import { loadConfig } from '@app/config';
import { ensureDatabase, migrate } from './migrate.js';

const config = loadConfig();
const created = await ensureDatabase(config.databaseUrl);
const result = await migrate(config.databaseUrl, join(repoRoot(), 'prisma', 'migrations'));
const db = new URL(config.databaseUrl).pathname.slice(1);
console.log(
  `database ${db}${created ? ' (created)' : ''}: ${result.applied.length} migration(s) applied, ${result.alreadyApplied.length} already applied`,
);
