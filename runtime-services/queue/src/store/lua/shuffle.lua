-- Apply the pre-queue shuffle computed by the lease holder: new scores for
-- the members present at open, below every later join sequence. Once only.
-- KEYS: 1 lease, 2 queue, 3 shuffle hash
-- ARGV: 1 lease token, 2 now_ms, 3 seed hex, then pairs (score, member)
-- Returns the number of members reordered, or -1 when fenced out / done.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
if redis.call('HEXISTS', KEYS[3], 'shuffledAt') == 1 then
  return -1
end
local moved = 0
for i = 4, #ARGV, 2 do
  moved = moved + redis.call('ZADD', KEYS[2], 'XX', 'CH', ARGV[i], ARGV[i + 1])
end
redis.call('HSET', KEYS[3], 'seed', ARGV[3], 'shuffledAt', ARGV[2], 'participants', (#ARGV - 3) / 2)
return moved
