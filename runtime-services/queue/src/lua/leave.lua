-- Leave the queue, or give up an admitted slot so the next user gets it.
-- KEYS: 1 queue, 2 heartbeats, 3 active
-- ARGV: 1 user
-- Returns the number of structures the user was removed from.
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return removed + redis.call('ZREM', KEYS[3], ARGV[1])
