import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ApiKeyGuard } from './auth.guard.js';
import { Authenticator } from './authenticator.js';
import { AuthFailureThrottle } from './failure-throttle.js';
import { InvalidationBus } from '../infra/invalidation-bus.js';
import { UsageCache } from '../me/usage-cache.js';
import { ValidationGuard } from '../http/validation.guard.js';
import { KeyStore } from './key-store.js';
import { RateLimiter } from './rate-limiter.js';

@Module({
  providers: [
    InvalidationBus,
    KeyStore,
    UsageCache,
    RateLimiter,
    AuthFailureThrottle,
    Authenticator,
    { provide: APP_GUARD, useClass: ApiKeyGuard },
    // Second: validation after authentication (a 401 before a 400), and before any interceptor,
    // so that a malformed request never claims an idempotency key.
    { provide: APP_GUARD, useClass: ValidationGuard },
  ],
  exports: [InvalidationBus, KeyStore, UsageCache, RateLimiter, Authenticator],
})
export class AuthModule {}
