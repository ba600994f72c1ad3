-- Updates a record that still exists, never recreating one (InstanceRegistry.update).
-- KEYS[1] the instance's record
-- ARGV field/value pairs
-- Returns 1 when updated, 0 when there is no record.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
