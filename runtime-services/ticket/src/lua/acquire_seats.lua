-- Locks every seat of one hold, or none (all-or-nothing), and hands out the
-- next fencing token of the event.
-- KEYS[1]   the event's fencing counter
-- KEYS[2]   the request's idempotency key, or the fencing counter again
--           when the request has none (ARGV[3] empty)
-- KEYS[3..] one lock key per seat
-- ARGV[1]   hold id
-- ARGV[2]   lock lifetime, ms (the hold timeout plus a margin)
-- ARGV[3]   request fingerprint for the idempotency key ('' = no key)
-- ARGV[4]   idempotency key lifetime, ms
-- Returns {1, token} on success; {0, i, j, ...}, the 1-based positions of
-- the seats already locked or sold; or {2, '<fingerprint>|<hold id>'} when
-- the idempotency key already won a hold (a retry). Losers never reach
-- PostgreSQL, and a refusal leaves nothing behind (it changed nothing, so a
-- retry simply tries again).
if ARGV[3] ~= '' then
  local seen = redis.call('GET', KEYS[2])
  if seen then
    return {2, seen}
  end
end
local taken = {0}
for i = 3, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    taken[#taken + 1] = i - 2
  end
end
if #taken > 1 then
  return taken
end
local token = redis.call('INCR', KEYS[1])
local value = ARGV[1] .. ':' .. token
for i = 3, #KEYS do
  redis.call('SET', KEYS[i], value, 'PX', ARGV[2])
end
if ARGV[3] ~= '' then
  redis.call('SET', KEYS[2], ARGV[3] .. '|' .. ARGV[1], 'PX', ARGV[4])
end
return {1, token}
