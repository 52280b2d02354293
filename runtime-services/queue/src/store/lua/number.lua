-- Take a tier-1 number, counted against the per-address limit; one round trip, atomic.
-- KEYS: 1 number counter, 2 per-address rate-limit counter, 3 arrivals counter of this second
-- ARGV: 1 per-address limit (0 = none), 2 window seconds
-- Returns {"number", n} | {"limited", retry_after_seconds}
local limit = tonumber(ARGV[1])
if limit > 0 then
  local count = redis.call('INCR', KEYS[2])
  if count == 1 then
    redis.call('EXPIRE', KEYS[2], ARGV[2])
  end
  if count > limit then
    return {'limited', redis.call('TTL', KEYS[2])}
  end
end
redis.call('INCR', KEYS[3])
redis.call('EXPIRE', KEYS[3], 120)
return {'number', redis.call('INCR', KEYS[1])}
