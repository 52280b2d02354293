-- Join the tier-2 queue, or read one's place in it; one round trip, atomic.
-- KEYS: 1 queue, 2 heartbeats, 3 active, 4 sequence, 5 policy, 6 admitted total,
--       7 per-address rate-limit counter, 8 per-user rate-limit counter,
--       9 arrivals counter of this second (what Auto activation watches),
--       10 blocked users, 11 random-order queue, 12 admitted-at hash (sessions),
--       13 invites hash (code id -> user), 14 priority sequence
-- ARGV: 1 user, 2 now_ms, 3 mode ("join" | "status"), 4 default ttl seconds,
--       5 per-address limit, 6 per-user limit (0 = none), 7 window seconds,
--       8 the random method's seed, 9 a verified invite code's id ('' none),
--       10 its mode ("skip" | "priority"), 11 the priority score base
-- Returns {"admitted", expiry_ms[, invite]} | {"waiting", rank (0-based), total[, invite]}
--       | {"absent"} | {"limited", scope, retry_after_seconds}
--       | {"refused", "blocked" | "closed" | "draining" | "invite-used"}
-- invite: "redeemed" when this call used the code up, "again" when the
-- user had redeemed it before (a retry).
local user, now = ARGV[1], tonumber(ARGV[2])
if ARGV[3] == 'join' then
  -- Fixed-window join limits, counted before anything else changes.
  local checks = {{KEYS[7], tonumber(ARGV[5]), 'address'}, {KEYS[8], tonumber(ARGV[6]), 'user'}}
  for _, check in ipairs(checks) do
    if check[2] > 0 then -- 0: no limit, and no counter key
      local count = redis.call('INCR', check[1])
      if count == 1 then
        redis.call('EXPIRE', check[1], ARGV[7])
      end
      if count > check[2] then
        return {'limited', check[3], redis.call('TTL', check[1])}
      end
    end
  end
  if redis.call('SISMEMBER', KEYS[10], user) == 1 then
    return {'refused', 'blocked'}
  end
end
local p = redis.call('HMGET', KEYS[5], 'active', 'entryTokenTtlSeconds', 'method', 'draining', 'sessionMaxSeconds')
local method = p[3] or 'fifo'
local ttl = tonumber(p[2] or ARGV[4]) or tonumber(ARGV[4])
local expiry = redis.call('ZSCORE', KEYS[3], user)
if expiry and tonumber(expiry) > now then
  -- A session renews while its buyer is active (any call), by the token's
  -- lifetime, never past sessionMaxSeconds from admission.
  local max_s = tonumber(p[5]) or 0
  if max_s > 0 then
    local since = tonumber(redis.call('HGET', KEYS[12], user)) or now
    local renewed = math.min(now + ttl * 1000, since + max_s * 1000)
    if renewed > tonumber(expiry) then
      redis.call('ZADD', KEYS[3], 'XX', renewed, user)
      expiry = tostring(renewed)
    end
  end
  return {'admitted', expiry}
end
-- A new arrival, counted whether the room holds it or not: with the room
-- off nobody waits, and this is what shows a surge.
local function count_arrival()
  redis.call('INCR', KEYS[9])
  redis.call('EXPIRE', KEYS[9], 120)
end
-- The waiting answer: the place in the order the room admits by.
local function waiting(...)
  local order = KEYS[1]
  if method == 'random' then order = KEYS[11] end
  return {'waiting', redis.call('ZRANK', order, user) or 0, redis.call('ZCARD', KEYS[1]), ...}
end
local function admit()
  local until_ms = now + ttl * 1000
  redis.call('ZADD', KEYS[3], until_ms, user)
  redis.call('HSET', KEYS[12], user, now)
  redis.call('INCR', KEYS[6])
  return tostring(until_ms)
end
-- An invite code (signature, expiry and room checked by the service): once
-- per code, whoever presents it first; it lets its holder in past a closed
-- (reject) room, never past a draining one.
local invite = ARGV[9] or ''
if ARGV[3] == 'join' and invite ~= '' then
  local holder = redis.call('HGET', KEYS[13], invite)
  if holder and holder ~= user then
    return {'refused', 'invite-used'}
  end
  if p[4] == '1' then
    return {'refused', 'draining'}
  end
  local use = 'again'
  if not holder then
    redis.call('HSET', KEYS[13], invite, user)
    use = 'redeemed'
  end
  local queued = redis.call('ZSCORE', KEYS[1], user)
  if not queued then
    count_arrival()
  end
  if ARGV[10] == 'skip' or p[1] == '0' or method == 'passthrough' then
    redis.call('ZREM', KEYS[1], user)
    redis.call('ZREM', KEYS[11], user)
    redis.call('ZREM', KEYS[2], user)
    return {'admitted', admit(), use}
  end
  -- Priority: ahead of every join without a code (and of the pre-queue
  -- draw), in the order the codes were redeemed.
  local base = tonumber(ARGV[11])
  if not queued or tonumber(queued) >= base / 2 then
    local score = base + redis.call('INCR', KEYS[14])
    redis.call('ZADD', KEYS[1], score, user)
    redis.call('ZADD', KEYS[11], score, user)
  end
  redis.call('ZADD', KEYS[2], now, user)
  return waiting(use)
end
local seq = redis.call('ZSCORE', KEYS[1], user)
if not seq then
  if ARGV[3] ~= 'join' then
    return {'absent'}
  end
  -- Nobody new while the sale is closed or the room drains; those already
  -- in line keep their place (a switch back lets them on).
  if method == 'reject' then
    return {'refused', 'closed'}
  end
  if p[4] == '1' then
    return {'refused', 'draining'}
  end
  count_arrival()
  -- Room off, or on and passing everyone through: admit on join, no queue.
  if p[1] == '0' or method == 'passthrough' then
    return {'admitted', admit()}
  end
  seq = redis.call('INCR', KEYS[4])
  redis.call('ZADD', KEYS[1], seq, user)
  -- 13 hex digits: 52 bits, exact in a double (a ZSET score).
  redis.call('ZADD', KEYS[11], tonumber(string.sub(redis.sha1hex(ARGV[8] .. user), 1, 13), 16), user)
end
-- Any sign of life (join, poll, heartbeat) keeps the place.
redis.call('ZADD', KEYS[2], now, user)
return waiting()
