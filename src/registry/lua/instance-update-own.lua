-- Updates a record that still exists and still names this node and incarnation
-- (InstanceRegistry.update): never recreates one, never writes over a relaunch's record.
-- KEYS[1] the instance's record
-- ARGV[1] node   ARGV[2] the node's incarnation   ARGV[3..] field/value pairs
-- Returns 1 when updated, 0 when there is no record, -1 when another node or incarnation holds it.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[1], 'node') ~= ARGV[1] then return -1 end
if (redis.call('HGET', KEYS[1], 'incarnation') or '') ~= ARGV[2] then return -1 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
return 1
