-- Detaches one session a dead gateway held (SessionStore.orphan).
-- KEYS[1] the session's record   KEYS[2] the detached-sessions sorted set
-- ARGV[1] session id   ARGV[2] dead gateway   ARGV[3] resume window end (ms)
-- Returns 1 when detached, 0 when the dead gateway no longer held it.
if redis.call('HGET', KEYS[1], 'gw') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'gw', '')
redis.call('HDEL', KEYS[1], 'resuming')
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 1
