-- Confirm-time fencing check: every seat lock must still carry this hold's
-- value (`<hold>:<token>`). On success the locks lose their expiry, so they
-- cannot lapse between this check and the database commit.
-- KEYS   one lock key per seat
-- ARGV[1] the expected value
-- Returns 1, or 0 when any lock lapsed or belongs to someone else.
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) ~= ARGV[1] then
    return 0
  end
end
for i = 1, #KEYS do
  redis.call('PERSIST', KEYS[i])
end
return 1
