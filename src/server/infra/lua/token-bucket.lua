-- Token bucket on the Redis server's clock, so every app instance (whatever its
-- own clock says) refills the same bucket at the same rate.
--
-- KEYS[1]  bucket hash {tokens, ts}; ts in ms from TIME
-- ARGV[1]  refill rate, tokens per second (may be fractional)
-- ARGV[2]  burst: the bucket's capacity
-- ARGV[3]  n: tokens to take; 0 = peek (allowed when at least one token is
--          left, nothing taken, nothing written); negative = give tokens back
--          (never refused, never above the burst)
-- returns  {allowed 0|1, whole tokens remaining, ms until the next token}
--          refused: the ms until enough tokens for this request
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local n = tonumber(ARGV[3])

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000

local stored = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(stored[1])
local ts = tonumber(stored[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
if now > ts then
  tokens = tokens + (now - ts) * rate / 1000
end
-- Also caps a bucket filled under a larger burst that an admin has since lowered.
if tokens > burst then tokens = burst end

local need = n
if n == 0 then need = 1 end

if tokens < need then
  return {0, math.floor(tokens), math.ceil((need - tokens) * 1000 / rate)}
end

tokens = tokens - n
if tokens > burst then tokens = burst end
if n ~= 0 then
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
  -- Once full again the bucket is the same as no bucket: let the key go then.
  redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
end

local wait = 0
if tokens < burst then
  wait = math.ceil((math.floor(tokens) + 1 - tokens) * 1000 / rate)
end
return {1, math.floor(tokens), wait}
