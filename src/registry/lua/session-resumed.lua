-- The resume by this gateway is over: others may take the session (SessionStore.resumed).
-- KEYS[1] the session's record
-- ARGV[1] gateway
-- Returns 1 when the "resuming" mark was cleared, 0 when there was none or another gateway
-- holds the session.
if redis.call('HGET', KEYS[1], 'gw') ~= ARGV[1] then return 0 end
return redis.call('HDEL', KEYS[1], 'resuming')
