import { APP_CONFIG, type AppConfig } from '@app/config';
import { redisKey, type RedisClient } from '@app/queue';
import { Inject, Injectable } from '@nestjs/common';
import { REDIS } from '../infra/infra.module.js';

/**
 * KEYS[1]: the address's failure counter. ARGV[1]: the limit per window. Answers the ms until the
 * window ends when the address is over the limit, else 0.
 */
const CHECK = `
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n < tonumber(ARGV[1]) then return 0 end
return math.max(1, redis.call('PTTL', KEYS[1]))
`;
/** KEYS[1]: the address's failure counter. ARGV[1]: the window in ms, which starts at the first failure. */
const FAIL = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
`;

const WINDOW_MS = 60_000;

type Scripts = {
  aiaasAuthFailCheck(key: string, limit: number): Promise<number>;
  aiaasAuthFail(key: string, windowMs: number): Promise<number>;
};

/**
 * Unknown keys per client address and minute (AUTH_FAILURES_PER_MINUTE), in Redis so that every API
 * instance counts together. Past the limit the address gets 429 before any database lookup; if
 * Redis does not answer, nothing is throttled (the negative cache still absorbs repeats).
 */
@Injectable()
export class AuthFailureThrottle {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(REDIS) private readonly redis: RedisClient,
  ) {
    redis.defineCommand('aiaasAuthFailCheck', { numberOfKeys: 1, lua: CHECK });
    redis.defineCommand('aiaasAuthFail', { numberOfKeys: 1, lua: FAIL });
  }

  /** Seconds the address must wait before its next lookup, or 0. */
  async retryAfter(address: string): Promise<number> {
    if (this.config.authFailuresPerMinute === 0) return 0;
    const ms = await this.scripts.aiaasAuthFailCheck(this.keyOf(address), this.config.authFailuresPerMinute).catch(() => 0);
    return ms > 0 ? Math.ceil(ms / 1000) : 0;
  }

  failed(address: string): void {
    if (this.config.authFailuresPerMinute === 0) return;
    this.scripts.aiaasAuthFail(this.keyOf(address), WINDOW_MS).catch(() => undefined);
  }

  private get scripts(): Scripts {
    return this.redis as unknown as Scripts;
  }

  private keyOf(address: string): string {
    return redisKey(this.config, `af:${address}`);
  }
}
