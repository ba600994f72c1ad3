-- Removes a record only while the given node (and incarnation) holds it
-- (InstanceRegistry.removeIfNode); the node's own index is cleaned too, unless the record
-- belongs to another incarnation of the node (docs/architecture.md#fencing).
-- KEYS[1] the instance's record   KEYS[2] the set of instance ids
-- KEYS[3] the owning user's instance set   KEYS[4] the node's instance set   KEYS[5] the node's record
-- ARGV[1] instance id   ARGV[2] "1" when the instance has an owning user   ARGV[3] node
-- ARGV[4] the node's incarnation ("" from a reaper: any but the node's current one)
-- Returns 1 when removed, else 0.
local inc = redis.call('HGET', KEYS[1], 'incarnation') or ''
if redis.call('HGET', KEYS[1], 'node') == ARGV[3] then
  if ARGV[4] ~= '' then
    if inc ~= ARGV[4] then return 0 end
  elseif redis.call('HGET', KEYS[5], 'incarnation') == inc then
    return 0
  end
end
redis.call('SREM', KEYS[4], ARGV[1])
if redis.call('HGET', KEYS[1], 'node') ~= ARGV[3] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
if ARGV[2] == '1' then redis.call('SREM', KEYS[3], ARGV[1]) end
return 1
