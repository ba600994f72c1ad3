-- Takes a detached session whose resume window passed, for exactly one caller
-- (SessionStore.takeExpired).
-- KEYS[1] the session's record   KEYS[2] the detached-sessions sorted set
-- ARGV[1] session id
-- Returns the flat record (now deleted), or nil when another caller took it or a gateway holds it.
if redis.call('ZREM', KEYS[2], ARGV[1]) == 0 then return false end
if redis.call('HGET', KEYS[1], 'gw') ~= '' then return false end
local all = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
return all
