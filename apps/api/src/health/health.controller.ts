import type { RedisClient } from '@app/queue';
import { Database } from '@app/db';
import { Controller, Get, Header, Inject, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { z } from 'zod';
import { Admin, Public, Scrape } from '../auth/principal.js';
import { Endpoint } from '../http/endpoint.js';
import { REDIS } from '../infra/infra.module.js';
import { OperationsService } from '../admin/operations.service.js';
import { registry } from './metrics.js';

const Readiness = z
  .object({
    status: z.enum(['ok', 'unavailable']),
    checks: z.object({ postgres: z.enum(['ok', 'down']), redis: z.enum(['ok', 'down']) }),
    message: z.string().optional(),
  })
  .meta({ id: 'Readiness' });

const within = <T>(p: Promise<T>, ms: number) =>
  Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timeout')), ms).unref())]);

/** Probes for load balancers (public), and the Prometheus figures, which are the operator's. */
@Controller()
export class HealthController {
  constructor(
    private readonly db: Database,
    @Inject(REDIS) private readonly redis: RedisClient,
    private readonly ops: OperationsService,
  ) {}

  @Get('healthz')
  @Public()
  @Endpoint({ summary: 'The process lives', tags: ['Operations'], response: z.object({ status: z.literal('ok') }) })
  healthz() {
    return { status: 'ok' as const };
  }

  @Get('readyz')
  @Public()
  @Endpoint({
    summary: 'PostgreSQL and Redis answer (503 naming the one that does not)',
    tags: ['Operations'],
    response: Readiness,
    errors: [503],
  })
  async readyz(@Res({ passthrough: true }) reply: FastifyReply) {
    const [postgres, redis] = await Promise.all([
      within(this.db.ping(), 2_000).then(
        () => 'ok' as const,
        () => 'down' as const,
      ),
      within(this.redis.ping(), 2_000).then(
        () => 'ok' as const,
        () => 'down' as const,
      ),
    ]);
    const down = [postgres === 'down' && 'postgres', redis === 'down' && 'redis'].filter(Boolean);
    if (down.length) reply.status(503);
    return {
      status: down.length ? ('unavailable' as const) : ('ok' as const),
      checks: { postgres, redis },
      ...(down.length ? { message: `not ready: ${down.join(' and ')} ${down.length > 1 ? 'do' : 'does'} not answer` } : {}),
    };
  }

  @Get('metrics')
  @Admin()
  @Scrape()
  @Header('Content-Type', registry.contentType)
  @Endpoint({
    summary: 'Prometheus metrics (text format)',
    description: 'Needs the admin key, or the METRICS_TOKEN as bearer token, or a scraper address in METRICS_ALLOW_FROM.',
    tags: ['Operations'],
    response: z.string(),
    produces: ['text/plain'],
  })
  async metrics() {
    // This process's figures, then the cluster's (jobs, queues, workers, what workers counted). If
    // PostgreSQL or Redis cannot answer, the process's figures still go out.
    const [own, cluster] = await Promise.all([
      registry.metrics(),
      within(this.ops.prometheus(), 2_000).catch(
        (err: Error) => `# cluster-wide figures unavailable: ${err.message.replace(/\n/g, ' ')}\n`,
      ),
    ]);
    return `${own}\n${cluster}`;
  }
}
