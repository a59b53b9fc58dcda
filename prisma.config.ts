import { defineConfig } from 'prisma/config';

// The CLI is only used offline here (generate); DATABASE_URL matters to `migrate` on connected machines.
export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: { url: process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/aiaas' },
});
