-- Deletes a reservation no node has claimed (InstanceRegistry.cancelUnclaimed), unless a failed
-- attempt gave the next one until retryBy.
-- KEYS[1] the instance's record   KEYS[2] the set of instance ids
-- KEYS[3] the owning user's instance set
-- ARGV[1] instance id   ARGV[2] "1" when the instance has an owning user   ARGV[3] token
-- ARGV[4] now (ms)
-- Returns 0 when nothing was deleted, else {tries, lastError} of the deleted reservation.
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[3] then return 0 end
if redis.call('HGET', KEYS[1], 'node') ~= '' then return 0 end
if tonumber(redis.call('HGET', KEYS[1], 'retryBy') or '0') > tonumber(ARGV[4]) then return 0 end
local tries = redis.call('HGET', KEYS[1], 'tries') or '0'
local lastError = redis.call('HGET', KEYS[1], 'lastError') or ''
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
if ARGV[2] == '1' then redis.call('SREM', KEYS[3], ARGV[1]) end
return {tries, lastError}
