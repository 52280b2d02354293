-- Rewrites or removes seat locks that still carry a given value.
-- KEYS    one lock key per seat
-- ARGV[1] the expected value (`<hold>:<token>`)
-- ARGV[2] 'sold' to mark the seats sold for good, or '' to delete the locks
-- Returns how many keys were changed. Keys owned by someone else are left alone.
local changed = 0
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    if ARGV[2] == '' then
      redis.call('DEL', KEYS[i])
    else
      redis.call('SET', KEYS[i], ARGV[2])
    end
    changed = changed + 1
  end
end
return changed
