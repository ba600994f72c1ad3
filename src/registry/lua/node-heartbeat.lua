-- Writes a node's record under its registration (NodeRegistry.heartbeat, docs/architecture.md#fencing).
-- KEYS[1] the node's record   KEYS[2] the set of nodes
-- ARGV[1] node id   ARGV[2] incarnation   ARGV[3] ttl (ms)
-- ARGV[4] mode: "refresh" (the usual heartbeat), "register" (written whatever is there),
--   "rejoin" (a new registration after fencing)
-- ARGV[5..] the record's field/value pairs
-- Returns 1 when written, 0 when the node was declared dead (refresh: its id left the set, or
-- the record names another incarnation), -1 when another registration holds the id (rejoin).
local current = redis.call('HGET', KEYS[1], 'incarnation')
if ARGV[4] == 'refresh' then
  if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 0 then return 0 end
  if current and current ~= ARGV[2] then return 0 end
elseif ARGV[4] == 'rejoin' then
  if current and current ~= ARGV[2] then return -1 end
end
redis.call('HSET', KEYS[1], 'incarnation', ARGV[2], unpack(ARGV, 5))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('SADD', KEYS[2], ARGV[1])
return 1
