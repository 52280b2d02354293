-- Locks every seat of one hold, or none (all-or-nothing), and hands out the
-- next fencing token of the event.
-- KEYS[1]   the event's fencing counter
-- KEYS[2..] one lock key per seat
-- ARGV[1]   hold id
-- ARGV[2]   lock lifetime, ms (the hold timeout plus a margin)
-- Returns {1, token} on success, or {0, i, j, ...}: the 1-based positions of
-- the seats already locked or sold. Losers never reach PostgreSQL.
local taken = {0}
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    taken[#taken + 1] = i - 1
  end
end
if #taken > 1 then
  return taken
end
local token = redis.call('INCR', KEYS[1])
local value = ARGV[1] .. ':' .. token
for i = 2, #KEYS do
  redis.call('SET', KEYS[i], value, 'PX', ARGV[2])
end
return {1, token}
