import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { dropDatabase, ensureDatabase, migrate } from '@app/db';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';

/**
 * Proves that prisma/migrations (applied by our migrator, since Prisma's schema engine can't be
 * fetched here) build exactly the database that schema.prisma describes: every model's table,
 * columns, types, nullability, defaults, keys, uniques, indexes, foreign keys and enums.
 */
interface DmmfField {
  name: string;
  dbName?: string | null;
  kind: 'scalar' | 'enum' | 'object' | 'unsupported';
  type: string;
  isList: boolean;
  isRequired: boolean;
  hasDefaultValue: boolean;
  nativeType?: [string, string[]] | null;
  relationFromFields?: string[];
  relationToFields?: string[];
  relationOnDelete?: string;
}
interface DmmfModel {
  name: string;
  dbName: string | null;
  fields: DmmfField[];
}
interface Dmmf {
  enums: Array<{ name: string; dbName: string | null; values: Array<{ name: string; dbName?: string | null }> }>;
  models: DmmfModel[];
  indexes: Array<{ model: string; type: 'id' | 'unique' | 'normal'; fields: Array<{ name: string }> }>;
}

const root = process.cwd();
const dmmf = JSON.parse(readFileSync(join(root, 'libs/db/src/generated/dmmf.json'), 'utf8')) as Dmmf;
const url = new URL(process.env.DATABASE_URL!);
url.pathname = `${url.pathname}_schema`;
const emptyDb = url.toString();
let db: pg.Client;

const tableOf = (m: DmmfModel) => m.dbName ?? m.name;
const columnOf = (f: DmmfField) => f.dbName ?? f.name;

/** The PostgreSQL type Prisma creates for a field, as format_type() prints it. */
function expectedType(f: DmmfField): string {
  const native = f.nativeType?.[0];
  const arg = f.nativeType?.[1]?.[0];
  let base: string;
  if (f.kind === 'enum') base = `"${dmmf.enums.find((e) => e.name === f.type)?.dbName ?? f.type}"`;
  else if (native === 'Timestamptz') base = `timestamp(${arg ?? 3}) with time zone`;
  else if (native === 'Date') base = 'date';
  else if (native === 'VarChar') base = `character varying(${arg})`;
  else {
    const types: Record<string, string> = {
      String: 'text',
      Int: 'integer',
      BigInt: 'bigint',
      Boolean: 'boolean',
      Float: 'double precision',
      DateTime: 'timestamp(3) without time zone',
      Json: 'jsonb',
      Bytes: 'bytea',
      Decimal: 'numeric(65,30)',
    };
    base = types[f.type];
  }
  return f.isList ? `${base}[]` : base;
}

beforeAll(async () => {
  await dropDatabase(emptyDb);
  await ensureDatabase(emptyDb);
  db = new pg.Client({ connectionString: emptyDb });
  await db.connect();
});
afterAll(async () => {
  await db?.end();
  await dropDatabase(emptyDb);
});

describe('migrations and schema.prisma', () => {
  it('apply to an empty database, and a second run applies nothing', async () => {
    const dir = join(root, 'prisma/migrations');
    const first = await migrate(emptyDb, dir);
    expect(first.applied.length).toBeGreaterThan(0);
    const second = await migrate(emptyDb, dir);
    expect(second.applied).toEqual([]);
    expect(second.alreadyApplied).toEqual(first.applied);
    const { rows } = await db.query('SELECT migration_name, checksum, finished_at FROM _prisma_migrations ORDER BY migration_name');
    expect(rows.map((r) => r.migration_name)).toEqual(first.applied);
    for (const r of rows) expect(r.finished_at).not.toBeNull();
  });

  it('create exactly the tables of the schema', async () => {
    const { rows } = await db.query(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_name <> '_prisma_migrations'`,
    );
    expect(rows.map((r) => r.table_name).sort()).toEqual(dmmf.models.map(tableOf).sort());
  });

  it('create every column with its type, nullability and default, and no other', async () => {
    const { rows } = await db.query(`
      SELECT c.relname AS table, a.attname AS column, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null,
             pg_get_expr(d.adbin, d.adrelid) AS default
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
       WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped AND c.relname <> '_prisma_migrations'`);
    const actual = rows
      .map((r) => `${r.table}.${r.column}: ${r.type}${r.not_null ? ' not null' : ''}${r.default !== null ? ' default' : ''}`)
      .sort();
    const expected = dmmf.models
      .flatMap((m) =>
        m.fields
          .filter((f) => f.kind === 'scalar' || f.kind === 'enum')
          // Prisma makes list columns nullable; @default(now()) and literal defaults are DB defaults, @updatedAt is not.
          .map(
            (f) =>
              `${tableOf(m)}.${columnOf(f)}: ${expectedType(f)}${f.isRequired && !f.isList ? ' not null' : ''}${f.hasDefaultValue ? ' default' : ''}`,
          ),
      )
      .sort();
    expect(actual).toEqual(expected);
  });

  it('create every primary key, unique and index of the schema, and no other', async () => {
    const { rows } = await db.query(`
      SELECT t.relname AS table, ix.indisprimary AS primary, ix.indisunique AS unique,
             array(SELECT a.attname FROM unnest(ix.indkey) WITH ORDINALITY k(attnum, ord) JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum ORDER BY k.ord)::text[] AS columns
        FROM pg_index ix JOIN pg_class t ON t.oid = ix.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
       WHERE n.nspname = 'public' AND t.relname <> '_prisma_migrations'`);
    const actual = rows.map((r) => `${r.table} ${r.primary ? 'id' : r.unique ? 'unique' : 'normal'} (${r.columns.join(', ')})`).sort();
    const expected = dmmf.indexes
      .map((ix) => {
        const model = dmmf.models.find((m) => m.name === ix.model)!;
        const cols = ix.fields.map((f) => columnOf(model.fields.find((mf) => mf.name === f.name)!));
        return `${tableOf(model)} ${ix.type} (${cols.join(', ')})`;
      })
      .sort();
    expect(actual).toEqual(expected);
  });

  it('create every foreign key of the schema with its delete rule', async () => {
    const { rows } = await db.query(`
      SELECT tc.table_name AS table, kcu.column_name AS column, ccu.table_name AS ref_table, rc.delete_rule
        FROM information_schema.table_constraints tc
        JOIN information_schema.key_column_usage kcu ON kcu.constraint_name = tc.constraint_name
        JOIN information_schema.constraint_column_usage ccu ON ccu.constraint_name = tc.constraint_name
        JOIN information_schema.referential_constraints rc ON rc.constraint_name = tc.constraint_name
       WHERE tc.constraint_type = 'FOREIGN KEY' AND tc.table_schema = 'public'`);
    const actual = rows.map((r) => `${r.table}.${r.column} -> ${r.ref_table} on delete ${r.delete_rule}`).sort();
    const rules: Record<string, string> = { Cascade: 'CASCADE', Restrict: 'RESTRICT', SetNull: 'SET NULL', NoAction: 'NO ACTION' };
    const expected = dmmf.models
      .flatMap((m) =>
        m.fields
          .filter((f) => f.kind === 'object' && f.relationFromFields?.length)
          .map((f) => {
            const target = dmmf.models.find((t) => t.name === f.type)!;
            const from = m.fields.find((x) => x.name === f.relationFromFields![0])!;
            return `${tableOf(m)}.${columnOf(from)} -> ${tableOf(target)} on delete ${rules[f.relationOnDelete ?? 'Restrict']}`;
          }),
      )
      .sort();
    expect(actual).toEqual(expected);
  });

  it('create every enum with its values in order', async () => {
    const { rows } = await db.query(`
      SELECT t.typname AS name, array_agg(e.enumlabel ORDER BY e.enumsortorder)::text[] AS values
        FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid GROUP BY t.typname`);
    const actual = Object.fromEntries(rows.map((r) => [r.name, r.values]));
    const expected = Object.fromEntries(dmmf.enums.map((e) => [e.dbName ?? e.name, e.values.map((v) => v.dbName ?? v.name)]));
    expect(actual).toEqual(expected);
  });
});
