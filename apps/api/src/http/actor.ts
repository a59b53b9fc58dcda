import type { AuditEntry } from '@app/db';
import type { Principal } from '../auth/principal.js';

/** Who acts, as the audit log records it. */
export type Actor = Pick<AuditEntry, 'actorType' | 'actorKeyId'>;

export function actorOf(p: Principal): Actor {
  return { actorType: p.kind, actorKeyId: p.keyId };
}
