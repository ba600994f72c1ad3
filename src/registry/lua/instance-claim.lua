-- Claims a launch for a node (InstanceRegistry.claim).
-- KEYS[1] the instance's record   KEYS[2] the set of instance ids
-- KEYS[3] the owning user's instance set   KEYS[4] the node's instance set   KEYS[5] the node's record
-- ARGV[1] instance id   ARGV[2] "1" when the instance has an owning user   ARGV[3] node
-- ARGV[4] the job's token ("" for a job enqueued straight into BullMQ)   ARGV[5] created (ms)
-- ARGV[6] task   ARGV[7] owner   ARGV[8] ownerUser   ARGV[9] options (JSON)   ARGV[10] args (JSON)
-- ARGV[11] the node's incarnation (its registration, docs/architecture.md#fencing)
-- Returns 1 when this node now owns the launch, 0 when it does not, -2 when the node's record
-- does not name this incarnation (the node was declared dead: fencing).
-- A job with a token must find its reservation unclaimed; a job without one (enqueued straight
-- into BullMQ by another backend) creates the record.
if redis.call('HGET', KEYS[5], 'incarnation') ~= ARGV[11] then return -2 end
if ARGV[4] ~= '' then
  if redis.call('HGET', KEYS[1], 'token') ~= ARGV[4] then return 0 end
  if redis.call('HGET', KEYS[1], 'node') ~= '' then return 0 end
  redis.call('HSET', KEYS[1], 'node', ARGV[3], 'incarnation', ARGV[11])
  redis.call('SADD', KEYS[4], ARGV[1])
  return 1
end
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'instance', ARGV[1], 'node', ARGV[3], 'token', '', 'created', ARGV[5],
  'task', ARGV[6], 'owner', ARGV[7], 'ownerUser', ARGV[8], 'options', ARGV[9], 'state', 'launching',
  'readyAt', '0', 'pid', '0', 'args', ARGV[10], 'incarnation', ARGV[11])
redis.call('SADD', KEYS[2], ARGV[1])
if ARGV[2] == '1' then redis.call('SADD', KEYS[3], ARGV[1]) end
redis.call('SADD', KEYS[4], ARGV[1])
return 1
