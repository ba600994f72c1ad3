-- Takes a resumable session for a gateway (SessionStore.claim).
-- KEYS[1] the session's record   KEYS[2] the detached-sessions sorted set
-- KEYS[3] the new gateway's session set
-- KEYS[4] the holding gateway's session set (any key when the session is detached)
-- ARGV[1] session id   ARGV[2] resume token digest   ARGV[3] new gateway
-- ARGV[4] user ("" for none)   ARGV[5] a holder known dead ("" for none: only that one's
-- session is taken from it)   ARGV[6] expected holder ("" for detached)
-- ARGV[7] how long the resume may take (ms)
-- Returns {'claimed', flat record}, {'gone'}, {'refused'}, {'moved', holder},
-- {'busy', holder} or {'resuming', holder}.
-- A claimed session is marked "resuming" (until a deadline) until its gateway says the resume is
-- done: meanwhile another claim is refused rather than taking the session mid-replay.
local gw = redis.call('HGET', KEYS[1], 'gw')
if not gw then return {'gone'} end
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[2] or (redis.call('HGET', KEYS[1], 'user') or '') ~= ARGV[4] then return {'refused'} end
if gw ~= ARGV[6] then return {'moved', gw} end
-- Redis's own clock (ms), so that gateways whose clocks differ agree on a resume's deadline.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if gw ~= '' and gw ~= ARGV[5] and tonumber(redis.call('HGET', KEYS[1], 'resuming') or '0') > now then return {'resuming', gw} end
if gw == '' then
  if redis.call('ZREM', KEYS[2], ARGV[1]) == 0 then return {'gone'} end
elseif gw ~= ARGV[5] then
  return {'busy', gw}
else
  redis.call('SREM', KEYS[4], ARGV[1])
end
redis.call('HSET', KEYS[1], 'gw', ARGV[3], 'resuming', tostring(now + tonumber(ARGV[7])))
redis.call('SADD', KEYS[3], ARGV[1])
local all = redis.call('HGETALL', KEYS[1])
redis.call('HDEL', KEYS[1], 'tail')
return {'claimed', all}
