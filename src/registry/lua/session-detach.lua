-- Detaches a session whose client went away (SessionStore.detach).
-- KEYS[1] the session's record   KEYS[2] the detached-sessions sorted set
-- KEYS[3] the gateway's session set
-- ARGV[1] session id   ARGV[2] gateway   ARGV[3] resume window end (ms)
-- ARGV[4] the kept events' tail, a JSON array
-- Returns 1 when detached, 0 when this gateway no longer holds the session (it lost it to a
-- takeover: then it does nothing).
if redis.call('HGET', KEYS[1], 'gw') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'gw', '')
redis.call('HDEL', KEYS[1], 'resuming')
if ARGV[4] ~= '[]' then redis.call('HSET', KEYS[1], 'tail', ARGV[4]) end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[1])
return 1
