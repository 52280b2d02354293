-- Takes `quantity` places of a standing section from its remaining counter,
-- and hands out the next fencing token.
-- KEYS[1] the event's fencing counter
-- KEYS[2] the section's remaining-places counter
-- ARGV[1] quantity
-- Returns {1, token}, {0, remaining} when too few are left, or {-1} when the
-- counter is missing (not yet loaded from PostgreSQL).
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
return {1, redis.call('INCR', KEYS[1])}
