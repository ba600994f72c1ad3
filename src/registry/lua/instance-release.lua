-- Gives a failed attempt's claim back (InstanceRegistry.release): the record is a reservation
-- again (same id, so nobody else can take it), counting the failure.
-- KEYS[1] the instance's record   KEYS[2] the node's instance set
-- ARGV[1] instance id   ARGV[2] node   ARGV[3] token   ARGV[4] next token
-- ARGV[5] last error   ARGV[6] retry by (ms)
-- ARGV[7] the node's incarnation that claimed it ("" from a reaper: any)
-- Returns the failures so far, or 0 when the node (incarnation) holds nothing under that token.
if redis.call('HGET', KEYS[1], 'node') ~= ARGV[2] then return 0 end
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[3] then return 0 end
if ARGV[7] ~= '' and (redis.call('HGET', KEYS[1], 'incarnation') or '') ~= ARGV[7] then return 0 end
redis.call('HSET', KEYS[1], 'node', '', 'incarnation', '', 'state', 'launching', 'pid', '0', 'readyAt', '0', 'token', ARGV[4],
  'lastError', ARGV[5], 'retryBy', ARGV[6])
redis.call('SREM', KEYS[2], ARGV[1])
return redis.call('HINCRBY', KEYS[1], 'tries', 1)
