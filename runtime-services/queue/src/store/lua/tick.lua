-- One admitter tick: reap, expire, admit. One call, atomic, so the threshold
-- holds even if two replicas both believe they lead (only the exact lease
-- token may admit).
-- KEYS: 1 lease, 2 queue, 3 heartbeats, 4 active, 5 admitted total,
--       6 rate samples, 7 sequence clock, 8 sequence, 9 policy,
--       10 inventory, 11 random-order queue, 12 random seed hash,
--       13 admitted-at hash (sessions)
-- ARGV: 1 lease token, 2 now_ms, 3 tick_ms, 4 heartbeat timeout ms,
--       5 lease ms, 6 default users/s, 7 default max active, 8 default ttl s,
--       9 inventory freshness ms
-- Returns {admitted, reaped, active, depth} or {-1} when fenced out.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {-1}
end
local now = tonumber(ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[5])

-- Waiters whose heartbeat stopped lose their place.
local reaped = 0
local dead = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now - tonumber(ARGV[4]), 'LIMIT', 0, 5000)
for i = 1, #dead, 500 do
  local batch = {unpack(dead, i, math.min(i + 499, #dead))}
  reaped = reaped + redis.call('ZREM', KEYS[2], unpack(batch))
  redis.call('ZREM', KEYS[3], unpack(batch))
  redis.call('ZREM', KEYS[11], unpack(batch))
end

-- Entries that expired free their slot (and forget when they began).
local expired = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, 5000)
for i = 1, #expired, 500 do
  local batch = {unpack(expired, i, math.min(i + 499, #expired))}
  redis.call('ZREM', KEYS[4], unpack(batch))
  redis.call('HDEL', KEYS[13], unpack(batch))
end
-- Past the batch limit: the slots are freed all the same (the threshold
-- must count only live entries); their start times go with a later tick.
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)

local p = redis.call('HMGET', KEYS[9], 'usersPerSecond', 'maxActiveUsers', 'entryTokenTtlSeconds', 'salesOpenAt',
  'method', 'paused', 'draining', 'minPlaces')
local rate = tonumber(p[1]) or tonumber(ARGV[6])
local max_active = tonumber(p[2]) or tonumber(ARGV[7])
local ttl = tonumber(p[3]) or tonumber(ARGV[8])
local opens_ms = (tonumber(p[4]) or 0) * 1000
local method = p[5] or 'fifo'

-- Who may get in at all: not while paused, draining or closed, nor while the
-- ticket service reports fewer places than minPlaces (people must not wait
-- for stock that is gone). An inventory read older than the freshness limit
-- is ignored: a silent ticket service must not stop the sale.
local admitting = p[6] ~= '1' and p[7] ~= '1' and method ~= 'reject'
local min_places = tonumber(p[8]) or 0
if admitting and min_places > 0 then
  local inv = redis.call('HMGET', KEYS[10], 'placesLeft', 'atMs')
  local left, at = tonumber(inv[1]), tonumber(inv[2])
  if left and at and now - at <= tonumber(ARGV[9]) and left < min_places then
    admitting = false
  end
end

local active = redis.call('ZCARD', KEYS[4])
local admitted = 0
if admitting and method == 'passthrough' then
  -- Everyone through: who waited from before the switch gets in at once.
  rate, max_active = 5000, active + 5000
end
if admitting and now >= opens_ms then
  -- A sliding one-second window: what the ticks of the last second admitted
  -- is spent. Per tick alone, a late tick followed by an on-time one admitted
  -- twice the rate within one second (798 against 400 in the flash sale).
  -- Any one-second window's last tick saw every other tick in it, so no
  -- window admits more than the rate, whatever the tick length or delays.
  local spent = 0
  for _, sample in ipairs(redis.call('LRANGE', KEYS[6], 0, 63)) do
    local at, count = string.match(sample, '^(%d+):(%d+)$')
    at = tonumber(at)
    if not at or at <= now - 1000 then break end
    if at <= now then spent = spent + tonumber(count) end
  end
  local budget = math.min(math.floor(rate * tonumber(ARGV[3]) / 1000), rate - spent)
  local n = math.min(budget, max_active - active)
  if n > 0 then
    -- FIFO pops the join order; random the seed's order. The other set
    -- forgets the admitted, so both always hold the same waiters.
    local first, other = KEYS[2], KEYS[11]
    if method == 'random' then
      first, other = KEYS[11], KEYS[2]
      redis.call('HSETNX', KEYS[12], 'usedFromMs', ARGV[2])
    end
    local popped = redis.call('ZPOPMIN', first, n)
    local until_ms = now + ttl * 1000
    for i = 1, #popped, 2 do
      redis.call('ZADD', KEYS[4], until_ms, popped[i])
      redis.call('HSET', KEYS[13], popped[i], ARGV[2])
      redis.call('ZREM', KEYS[3], popped[i])
      redis.call('ZREM', other, popped[i])
      admitted = admitted + 1
    end
    if admitted > 0 then
      redis.call('INCRBY', KEYS[5], admitted)
    end
  end
end

-- Measured rate for ETAs: the last 120 ticks.
redis.call('LPUSH', KEYS[6], ARGV[2] .. ':' .. admitted)
redis.call('LTRIM', KEYS[6], 0, 119)
-- Date the join sequence once per tick (one hour kept).
redis.call('ZADD', KEYS[7], tonumber(redis.call('GET', KEYS[8]) or '0'), ARGV[2])
redis.call('ZREMRANGEBYRANK', KEYS[7], 0, -3601)

return {admitted, reaped, active + admitted, redis.call('ZCARD', KEYS[2])}
