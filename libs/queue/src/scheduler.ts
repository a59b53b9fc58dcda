import type { AppConfig } from '@app/config';
import { type JobType, queueName } from './jobs.js';
import { type RedisClient, redisKey } from './redis.js';

/**
 * The fair scheduler: which tenant's job enters BullMQ next. See docs/scheduling.md.
 *
 * Accepted jobs wait in the scheduler's own keys in Redis (one range per queue and tenant), not in BullMQ. When a worker has a free slot it
 * asks `dispatch` for work: one Lua script picks the tenant with the smallest pass (stride
 * scheduling: each dispatch adds 1/weight to the tenant's pass) among those with work waiting and
 * fewer leases than their max_concurrent_jobs, takes a lease for the job and pops it. Only then is
 * the job added to BullMQ, which does what it is good at (locks, stall recovery, retries). BullMQ's
 * wait list therefore holds about as many jobs as there are free slots, so a tenant that arrives
 * behind a flood waits for one slot to free, not for the flood.
 *
 * Leases are what make max_concurrent_jobs hold across every worker: a lease has an expiry, the
 * worker running the job renews it, and a crashed worker's lease simply runs out.
 */

/** What the scheduler needs to know about a job. */
export interface SchedulableJob {
  id: string;
  tenantId: string;
  type: JobType;
  accelerator: string | null;
}

/** The tenant's share: its concurrency cap and its weight (by plan). */
export interface TenantShare {
  cap: number;
  weight: number;
}

export interface Dispatched {
  queue: string;
  jobId: string;
  tenantId: string;
}

/**
 * Every key of the scheduler is in one unit (`{prefix:sched}`, one slot of a cluster): choosing the
 * fairest tenant across queues and counting its leases against its cap must be one atomic step.
 * Every script is given the same fixed KEYS, whatever the number of queues (queues are named in
 * ARGV and appear inside members):
 *
 *  1 members  hash   jobId → its member in `wait` (what is waiting here)
 *  2 pass     hash   tenant → stride pass (one number, whatever the queue)
 *  3 vt       string the virtual time: the pass of the last dispatch
 *  4 caps     hash   tenant → max_concurrent_jobs
 *  5 weights  hash   tenant → weight
 *  6 leases   zset   "tenant job" → expiry (ms, Redis's clock)
 *  7 held     hash   tenant → live leases
 *  8 seq      hash   counters that order `wait`
 *  9 ring     zset   tenant → pass: tenants with work waiting on any queue
 * 10 wait     zset   "queue tenant seq job" at score 0: each tenant's jobs of a queue are one lexicographic range, in order
 * 11 counts   hash   "queue tenant" → jobs waiting there, and "tenant" → jobs waiting on any queue
 * 12 ready    zset   jobId → dispatch time: dispatched to BullMQ, not yet started by a worker
 * 13 readyq   hash   jobId → its queue, and "#queue" → how many of `ready` are that queue's
 *
 * Queue names, tenant ids and job ids never contain a space. Time comes from Redis (TIME), so
 * every worker and API instance agrees on when a lease runs out.
 */
const KEY_NAMES = [
  'members',
  'pass',
  'vt',
  'caps',
  'weights',
  'leases',
  'held',
  'seq',
  'ring',
  'wait',
  'counts',
  'ready',
  'readyq',
] as const;

// Shared Lua: the clock, lease and readiness bookkeeping, the wait set's ranges.
const COMMON = `
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function held(t) return tonumber(redis.call('HGET', KEYS[7], t) or '0') end
-- A tenant the scheduler has not seen yet (its jobs reached BullMQ another way) is not capped here:
-- PostgreSQL's count at start still is.
local function capOf(t) return tonumber(redis.call('HGET', KEYS[4], t) or '1e9') end
local function decr(key, field)
  if redis.call('HINCRBY', key, field, -1) <= 0 then redis.call('HDEL', key, field) end
end
local function lease(t, id, untilMs)
  if redis.call('ZADD', KEYS[6], untilMs, t .. ' ' .. id) == 1 then redis.call('HINCRBY', KEYS[7], t, 1) end
end
local function unready(id)
  local q = redis.call('HGET', KEYS[13], id)
  if q then
    redis.call('HDEL', KEYS[13], id)
    redis.call('ZREM', KEYS[12], id)
    decr(KEYS[13], '#' .. q)
  end
end
-- Drops leases that ran out, and dispatches no worker started within a lease length (bounded batches).
local function expire(now, leaseMs)
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', now, 'LIMIT', 0, 256)) do
    redis.call('ZREM', KEYS[6], m)
    decr(KEYS[7], string.match(m, '^(%S+) '))
  end
  if leaseMs then
    for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[12], '-inf', now - leaseMs, 'LIMIT', 0, 256)) do unready(id) end
  end
end
local function readyOn(q) return tonumber(redis.call('HGET', KEYS[13], '#' .. q) or '0') end
local function waitingOn(q, t) return tonumber(redis.call('HGET', KEYS[11], q .. ' ' .. t) or '0') end
-- The bounds of a tenant's range of a queue in the wait set.
local function first(q, t) return '[' .. q .. ' ' .. t .. ' ' end
local function past(q, t) return '(' .. q .. ' ' .. t .. '!' end
-- One job fewer waiting for tenant t on queue q; it leaves the ring when none is left anywhere.
local function taken(q, t)
  decr(KEYS[11], q .. ' ' .. t)
  if redis.call('HINCRBY', KEYS[11], t, -1) <= 0 then
    redis.call('HDEL', KEYS[11], t)
    redis.call('ZREM', KEYS[9], t)
  end
end
`;

/** ARGV: queue, tenant, jobId, cap, weight, front (1: a job handed back goes first). 1 if added, 0 if waiting already. */
const ENQUEUE = `${COMMON}
local q, t, id = ARGV[1], ARGV[2], ARGV[3]
if redis.call('HEXISTS', KEYS[1], id) == 1 then return 0 end
redis.call('HSET', KEYS[4], t, ARGV[4])
redis.call('HSET', KEYS[5], t, ARGV[5])
local n
if ARGV[6] == '1' then n = 5e14 - redis.call('HINCRBY', KEYS[8], 'front', 1) else n = 5e14 + redis.call('HINCRBY', KEYS[8], 'back', 1) end
local member = q .. ' ' .. t .. ' ' .. string.format('%016d', n) .. ' ' .. id
redis.call('ZADD', KEYS[10], 0, member)
redis.call('HSET', KEYS[1], id, member)
redis.call('HINCRBY', KEYS[11], q .. ' ' .. t, 1)
if redis.call('HINCRBY', KEYS[11], t, 1) == 1 then
  -- A tenant that had nothing waiting comes back at the current virtual time at the earliest:
  -- idle time is not saved up as credit.
  local pass = tonumber(redis.call('HGET', KEYS[2], t) or '0')
  local vt = tonumber(redis.call('GET', KEYS[3]) or '0')
  if vt > pass then pass = vt end
  redis.call('HSET', KEYS[2], t, pass)
  redis.call('ZADD', KEYS[9], pass, t)
end
return 1
`;

/**
 * ARGV: leaseMs, free slots, then this worker's queues. Jobs dispatched to those queues and not yet
 * started (in BullMQ's wait list, by any worker) count against the free slots.
 * Returns a flat list: queue, jobId, tenant, queue, jobId, tenant, ...
 */
const DISPATCH = `${COMMON}
local now, leaseMs, want = clock(), tonumber(ARGV[1]), tonumber(ARGV[2])
expire(now, leaseMs)
local mine = {}
for i = 3, #ARGV do
  mine[#mine + 1] = ARGV[i]
  want = want - readyOn(ARGV[i])
end
local out = {}
local offset = 0
while want > 0 do
  -- The tenant with the smallest pass that is under its cap and has work on one of these queues.
  local bestT, bestQ, bestP
  while not bestT do
    local page = redis.call('ZRANGE', KEYS[9], offset, offset + 63, 'WITHSCORES')
    if #page == 0 then break end
    for j = 1, #page, 2 do
      local t = page[j]
      if held(t) < capOf(t) then
        for _, q in ipairs(mine) do
          if waitingOn(q, t) > 0 then
            bestT, bestQ, bestP = t, q, tonumber(page[j + 1])
            break
          end
        end
        if bestT then break end
      end
      offset = offset + 1
    end
  end
  if not bestT then break end
  local member = redis.call('ZRANGEBYLEX', KEYS[10], first(bestQ, bestT), past(bestQ, bestT), 'LIMIT', 0, 1)[1]
  if member then
    local id = string.match(member, '(%S+)$')
    redis.call('ZREM', KEYS[10], member)
    redis.call('HDEL', KEYS[1], id)
    lease(bestT, id, now + leaseMs)
    redis.call('ZADD', KEYS[12], now, id)
    redis.call('HSET', KEYS[13], id, bestQ)
    redis.call('HINCRBY', KEYS[13], '#' .. bestQ, 1)
    local w = tonumber(redis.call('HGET', KEYS[5], bestT) or '1')
    local vt = tonumber(redis.call('GET', KEYS[3]) or '0')
    if bestP > vt then redis.call('SET', KEYS[3], tostring(bestP)) end
    redis.call('HSET', KEYS[2], bestT, bestP + 1 / w)
    redis.call('ZADD', KEYS[9], 'XX', bestP + 1 / w, bestT)
    out[#out + 1] = bestQ
    out[#out + 1] = id
    out[#out + 1] = bestT
    want = want - 1
    taken(bestQ, bestT)
  else
    -- Counted but gone (cannot happen unless a key was edited by hand): forget the count.
    redis.call('HDEL', KEYS[11], bestQ .. ' ' .. bestT)
  end
  -- The ring changed order: look again from its start.
  offset = 0
end
return out
`;

/** ARGV: tenant, jobId, leaseMs, force. 1 if the job holds a lease now (and is started), 0 if its tenant is at its cap. */
const CLAIM = `${COMMON}
local t, id, leaseMs = ARGV[1], ARGV[2], tonumber(ARGV[3])
local now = clock()
expire(now, nil)
-- A worker has it now, whatever the answer: it no longer waits in BullMQ for a slot.
unready(id)
if ARGV[4] == '1' or redis.call('ZSCORE', KEYS[6], t .. ' ' .. id) or held(t) < capOf(t) then
  lease(t, id, now + leaseMs)
  return 1
end
return 0
`;

/** ARGV: tenant, jobId. The job holds no slot any more (it ended, or goes back to wait). */
const RELEASE = `${COMMON}
local t, id = ARGV[1], ARGV[2]
if redis.call('ZREM', KEYS[6], t .. ' ' .. id) == 1 then decr(KEYS[7], t) end
unready(id)
return 1
`;

/** ARGV: leaseMs, then pairs tenant, jobId. Renews leases that are still held. */
const RENEW = `${COMMON}
local now, leaseMs = clock(), tonumber(ARGV[1])
for i = 2, #ARGV, 2 do redis.call('ZADD', KEYS[6], 'XX', now + leaseMs, ARGV[i] .. ' ' .. ARGV[i + 1]) end
return 1
`;

/** ARGV: queue, tenant, jobId. Takes a waiting job out (a queued job canceled). 1 if it was waiting. */
const REMOVE = `${COMMON}
local q, t, id = ARGV[1], ARGV[2], ARGV[3]
local member = redis.call('HGET', KEYS[1], id)
if not member then return 0 end
redis.call('HDEL', KEYS[1], id)
if redis.call('ZREM', KEYS[10], member) == 1 then taken(q, t) end
return 1
`;

/**
 * ARGV: queue, tenant, jobId. The number of jobs that go before this one, if every tenant keeps its
 * turn (caps aside): those dispatched to the queue and not started, then for each tenant waiting
 * on this queue the jobs whose pass comes first. -1 when the job is not waiting here (in BullMQ already).
 */
const POSITION = `${COMMON}
local q, t, id = ARGV[1], ARGV[2], ARGV[3]
local member = redis.call('HGET', KEYS[1], id)
if not member then return -1 end
local i = redis.call('ZLEXCOUNT', KEYS[10], first(q, t), '(' .. member)
local function stride(u) return 1 / tonumber(redis.call('HGET', KEYS[5], u) or '1') end
local function pass(u) return tonumber(redis.call('HGET', KEYS[2], u) or '0') end
local mine = pass(t) + i * stride(t)
local ahead = i + readyOn(q)
for _, u in ipairs(redis.call('ZRANGE', KEYS[9], 0, -1)) do
  local n = waitingOn(q, u)
  if u ~= t and n > 0 then
    local d = (mine - pass(u)) / stride(u)
    -- u's k-th job goes first when its pass is lower (or equal, ties going to the smaller tenant id).
    local k
    if u < t then k = math.floor(d) + 1 else k = math.ceil(d) end
    if k < 0 then k = 0 end
    if k > n then k = n end
    ahead = ahead + k
  end
end
return ahead
`;

/** ARGV: tenant, then every queue. Forgets a deleted tenant: its waiting jobs, its place in the ring, its leases and share. */
const FORGET = `${COMMON}
local t = ARGV[1]
for i = 2, #ARGV do
  local q = ARGV[i]
  for _, m in ipairs(redis.call('ZRANGEBYLEX', KEYS[10], first(q, t), past(q, t))) do
    redis.call('HDEL', KEYS[1], string.match(m, '(%S+)$'))
    redis.call('ZREM', KEYS[10], m)
  end
  redis.call('HDEL', KEYS[11], q .. ' ' .. t)
end
redis.call('HDEL', KEYS[11], t)
redis.call('ZREM', KEYS[9], t)
for _, m in ipairs(redis.call('ZRANGE', KEYS[6], 0, -1)) do
  if string.match(m, '^(%S+) ') == t then redis.call('ZREM', KEYS[6], m) end
end
for _, k in ipairs({ KEYS[2], KEYS[4], KEYS[5], KEYS[7] }) do redis.call('HDEL', k, t) end
return 1
`;

/** ARGV: tenant. Its live leases, after dropping those that ran out. */
const LEASES = `${COMMON}
expire(clock(), nil)
return held(ARGV[1])
`;

const SOURCES = {
  aiaasSchedEnqueue: ENQUEUE,
  aiaasSchedDispatch: DISPATCH,
  aiaasSchedClaim: CLAIM,
  aiaasSchedRelease: RELEASE,
  aiaasSchedRenew: RENEW,
  aiaasSchedRemove: REMOVE,
  aiaasSchedPosition: POSITION,
  aiaasSchedForget: FORGET,
  aiaasSchedLeases: LEASES,
};

type ScriptCommands = { [K in keyof typeof SOURCES]: (...args: string[]) => Promise<K extends 'aiaasSchedDispatch' ? string[] : number> };

export class Scheduler {
  /** The KEYS of every script (see KEY_NAMES), as the first arguments of each call. */
  private readonly keys: string[];
  private readonly redis: RedisClient & ScriptCommands;

  constructor(
    config: Pick<AppConfig, 'redisPrefix'>,
    redis: RedisClient,
    /** How long a lease lives without renewal: past it, a crashed worker's slot is free again. */
    readonly leaseMs: number,
    private readonly allQueues: readonly string[],
  ) {
    this.keys = KEY_NAMES.map((k) => redisKey(config, 'sched', k));
    for (const [name, lua] of Object.entries(SOURCES)) {
      if (!(name in redis)) redis.defineCommand(name, { numberOfKeys: this.keys.length, lua });
    }
    this.redis = redis as RedisClient & ScriptCommands;
  }

  /** Puts an accepted job in its tenant's waiting list. Idempotent: a job waiting already stays where it is. */
  async enqueue(job: SchedulableJob, share: TenantShare, options: { front?: boolean } = {}): Promise<boolean> {
    const added = await this.redis.aiaasSchedEnqueue(
      ...this.keys,
      queueName(job.type, job.accelerator),
      job.tenantId,
      job.id,
      String(Math.max(0, Math.floor(share.cap))),
      String(share.weight),
      options.front ? '1' : '0',
    );
    return added === 1;
  }

  /** Up to `free` jobs for a worker consuming `queues`, each with a lease taken, fairest first. */
  async dispatch(queues: readonly string[], free: number): Promise<Dispatched[]> {
    if (free <= 0) return [];
    const flat = await this.redis.aiaasSchedDispatch(...this.keys, String(this.leaseMs), String(free), ...queues);
    const out: Dispatched[] = [];
    for (let i = 0; i < flat.length; i += 3) out.push({ queue: flat[i], jobId: flat[i + 1], tenantId: flat[i + 2] });
    return out;
  }

  /**
   * A worker about to start a job takes (or keeps) its lease. `force` for a job whose row says
   * running already (handed back by a stall): it holds its slot, whatever the count says.
   */
  async claim(tenantId: string, jobId: string, force: boolean): Promise<boolean> {
    return (await this.redis.aiaasSchedClaim(...this.keys, tenantId, jobId, String(this.leaseMs), force ? '1' : '0')) === 1;
  }

  async renew(held: Array<{ tenantId: string; jobId: string }>): Promise<void> {
    if (held.length === 0) return;
    await this.redis.aiaasSchedRenew(...this.keys, String(this.leaseMs), ...held.flatMap((h) => [h.tenantId, h.jobId]));
  }

  /** The job no longer holds a slot (it ended, or goes back to wait for one). */
  async release(tenantId: string, jobId: string): Promise<void> {
    await this.redis.aiaasSchedRelease(...this.keys, tenantId, jobId);
  }

  /** Takes a waiting job out; false if it was not waiting (dispatched already, or never enqueued). */
  async remove(job: SchedulableJob): Promise<boolean> {
    return (await this.redis.aiaasSchedRemove(...this.keys, queueName(job.type, job.accelerator), job.tenantId, job.id)) === 1;
  }

  /** One of the scheduler's keys by name. */
  private key(name: (typeof KEY_NAMES)[number]): string {
    return this.keys[KEY_NAMES.indexOf(name)];
  }

  /** Whether the job is waiting in the scheduler. */
  async holds(jobId: string): Promise<boolean> {
    return (await this.redis.hexists(this.key('members'), jobId)) === 1;
  }

  /** Which of the jobs wait in the scheduler, in one round trip (the reconciler's pass over a backlog). */
  async holdsMany(jobIds: readonly string[]): Promise<Set<string>> {
    if (jobIds.length === 0) return new Set();
    const found = await this.redis.hmget(this.key('members'), ...jobIds);
    return new Set(jobIds.filter((_, i) => found[i] !== null));
  }

  /** 1-based place of a waiting job in the order the scheduler will dispatch it; null once it is in BullMQ. */
  async position(job: SchedulableJob): Promise<number | null> {
    const ahead = await this.redis.aiaasSchedPosition(...this.keys, queueName(job.type, job.accelerator), job.tenantId, job.id);
    return ahead < 0 ? null : ahead + 1;
  }

  /** Forgets a deleted tenant: its waiting jobs, its place in the ring, its leases and share. */
  async forget(tenantId: string): Promise<void> {
    await this.redis.aiaasSchedForget(...this.keys, tenantId, ...this.allQueues);
  }

  /** Live leases of a tenant (tests and the admin overview). */
  async leases(tenantId: string): Promise<number> {
    return this.redis.aiaasSchedLeases(...this.keys, tenantId);
  }

  /** Jobs waiting in the scheduler, per queue and tenant. */
  async waiting(): Promise<Array<{ queue: string; tenantId: string; jobs: number }>> {
    const counts = await this.redis.hgetall(this.key('counts'));
    const out: Array<{ queue: string; tenantId: string; jobs: number }> = [];
    for (const [field, n] of Object.entries(counts)) {
      // "<queue> <tenant>"; the bare "<tenant>" fields are totals over the queues.
      const space = field.indexOf(' ');
      if (space > 0) out.push({ queue: field.slice(0, space), tenantId: field.slice(space + 1), jobs: Number(n) });
    }
    return out.sort((a, b) => this.allQueues.indexOf(a.queue) - this.allQueues.indexOf(b.queue) || (a.tenantId < b.tenantId ? -1 : 1));
  }
}

/** The channel on which a new waiting job wakes the workers' dispatchers. */
export function dispatchChannel(config: Pick<AppConfig, 'redisPrefix'>): string {
  return redisKey(config, 'sched', 'kick');
}

/**
 * A lease outlives BullMQ's stall detection (a lock duration plus a stalled-check interval, twice
 * over), so a job whose worker died is handed to another worker while its lease still holds the
 * slot; a lease nobody renews (the job never comes back) frees the slot after that.
 */
export function schedulerLeaseMs(config: Pick<AppConfig, 'workerLockDurationMs' | 'workerStalledIntervalMs'>): number {
  return 2 * (config.workerLockDurationMs + config.workerStalledIntervalMs);
}
