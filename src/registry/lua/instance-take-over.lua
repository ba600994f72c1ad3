-- Moves a launch whose node died mid-launch to a new node (InstanceRegistry.takeOver): its
-- BullMQ lock ran out, so the job runs again elsewhere; only while the old node is gone.
-- KEYS[1] the instance's record   KEYS[2] the dead node's record
-- KEYS[3] the dead node's instance set   KEYS[4] the new node's instance set
-- ARGV[1] instance id   ARGV[2] token   ARGV[3] dead node   ARGV[4] new node
-- ARGV[5] the new node's incarnation
-- Returns 1 when moved, else 0.
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[2] then return 0 end
if redis.call('HGET', KEYS[1], 'node') ~= ARGV[3] then return 0 end
if redis.call('HGET', KEYS[1], 'state') ~= 'launching' then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'node', ARGV[4], 'incarnation', ARGV[5])
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('SADD', KEYS[4], ARGV[1])
return 1
