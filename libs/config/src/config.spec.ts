import { describe, expect, it } from '@jest/globals';
import { ConfigError, loadConfig } from './config.js';

describe('loadConfig', () => {
  it('gives working defaults for a local machine', () => {
    const c = loadConfig({});
    expect(c.port).toBe(3000);
    expect(c.databaseUrl).toBe('postgresql://postgres@127.0.0.1:5432/aiaas');
    expect(c.redisUrl).toBe('redis://127.0.0.1:6379');
    expect(c.redisPrefix).toBe('aiaas');
    expect(c.instanceId).toMatch(/-\d+-[0-9a-f]{6}$/);
  });

  it('reads a Redis Cluster from REDIS_CLUSTER_NODES or a redis-cluster:// REDIS_URL, and refuses a malformed one', () => {
    expect(loadConfig({}).redisClusterNodes).toBeNull();
    expect(loadConfig({ REDIS_URL: 'redis-cluster://a:7000,b:7001' }).redisClusterNodes).toEqual([
      { host: 'a', port: 7000 },
      { host: 'b', port: 7001 },
    ]);
    expect(loadConfig({ REDIS_URL: 'redis://x:6379', REDIS_CLUSTER_NODES: '10.0.0.1:7000' }).redisClusterNodes).toEqual([
      { host: '10.0.0.1', port: 7000 },
    ]);
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: 'a:7000,,b' })).toThrow(/REDIS_CLUSTER_NODES: must be host:port/);
    expect(() => loadConfig({ REDIS_URL: 'localhost:6379' })).toThrow(/REDIS_URL/);
  });

  it('parses numbers and keeps what is given', () => {
    const c = loadConfig({ PORT: '8080', KEY_CACHE_TTL_MS: '500', REDIS_PREFIX: 'test-1', INSTANCE_ID: 'w1' });
    expect(c).toMatchObject({ port: 8080, keyCacheTtlMs: 500, redisPrefix: 'test-1', instanceId: 'w1' });
  });

  it('refuses a bad environment, naming every bad variable', () => {
    expect(() => loadConfig({ PORT: 'eighty', ADMIN_API_KEY: 'secret' })).toThrow(ConfigError);
    try {
      loadConfig({ PORT: 'eighty', ADMIN_API_KEY: 'secret' });
    } catch (err) {
      expect((err as Error).message).toContain('PORT');
      expect((err as Error).message).toContain('ADMIN_API_KEY');
    }
  });

  it('defaults the sync inference settings and refuses a batch of no rows', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      predictBatchMaxRows: 64,
      predictBatchDelayMs: 2,
      predictConcurrency: 256,
      predictLookupTtlMs: 1_000,
      workerModelCacheBytes: 256 * 1024 * 1024,
      workerInferenceChildren: 1,
    });
    expect(loadConfig({ PREDICT_BATCH_MAX_ROWS: '1', PREDICT_BATCH_DELAY_MS: '0.5' })).toMatchObject({
      predictBatchMaxRows: 1,
      predictBatchDelayMs: 0.5,
    });
    expect(() => loadConfig({ PREDICT_BATCH_MAX_ROWS: '0' })).toThrow(/PREDICT_BATCH_MAX_ROWS/);
  });

  it('defaults the admission batcher to no window, one batch at a time, and refuses a batch of none', () => {
    expect(loadConfig({})).toMatchObject({
      admissionWindowMs: 0,
      admissionMaxBatch: 256,
      admissionMaxBatchBytes: 4 * 1024 * 1024,
      admissionConcurrency: 1,
    });
    expect(loadConfig({ ADMISSION_WINDOW_MS: '2.5', ADMISSION_MAX_BATCH: '1' })).toMatchObject({
      admissionWindowMs: 2.5,
      admissionMaxBatch: 1,
    });
    expect(() => loadConfig({ ADMISSION_MAX_BATCH: '0' })).toThrow(/ADMISSION_MAX_BATCH/);
  });

  it('lets nobody but the admin read /metrics by default, and parses the scraper settings', () => {
    expect(loadConfig({})).toMatchObject({ metricsToken: null, metricsAllowFrom: [] });
    const c = loadConfig({ METRICS_TOKEN: 'm'.repeat(24), METRICS_ALLOW_FROM: ' 10.0.5.0/24, 2001:db8:5::/48,192.0.2.7 ' });
    expect(c.metricsToken).toBe('m'.repeat(24));
    expect(c.metricsAllowFrom).toEqual([
      { address: '10.0.5.0', prefix: 24, family: 'ipv4' },
      { address: '2001:db8:5::', prefix: 48, family: 'ipv6' },
      { address: '192.0.2.7', prefix: 32, family: 'ipv4' },
    ]);
    expect(() => loadConfig({ METRICS_TOKEN: 'short' })).toThrow(/METRICS_TOKEN: must be at least 24 characters/);
    for (const bad of ['10.0.0.0/33', 'example.com', '10.0.0.0/8/1', '10.0.0.0/x', '::/129']) {
      expect(() => loadConfig({ METRICS_ALLOW_FROM: bad })).toThrow(/METRICS_ALLOW_FROM: .* is not an IP address or CIDR/);
    }
  });
});
