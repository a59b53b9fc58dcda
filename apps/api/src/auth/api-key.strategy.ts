import { ApiError } from '@app/common';
import { Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import type { FastifyRequest } from 'fastify';
import passport from 'passport';
import type { Principal } from './principal.js';

type Verify = (req: FastifyRequest, done: (err: unknown, user?: Principal | false) => void) => void;

/**
 * A passport strategy over the key the Authenticator resolved in Fastify's onRequest hook, before
 * any body was read (passport's bearer strategy would only run after the body, and also takes
 * keys from the query string and the body, which we refuse). Passport keeps the guard's contract:
 * `req.user` is the principal, and a refusal is the error the Authenticator found.
 */
class ResolvedKey extends passport.Strategy {
  override name = 'api-key';

  constructor(private readonly verify: Verify) {
    super();
  }

  override authenticate(req: unknown): void {
    this.verify(req as FastifyRequest, (err, user) => (err ? this.error(err as Error) : user ? this.success(user) : this.fail(401)));
  }
}

@Injectable()
export class ApiKeyStrategy extends PassportStrategy(ResolvedKey, 'api-key') {
  validate(req: FastifyRequest): Principal {
    if (req.authError !== undefined) throw req.authError;
    if (!req.user) throw ApiError.unauthenticated('api_key_missing', 'No API key provided: send Authorization: Bearer <key>');
    return req.user;
  }
}
