import { describe, expect, it } from '@jest/globals';
import { UsageRepository } from '@app/db';
import { createTenant, useMedium } from './support.js';

// UsageRepository.add: the flush of metered usage (API request meters, worker tallies).
const m = useMedium();

const counters = async (tenantIds: string[]) =>
  (
    await m.db.pool.query<{ tenant_id: string; metric: string; value: string }>(
      `SELECT tenant_id, metric, value::text FROM usage_counters WHERE tenant_id = ANY($1) ORDER BY tenant_id COLLATE "C", metric COLLATE "C"`,
      [tenantIds],
    )
  ).rows.map((r) => [r.tenant_id, r.metric, Number(r.value)]);

describe('UsageRepository.add', () => {
  it('sums increments of the same counter in one flush, adds to what is there, and drops a deleted tenant’s', async () => {
    const [a, b] = [await createTenant(m.db), await createTenant(m.db)];
    const usage = new UsageRepository(m.db);
    const day = '2026-12-03';
    await usage.add([{ tenantId: a.id, metric: 'requests', day, value: 1 }]);
    await usage.add([
      { tenantId: b.id, metric: 'requests', day, value: 2 },
      { tenantId: a.id, metric: 'requests', day, value: 3 },
      { tenantId: b.id, metric: 'requests', day, value: 4 },
      { tenantId: a.id, metric: 'predictions', day, value: 5 },
      { tenantId: 'ten_gone', metric: 'requests', day, value: 6 },
    ]);
    expect(await counters([a.id, b.id, 'ten_gone'])).toEqual(
      [
        [a.id, 'predictions', 5],
        [a.id, 'requests', 4],
        [b.id, 'requests', 6],
        // by code point, as COLLATE "C" orders them (localeCompare and a locale collation disagree on case)
      ].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0)),
    );
  });
});
