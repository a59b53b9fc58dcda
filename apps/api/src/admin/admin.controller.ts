import { AuditRepository, Database, toPage, onlineWorkers } from '@app/db';
import { Controller, Get, Query } from '@nestjs/common';
import { z } from 'zod';
import { Admin } from '../auth/principal.js';
import { Endpoint } from '../http/endpoint.js';
import { iso, listOf, listQuery, Timestamp } from '../http/schemas.js';

const AuditQuery = listQuery({
  tenant: z.string().max(100).optional(),
  action: z.string().max(100).optional(),
  actor_key_id: z.string().max(100).optional(),
});

const AuditEntrySchema = z
  .object({
    id: z.string(),
    object: z.literal('audit_entry'),
    actor_type: z.enum(['admin', 'tenant', 'system']),
    actor_key_id: z.string(),
    tenant_id: z.string().nullable(),
    action: z.string(),
    target_type: z.string(),
    target_id: z.string(),
    data: z.unknown(),
    created_at: Timestamp,
  })
  .meta({ id: 'AuditEntry' });

const WorkerSchema = z
  .object({
    id: z.string(),
    object: z.literal('worker'),
    host: z.string(),
    pid: z.number(),
    backend: z.string(),
    concurrency: z.number(),
    current_jobs: z.array(z.string()),
    started_at: Timestamp,
    last_heartbeat_at: Timestamp,
  })
  .meta({ id: 'Worker' });

@Admin()
@Controller('v1/admin')
export class AdminController {
  constructor(
    private readonly audit: AuditRepository,
    private readonly db: Database,
  ) {}

  @Get('audit-log')
  @Endpoint({
    summary: 'Who (key id) did what to which object, when; newest first',
    tags: ['Admin'],
    query: AuditQuery,
    response: listOf(AuditEntrySchema),
    errors: [400],
  })
  async auditLog(@Query() q: z.infer<typeof AuditQuery>) {
    const rows = await this.audit.list({
      limit: q.limit,
      starting_after: q.starting_after,
      tenantId: q.tenant,
      action: q.action,
      actorKeyId: q.actor_key_id,
    });
    return toPage(rows, q.limit, (r) => ({
      id: r.id,
      object: 'audit_entry' as const,
      actor_type: r.actorType as 'admin' | 'tenant' | 'system',
      actor_key_id: r.actorKeyId,
      tenant_id: r.tenantId,
      action: r.action,
      target_type: r.targetType,
      target_id: r.targetId,
      data: r.data,
      created_at: iso(r.createdAt)!,
    }));
  }

  @Get('workers')
  @Endpoint({
    summary: 'Workers online: id, host, backend, concurrency, current jobs, last heartbeat',
    tags: ['Admin'],
    response: listOf(WorkerSchema),
  })
  async workers() {
    const rows = await onlineWorkers(this.db);
    return {
      object: 'list' as const,
      has_more: false,
      data: rows.map((w) => ({
        id: w.id,
        object: 'worker' as const,
        host: w.host,
        pid: w.pid,
        backend: w.backend,
        concurrency: w.concurrency,
        current_jobs: w.currentJobs,
        started_at: iso(w.startedAt)!,
        last_heartbeat_at: iso(w.lastSeenAt)!,
      })),
    };
  }
}
