-- Forgets a session its client closed (SessionStore.end).
-- KEYS[1] the session's record   KEYS[2] the gateway's session set
-- ARGV[1] session id   ARGV[2] gateway
-- Returns 1 when deleted, 0 when another gateway holds the session.
if redis.call('HGET', KEYS[1], 'gw') ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return 1
