-- The reaper's decision that a node is dead (NodeRegistry.claimReap): only while its record is
-- missing, so a node whose heartbeat landed meanwhile is not declared dead.
-- KEYS[1] the node's record   KEYS[2] the set of nodes
-- ARGV[1] node id
-- Returns 1 for exactly one caller, which then reaps the node; else 0.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
return redis.call('SREM', KEYS[2], ARGV[1])
