-- Takes `quantity` places of a standing section from its remaining counter,
-- and hands out the next fencing token.
-- KEYS[1] the event's fencing counter
-- KEYS[2] the section's remaining-places counter
-- KEYS[3] the request's idempotency key, or the fencing counter again when
--         the request has none (ARGV[3] empty)
-- ARGV[1] quantity
-- ARGV[2] hold id
-- ARGV[3] request fingerprint for the idempotency key ('' = no key)
-- ARGV[4] idempotency key lifetime, ms
-- Returns {1, token}, {0, remaining} when too few are left, {-1} when the
-- counter is missing (not yet loaded from PostgreSQL), or
-- {2, '<fingerprint>|<hold id>'} when the idempotency key already won a hold.
if ARGV[3] ~= '' then
  local seen = redis.call('GET', KEYS[3])
  if seen then
    return {2, seen}
  end
end
local remaining = redis.call('GET', KEYS[2])
if not remaining then
  return {-1}
end
remaining = tonumber(remaining)
local quantity = tonumber(ARGV[1])
if remaining < quantity then
  return {0, remaining}
end
redis.call('DECRBY', KEYS[2], quantity)
if ARGV[3] ~= '' then
  redis.call('SET', KEYS[3], ARGV[3] .. '|' .. ARGV[2], 'PX', ARGV[4])
end
return {1, redis.call('INCR', KEYS[1])}
