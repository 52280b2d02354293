-- Apply the pre-queue shuffle computed by the lease holder: new scores for
-- the members present at open, below every later join sequence. Once only.
-- The members are kept (list, in drawn order) for the inclusion proofs of
-- the member commitment, whose Merkle root is recorded with the seed.
-- KEYS: 1 lease, 2 queue, 3 shuffle hash, 4 drawn members list
-- ARGV: 1 lease token, 2 now_ms, 3 seed hex, 4 members' Merkle root hex,
--       then pairs (score, member)
-- Returns the number of members reordered, or -1 when fenced out / done.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
if redis.call('HEXISTS', KEYS[3], 'shuffledAt') == 1 then
  return -1
end
local moved = 0
redis.call('DEL', KEYS[4])
local batch = {}
for i = 5, #ARGV, 2 do
  moved = moved + redis.call('ZADD', KEYS[2], 'XX', 'CH', ARGV[i], ARGV[i + 1])
  batch[#batch + 1] = ARGV[i + 1]
  if #batch == 500 then
    redis.call('RPUSH', KEYS[4], unpack(batch))
    batch = {}
  end
end
if #batch > 0 then
  redis.call('RPUSH', KEYS[4], unpack(batch))
end
redis.call('HSET', KEYS[3], 'seed', ARGV[3], 'shuffledAt', ARGV[2], 'participants', (#ARGV - 4) / 2,
  'membersRoot', ARGV[4])
return moved
