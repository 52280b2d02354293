-- Join the tier-2 queue, or read one's place in it; one round trip, atomic.
-- KEYS: 1 queue, 2 heartbeats, 3 active, 4 sequence, 5 policy, 6 admitted total
-- ARGV: 1 user, 2 now_ms, 3 mode ("join" | "status"), 4 default ttl seconds
-- Returns {"admitted", expiry_ms} | {"waiting", rank (0-based), total} | {"absent"}
local user, now = ARGV[1], tonumber(ARGV[2])
local expiry = redis.call('ZSCORE', KEYS[3], user)
if expiry and tonumber(expiry) > now then
  return {'admitted', expiry}
end
local seq = redis.call('ZSCORE', KEYS[1], user)
if not seq then
  if ARGV[3] ~= 'join' then
    return {'absent'}
  end
  -- Room off: admit on join, no queue (the threshold still applies in the
  -- admitter; with the room off the operator has decided not to hold anyone).
  if redis.call('HGET', KEYS[5], 'active') == '0' then
    local ttl = tonumber(redis.call('HGET', KEYS[5], 'entryTokenTtlSeconds') or ARGV[4]) or tonumber(ARGV[4])
    local until_ms = now + ttl * 1000
    redis.call('ZADD', KEYS[3], until_ms, user)
    redis.call('INCR', KEYS[6])
    return {'admitted', tostring(until_ms)}
  end
  seq = redis.call('INCR', KEYS[4])
  redis.call('ZADD', KEYS[1], seq, user)
end
-- Any sign of life (join, poll, heartbeat) keeps the place.
redis.call('ZADD', KEYS[2], now, user)
return {'waiting', redis.call('ZRANK', KEYS[1], user), redis.call('ZCARD', KEYS[1])}
