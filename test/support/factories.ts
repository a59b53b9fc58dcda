import { randomBytes } from 'node:crypto';
import { Api } from './http.js';

export const adminKey = (): string => {
  const key = process.env.ADMIN_API_KEY;
  if (!key) throw new Error('ADMIN_API_KEY is not set: run the tests through `npm test`');
  return key;
};

export interface TenantFixture {
  id: string;
  /** A client authenticated as the tenant's first key (all scopes). */
  api: Api;
  key: { id: string; secret: string };
}

/** A fresh tenant with one all-scope key, made through the admin API like a real operator would. */
export async function createTenant(
  url: string,
  opts: { name?: string; plan?: string; quotas?: Record<string, number>; scopes?: string[] } = {},
): Promise<TenantFixture> {
  const admin = new Api(url, adminKey());
  const t = await admin.post('/v1/admin/tenants', {
    name: opts.name ?? `tenant-${randomBytes(3).toString('hex')}`,
    ...(opts.plan ? { plan: opts.plan } : {}),
    ...(opts.quotas ? { quotas: opts.quotas } : {}),
  });
  if (t.status !== 201) throw new Error(`create tenant: ${t.status} ${t.text}`);
  const k = await admin.post(`/v1/admin/tenants/${t.body.id}/api-keys`, { name: 'first', ...(opts.scopes ? { scopes: opts.scopes } : {}) });
  if (k.status !== 201) throw new Error(`create key: ${k.status} ${k.text}`);
  return { id: t.body.id, api: new Api(url, k.body.secret), key: { id: k.body.id, secret: k.body.secret } };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns something truthy; the error names what never happened. */
export async function until<T>(
  what: string,
  fn: () => T | Promise<T>,
  timeoutMs = 60_000,
  everyMs = 50,
): Promise<Exclude<T, false | 0 | '' | null | undefined>> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as Exclude<T, false | 0 | '' | null | undefined>;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}
