import { hashSecret, KEY_PREFIX_LENGTH, newSecretKey } from '@app/common';
import { APP_CONFIG, type AppConfig } from '@app/config';
import { AdminKeyRepository, AuditRepository, Database } from '@app/db';
import { Inject, Injectable } from '@nestjs/common';

export type AdminKeyOutcome = { kind: 'from-env'; prefix: string } | { kind: 'generated'; secret: string } | { kind: 'existing' };

/**
 * The first admin key: ADMIN_API_KEY when set (stored hashed, so it works on every instance), or
 * where no admin key exists yet, one generated here and shown once. An advisory lock keeps two
 * instances starting together from generating two.
 */
@Injectable()
export class AdminBootstrap {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly db: Database,
    private readonly adminKeys: AdminKeyRepository,
    private readonly audit: AuditRepository,
  ) {}

  async ensureAdminKey(): Promise<AdminKeyOutcome> {
    return this.db.prisma.$transaction(async (tx) => {
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(72616162)`;
      const fromEnv = this.config.adminApiKey;
      if (fromEnv) {
        const hash = hashSecret(fromEnv);
        if (!(await tx.adminKey.findUnique({ where: { hash } }))) {
          const key = await this.adminKeys.create(tx, { name: 'ADMIN_API_KEY', prefix: fromEnv.slice(0, KEY_PREFIX_LENGTH), hash });
          await this.audit.record(tx, {
            actorType: 'system',
            actorKeyId: 'system',
            action: 'admin_key.created',
            targetType: 'admin_key',
            targetId: key.id,
            data: { source: 'env' },
          });
        }
        return { kind: 'from-env', prefix: fromEnv.slice(0, KEY_PREFIX_LENGTH) };
      }
      if ((await tx.adminKey.count({ where: { revokedAt: null } })) > 0) return { kind: 'existing' };
      const secret = newSecretKey('admin');
      const key = await this.adminKeys.create(tx, {
        name: 'first admin key',
        prefix: secret.slice(0, KEY_PREFIX_LENGTH),
        hash: hashSecret(secret),
      });
      await this.audit.record(tx, {
        actorType: 'system',
        actorKeyId: 'system',
        action: 'admin_key.created',
        targetType: 'admin_key',
        targetId: key.id,
        data: { source: 'generated' },
      });
      return { kind: 'generated', secret };
    });
  }
}
