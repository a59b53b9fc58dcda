import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { PassportModule } from '@nestjs/passport';
import { ApiKeyGuard } from './auth.guard.js';
import { ApiKeyStrategy } from './api-key.strategy.js';
import { KeyStore } from './key-store.js';
import { RateLimiter } from './rate-limiter.js';

@Module({
  imports: [PassportModule.register({ session: false })],
  providers: [KeyStore, RateLimiter, ApiKeyStrategy, { provide: APP_GUARD, useClass: ApiKeyGuard }],
  exports: [KeyStore, RateLimiter],
})
export class AuthModule {}
