-- Writes the record of an instance a node runs, unless one exists (InstanceRegistry.restore,
-- after Redis lost its data).
-- KEYS[1] the instance's record   KEYS[2] the set of instance ids
-- KEYS[3] the owning user's instance set   KEYS[4] the node's instance set
-- ARGV[1] instance id   ARGV[2] "1" when the instance has an owning user
-- ARGV[3..] the record's field/value pairs
-- Returns 1 when written, 0 when a record exists.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('SADD', KEYS[2], ARGV[1])
if ARGV[2] == '1' then redis.call('SADD', KEYS[3], ARGV[1]) end
redis.call('SADD', KEYS[4], ARGV[1])
return 1
