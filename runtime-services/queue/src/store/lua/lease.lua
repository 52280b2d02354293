-- Acquire or renew the admitter lease. The value carries a fencing number
-- that grows on every new acquisition, so a replica that stalled past its
-- lease cannot act with an old token: the tick script checks the exact value.
-- KEYS: 1 lease, 2 fence counter
-- ARGV: 1 instance id, 2 lease ms, 3 current token held by this instance ("" if none)
-- Returns the token held after the call, or false.
local current = redis.call('GET', KEYS[1])
if current and current == ARGV[3] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return current
end
if current then
  return false
end
local token = ARGV[1] .. ':' .. redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], token, 'PX', ARGV[2])
return token
