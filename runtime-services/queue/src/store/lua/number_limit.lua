-- Count a tier-1 number against its address's limit (leased numbering:
-- the number itself comes from the replica's block, store/numbers.rs).
-- KEYS: 1 the address's counter for this window (its own hash slot)
-- ARGV: 1 limit (> 0), 2 window seconds
-- Returns {"ok", count} | {"limited", retry_after_seconds}
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
if count > tonumber(ARGV[1]) then
  return {'limited', redis.call('TTL', KEYS[1])}
end
return {'ok', count}
