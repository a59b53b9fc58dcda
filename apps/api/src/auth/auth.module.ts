import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { PassportModule } from '@nestjs/passport';
import { ApiKeyStrategy } from './api-key.strategy.js';
import { ApiKeyGuard } from './auth.guard.js';
import { Authenticator } from './authenticator.js';
import { AuthFailureThrottle } from './failure-throttle.js';
import { InvalidationBus } from '../infra/invalidation-bus.js';
import { UsageCache } from '../me/usage-cache.js';
import { ValidationGuard } from '../http/validation.guard.js';
import { KeyStore } from './key-store.js';
import { RateLimiter } from './rate-limiter.js';
import { ScraperAccess } from './scraper-access.js';

@Module({
  imports: [PassportModule.register({ session: false })],
  providers: [
    InvalidationBus,
    KeyStore,
    UsageCache,
    RateLimiter,
    ApiKeyStrategy,
    ScraperAccess,
    AuthFailureThrottle,
    Authenticator,
    { provide: APP_GUARD, useClass: ApiKeyGuard },
    // Second: validation after authentication (a 401 before a 400), and before any interceptor,
    // so that a malformed request never claims an idempotency key.
    { provide: APP_GUARD, useClass: ValidationGuard },
  ],
  exports: [InvalidationBus, KeyStore, UsageCache, RateLimiter, Authenticator, ScraperAccess],
})
export class AuthModule {}
