import { ApiError } from '@app/common';
import { Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import { Strategy } from 'passport-http-bearer';
import { KeyStore } from './key-store.js';
import type { Principal } from './principal.js';

/** Passport strategy: `Authorization: Bearer aik_...|adm_...` → the key's principal. */
@Injectable()
export class ApiKeyStrategy extends PassportStrategy(Strategy, 'api-key') {
  constructor(private readonly keys: KeyStore) {
    super();
  }

  async validate(secret: string): Promise<Principal> {
    const principal = await this.keys.resolve(secret).catch(() => {
      throw ApiError.unavailable('dependency_unavailable', 'Cannot check the API key right now (database unreachable); retry shortly');
    });
    if (!principal) throw ApiError.unauthenticated('api_key_invalid', 'Invalid API key');
    if (principal.revoked) throw ApiError.unauthenticated('api_key_revoked', 'This API key has been revoked');
    if (principal.kind === 'tenant' && principal.expiresAt !== null && principal.expiresAt <= Date.now()) {
      throw ApiError.unauthenticated('api_key_expired', 'This API key has expired');
    }
    this.keys.touch(principal);
    return principal;
  }
}
