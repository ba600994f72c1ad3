-- Reserves an instance id for a launch (InstanceRegistry.reserve).
-- KEYS[1] the instance's record   KEYS[2] the set of instance ids
-- KEYS[3] the owning user's instance set (launch quotas)
-- ARGV[1] instance id   ARGV[2] "1" when the instance has an owning user, else "0"
-- ARGV[3] the user's quota (0: none)   ARGV[4..] the record's field/value pairs
-- Returns 1 when reserved, 0 when the id is taken, -1 when the user's quota is reached.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local quota = tonumber(ARGV[3])
if ARGV[2] == '1' and quota > 0 and redis.call('SCARD', KEYS[3]) >= quota then return -1 end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('SADD', KEYS[2], ARGV[1])
if ARGV[2] == '1' then redis.call('SADD', KEYS[3], ARGV[1]) end
return 1
