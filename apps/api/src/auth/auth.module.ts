import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { PassportModule } from '@nestjs/passport';
import { ApiKeyGuard } from './auth.guard.js';
import { ApiKeyStrategy } from './api-key.strategy.js';
import { InvalidationBus } from '../infra/invalidation-bus.js';
import { UsageCache } from '../me/usage-cache.js';
import { KeyStore } from './key-store.js';
import { RateLimiter } from './rate-limiter.js';

@Module({
  imports: [PassportModule.register({ session: false })],
  providers: [InvalidationBus, KeyStore, UsageCache, RateLimiter, ApiKeyStrategy, { provide: APP_GUARD, useClass: ApiKeyGuard }],
  exports: [InvalidationBus, KeyStore, UsageCache, RateLimiter],
})
export class AuthModule {}
