-- Leave the queue, or give up an admitted slot so the next user gets it
-- (also how the admitter kicks a user).
-- KEYS: 1 queue, 2 heartbeats, 3 active, 4 the user's entry-token revocation,
--       5 random-order queue, 6 admitted-at hash
-- ARGV: 1 user, 2 now (ms)
-- Returns the number of structures the user was removed from.
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
redis.call('HDEL', KEYS[6], ARGV[1])
-- An admitted user holds an entry token until the slot's expiry: freeing the
-- slot without revoking it would let the next admitted user and this one buy
-- at once (past maxActiveUsers). The record lives until the last token of this
-- admission expires (its `exp` is the slot's expiry in whole seconds).
local expires_at = tonumber(redis.call('ZSCORE', KEYS[3], ARGV[1]))
if expires_at then
  local now = tonumber(ARGV[2])
  local ttl = math.max(expires_at - now, 0) + 1000
  redis.call('SET', KEYS[4], ARGV[2], 'PX', ttl)
end
return removed + redis.call('ZREM', KEYS[3], ARGV[1])
