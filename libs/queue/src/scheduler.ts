import type { AppConfig } from '@app/config';
import type { Redis } from 'ioredis';
import { bullPrefix, queueName, type JobType } from './jobs.js';
import { redisKey } from './redis.js';

/**
 * The fair scheduler: which tenant's job enters BullMQ next. See docs/scheduling.md.
 *
 * Accepted jobs wait in per-tenant lists in Redis, not in BullMQ. When a worker has a free slot it
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

const ALL_QUEUES_ARGS = (queues: readonly string[]) => [String(queues.length), ...queues];

// Shared Lua: a tenant's live lease count after dropping expired leases.
const LIVE_LEASES = `
local function live(base, t, now)
  local key = base .. ':leases:' .. t
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  return redis.call('ZCARD', key)
end
-- A tenant the scheduler has not seen yet (its jobs reached BullMQ another way) is not capped here:
-- PostgreSQL's count at start still is.
local function capOf(base, t)
  return tonumber(redis.call('HGET', base .. ':tenant:' .. t, 'cap') or '1e9')
end
`;

// Keeps a tenant's score equal in every ring it is in (its pass is one number, whatever the queue).
const SET_PASS = `
local function setPass(base, t, pass, nq, queues)
  redis.call('HSET', base .. ':pass', t, pass)
  for i = 1, nq do redis.call('ZADD', base .. ':ring:' .. queues[i], 'XX', pass, t) end
end
`;

/**
 * ARGV: base, queue, tenant, jobId, cap, weight, front (1: a job handed back goes first), nq, queues...
 * Returns 1 if added, 0 if the job was waiting already (enqueueing is idempotent).
 */
const ENQUEUE = `${SET_PASS}
local base, q, t, id = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local nq = tonumber(ARGV[8])
local queues = {}
for i = 1, nq do queues[i] = ARGV[8 + i] end
if redis.call('SADD', base .. ':members', id) == 0 then return 0 end
redis.call('HSET', base .. ':tenant:' .. t, 'cap', ARGV[5], 'weight', ARGV[6])
local list = base .. ':pending:' .. q .. ':' .. t
if ARGV[7] == '1' then redis.call('LPUSH', list, id) else redis.call('RPUSH', list, id) end
local ring = base .. ':ring:' .. q
if not redis.call('ZSCORE', ring, t) then
  -- A tenant that had nothing waiting here comes back at the current virtual time at the earliest:
  -- idle time is not saved up as credit.
  local pass = tonumber(redis.call('HGET', base .. ':pass', t) or '0')
  local vt = tonumber(redis.call('GET', base .. ':vt') or '0')
  if vt > pass then pass = vt end
  redis.call('ZADD', ring, pass, t)
  setPass(base, t, pass, nq, queues)
end
return 1
`;

/**
 * ARGV: base, bullBase, now, leaseMs, free, nq, queues (this worker's)..., na, allQueues...
 * Returns a flat list: queue, jobId, tenant, queue, jobId, tenant, ...
 */
const DISPATCH = `${LIVE_LEASES}${SET_PASS}
local base, bull = ARGV[1], ARGV[2]
local now, lease, want = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local nq = tonumber(ARGV[6])
local mine = {}
for i = 1, nq do mine[i] = ARGV[6 + i] end
local na = tonumber(ARGV[7 + nq])
local all = {}
for i = 1, na do all[i] = ARGV[7 + nq + i] end
-- Jobs already in BullMQ waiting for a slot count against the free slots.
for _, q in ipairs(mine) do
  want = want - redis.call('LLEN', bull .. ':' .. q .. ':wait') - redis.call('ZCARD', bull .. ':' .. q .. ':prioritized')
end
local out = {}
local eligible = {}
while want > 0 do
  local bestT, bestQ, bestP
  for _, q in ipairs(mine) do
    local ring = base .. ':ring:' .. q
    local offset, done = 0, false
    while not done do
      local page = redis.call('ZRANGE', ring, offset, offset + 63, 'WITHSCORES')
      if #page == 0 then break end
      for j = 1, #page, 2 do
        local t, p = page[j], tonumber(page[j + 1])
        if bestP and p >= bestP then done = true break end
        if eligible[t] == nil then eligible[t] = live(base, t, now) < capOf(base, t) end
        if eligible[t] then
          bestT, bestQ, bestP = t, q, p
          done = true
          break
        end
      end
      offset = offset + 64
    end
  end
  if not bestT then break end
  local list = base .. ':pending:' .. bestQ .. ':' .. bestT
  local id = redis.call('LPOP', list)
  if id then
    redis.call('SREM', base .. ':members', id)
    redis.call('ZADD', base .. ':leases:' .. bestT, now + lease, id)
    local w = tonumber(redis.call('HGET', base .. ':tenant:' .. bestT, 'weight') or '1')
    local vt = tonumber(redis.call('GET', base .. ':vt') or '0')
    if bestP > vt then redis.call('SET', base .. ':vt', tostring(bestP)) end
    setPass(base, bestT, bestP + 1 / w, na, all)
    out[#out + 1] = bestQ
    out[#out + 1] = id
    out[#out + 1] = bestT
    want = want - 1
    eligible[bestT] = nil
  end
  if redis.call('LLEN', list) == 0 then redis.call('ZREM', base .. ':ring:' .. bestQ, bestT) end
end
return out
`;

/** ARGV: base, tenant, jobId, now, leaseMs, force. 1 if the job holds a lease now, 0 if its tenant is at its cap. */
const CLAIM = `${LIVE_LEASES}
local base, t, id = ARGV[1], ARGV[2], ARGV[3]
local now, lease = tonumber(ARGV[4]), tonumber(ARGV[5])
local key = base .. ':leases:' .. t
local n = live(base, t, now)
if ARGV[6] == '1' or redis.call('ZSCORE', key, id) or n < capOf(base, t) then
  redis.call('ZADD', key, now + lease, id)
  return 1
end
return 0
`;

/** ARGV: base, queue, tenant, jobId. Takes a waiting job out (a queued job canceled). 1 if it was waiting. */
const REMOVE = `
local base, q, t, id = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if redis.call('SREM', base .. ':members', id) == 0 then return 0 end
local list = base .. ':pending:' .. q .. ':' .. t
redis.call('LREM', list, 0, id)
if redis.call('LLEN', list) == 0 then redis.call('ZREM', base .. ':ring:' .. q, t) end
return 1
`;

/**
 * ARGV: base, bullBase, queue, tenant, jobId. The number of jobs that go before this one, if every
 * tenant keeps its turn (caps aside): the BullMQ wait list, then for each tenant waiting on this
 * queue the jobs whose pass comes first. -1 when the job is not waiting here (in BullMQ already).
 */
const POSITION = `
local base, bull, q, t, id = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
-- From the tail (RANK -1): a job just submitted is last, and is found at once however long the list.
local i = redis.call('LPOS', base .. ':pending:' .. q .. ':' .. t, id, 'RANK', -1)
if not i then return -1 end
local function stride(u) return 1 / tonumber(redis.call('HGET', base .. ':tenant:' .. u, 'weight') or '1') end
local function pass(u) return tonumber(redis.call('HGET', base .. ':pass', u) or '0') end
local mine = pass(t) + i * stride(t)
local ahead = i + redis.call('LLEN', bull .. ':' .. q .. ':wait') + redis.call('ZCARD', bull .. ':' .. q .. ':prioritized')
for _, u in ipairs(redis.call('ZRANGE', base .. ':ring:' .. q, 0, -1)) do
  if u ~= t then
    local n = redis.call('LLEN', base .. ':pending:' .. q .. ':' .. u)
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

/** ARGV: base, now, leaseMs, then pairs tenant, jobId. Renews leases that are still held. */
const RENEW = `
local base, now, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
for i = 4, #ARGV, 2 do
  redis.call('ZADD', base .. ':leases:' .. ARGV[i], 'XX', now + lease, ARGV[i + 1])
end
return 1
`;

type Scripts = Record<'enqueue' | 'dispatch' | 'claim' | 'remove' | 'position' | 'renew', string>;
const SOURCES: Scripts = { enqueue: ENQUEUE, dispatch: DISPATCH, claim: CLAIM, remove: REMOVE, position: POSITION, renew: RENEW };

interface ScriptCommands {
  aiaasSchedEnqueue(...args: string[]): Promise<number>;
  aiaasSchedDispatch(...args: string[]): Promise<string[]>;
  aiaasSchedClaim(...args: string[]): Promise<number>;
  aiaasSchedRemove(...args: string[]): Promise<number>;
  aiaasSchedPosition(...args: string[]): Promise<number>;
  aiaasSchedRenew(...args: string[]): Promise<number>;
}

const COMMAND_NAMES: Record<keyof Scripts, keyof ScriptCommands> = {
  enqueue: 'aiaasSchedEnqueue',
  dispatch: 'aiaasSchedDispatch',
  claim: 'aiaasSchedClaim',
  remove: 'aiaasSchedRemove',
  position: 'aiaasSchedPosition',
  renew: 'aiaasSchedRenew',
};

export class Scheduler {
  private readonly base: string;
  private readonly bull: string;
  private readonly redis: Redis & ScriptCommands;

  constructor(
    config: Pick<AppConfig, 'redisPrefix'>,
    redis: Redis,
    /** How long a lease lives without renewal: past it, a crashed worker's slot is free again. */
    readonly leaseMs: number,
    private readonly allQueues: readonly string[],
  ) {
    this.base = redisKey(config, 'sched');
    this.bull = bullPrefix(config);
    for (const [name, lua] of Object.entries(SOURCES) as Array<[keyof Scripts, string]>) {
      if (!(COMMAND_NAMES[name] in redis)) redis.defineCommand(COMMAND_NAMES[name], { numberOfKeys: 0, lua });
    }
    this.redis = redis as Redis & ScriptCommands;
  }

  /** Puts an accepted job in its tenant's waiting list. Idempotent: a job waiting already stays where it is. */
  async enqueue(job: SchedulableJob, share: TenantShare, options: { front?: boolean } = {}): Promise<boolean> {
    const added = await this.redis.aiaasSchedEnqueue(
      this.base,
      queueName(job.type, job.accelerator),
      job.tenantId,
      job.id,
      String(Math.max(0, Math.floor(share.cap))),
      String(share.weight),
      options.front ? '1' : '0',
      ...ALL_QUEUES_ARGS(this.allQueues),
    );
    return added === 1;
  }

  /** Up to `free` jobs for a worker consuming `queues`, each with a lease taken, fairest first. */
  async dispatch(queues: readonly string[], free: number): Promise<Dispatched[]> {
    if (free <= 0) return [];
    const flat = await this.redis.aiaasSchedDispatch(
      this.base,
      this.bull,
      String(Date.now()),
      String(this.leaseMs),
      String(free),
      ...ALL_QUEUES_ARGS(queues),
      ...ALL_QUEUES_ARGS(this.allQueues),
    );
    const out: Dispatched[] = [];
    for (let i = 0; i < flat.length; i += 3) out.push({ queue: flat[i], jobId: flat[i + 1], tenantId: flat[i + 2] });
    return out;
  }

  /**
   * A worker about to start a job takes (or keeps) its lease. `force` for a job whose row says
   * running already (handed back by a stall): it holds its slot, whatever the count says.
   */
  async claim(tenantId: string, jobId: string, force: boolean): Promise<boolean> {
    return (
      (await this.redis.aiaasSchedClaim(this.base, tenantId, jobId, String(Date.now()), String(this.leaseMs), force ? '1' : '0')) === 1
    );
  }

  async renew(held: Array<{ tenantId: string; jobId: string }>): Promise<void> {
    if (held.length === 0) return;
    await this.redis.aiaasSchedRenew(this.base, String(Date.now()), String(this.leaseMs), ...held.flatMap((h) => [h.tenantId, h.jobId]));
  }

  /** The job no longer holds a slot (it ended, or goes back to wait for one). */
  async release(tenantId: string, jobId: string): Promise<void> {
    await this.redis.zrem(`${this.base}:leases:${tenantId}`, jobId);
  }

  /** Takes a waiting job out; false if it was not waiting (dispatched already, or never enqueued). */
  async remove(job: SchedulableJob): Promise<boolean> {
    return (await this.redis.aiaasSchedRemove(this.base, queueName(job.type, job.accelerator), job.tenantId, job.id)) === 1;
  }

  /** Whether the job is waiting in the scheduler. */
  async holds(jobId: string): Promise<boolean> {
    return (await this.redis.sismember(`${this.base}:members`, jobId)) === 1;
  }

  /** Which of the jobs wait in the scheduler, in one round trip (the reconciler's pass over a backlog). */
  async holdsMany(jobIds: readonly string[]): Promise<Set<string>> {
    if (jobIds.length === 0) return new Set();
    const found = await this.redis.smismember(`${this.base}:members`, [...jobIds]);
    return new Set(jobIds.filter((_, i) => found[i] === 1));
  }

  /** 1-based place of a waiting job in the order the scheduler will dispatch it; null once it is in BullMQ. */
  async position(job: SchedulableJob): Promise<number | null> {
    const ahead = await this.redis.aiaasSchedPosition(this.base, this.bull, queueName(job.type, job.accelerator), job.tenantId, job.id);
    return ahead < 0 ? null : ahead + 1;
  }

  /** Forgets a deleted tenant: its waiting jobs, its place in every ring, its leases and share. */
  async forget(tenantId: string): Promise<void> {
    for (const queue of this.allQueues) {
      const list = `${this.base}:pending:${queue}:${tenantId}`;
      const ids = await this.redis.lrange(list, 0, -1);
      const p = this.redis.multi();
      if (ids.length) p.srem(`${this.base}:members`, ...ids);
      p.del(list);
      p.zrem(`${this.base}:ring:${queue}`, tenantId);
      await p.exec();
    }
    await this.redis.del(`${this.base}:leases:${tenantId}`, `${this.base}:tenant:${tenantId}`);
    await this.redis.hdel(`${this.base}:pass`, tenantId);
  }

  /** Live leases of a tenant (tests and the admin overview). */
  async leases(tenantId: string): Promise<number> {
    await this.redis.zremrangebyscore(`${this.base}:leases:${tenantId}`, '-inf', Date.now());
    return this.redis.zcard(`${this.base}:leases:${tenantId}`);
  }

  /** Jobs waiting in the scheduler, per queue and tenant. */
  async waiting(): Promise<Array<{ queue: string; tenantId: string; jobs: number }>> {
    const out: Array<{ queue: string; tenantId: string; jobs: number }> = [];
    for (const queue of this.allQueues) {
      for (const tenantId of await this.redis.zrange(`${this.base}:ring:${queue}`, '0', '-1')) {
        out.push({ queue, tenantId, jobs: await this.redis.llen(`${this.base}:pending:${queue}:${tenantId}`) });
      }
    }
    return out;
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
