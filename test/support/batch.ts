import { expect } from '@jest/globals';
import type { TenantFixture } from './factories.js';

/**
 * Runs a batch prediction (an inference job with `output`) to its end under `Prefer: wait` and
 * reads its file back: the finished job and the file's NDJSON lines, parsed.
 */
export async function batchPredict(
  url: string,
  tenant: TenantFixture,
  body: { model: string; dataset: string; include_inputs?: boolean; version?: number },
): Promise<{ job: any; lines: Array<{ row: number; prediction: any; inputs?: Record<string, unknown> }> }> {
  const { include_inputs, ...rest } = body;
  const r = await tenant.api.post(
    '/v1/jobs',
    { type: 'inference', ...rest, output: { format: 'ndjson', ...(include_inputs ? { include_inputs } : {}) } },
    { headers: { Prefer: 'wait=60' } },
  );
  expect([r.status, r.body.status, r.body.error]).toEqual([200, 'succeeded', null]);
  const res = await fetch(`${url}/v1/files/${r.body.result.output_file_id}/content`, {
    headers: { authorization: `Bearer ${tenant.key.secret}` },
  });
  expect(res.status).toBe(200);
  const text = await res.text();
  return {
    job: r.body,
    lines: text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l)),
  };
}
