-- One circuit breaker, shared by every app instance. All transitions happen
-- here, atomically, and are derived from stored timestamps on the next call:
-- no timer process moves a breaker from OPEN to HALF_OPEN.
--
-- KEYS[1]  state hash {state, openedAt, halfOpenAt, probeSeq, errSeq,
--          forced, forcedBy, forcedReason, forceVersion}
-- KEYS[2]  sorted set of infrastructure failures (score = ms), the sliding window
-- ARGV     1 op: admit | record | peek | reset
--          2 now (ms): '' = the Redis server's clock (production: every instance
--            reads the same clock, so instances whose clocks disagree still agree
--            on when a breaker opened and when it may half-open); a number = the
--            caller's injected clock (tests drive time with it)
--          3 errorThreshold  4 windowMs  5 openMs  6 halfOpenMs  7 probeRatio
--          8 forcedVersion: version of the forced-state record (Postgres) the
--            caller knows; 9 forcedState ('' = automatic); 10 forcedBy; 11 forcedReason
--          12 outcome (record): failure | success   13 probe (record): 1 | 0
-- returns  {decision 0 refuse | 1 allow | 2 allow as probe, state, retryAfterMs,
--           errorCount (-1 unless peek/reset), openedAt (-1), halfOpenAt (-1),
--           forced 0|1, forcedBy, forcedReason, transitions "FROM>TO,…"}
local op = ARGV[1]
local now = tonumber(ARGV[2])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local threshold = tonumber(ARGV[3])
local windowMs = tonumber(ARGV[4])
local openMs = tonumber(ARGV[5])
local halfOpenMs = tonumber(ARGV[6])
local ratio = tonumber(ARGV[7])
local forcedVersion = tonumber(ARGV[8])
local forcedState = ARGV[9]

local h, z = KEYS[1], KEYS[2]
local f = redis.call('HMGET', h, 'state', 'openedAt', 'halfOpenAt', 'forced', 'forceVersion')
local state = f[1] or 'CLOSED'
local openedAt = tonumber(f[2])
local halfOpenAt = tonumber(f[3])
local forced = f[4] == '1'
local knownVersion = tonumber(f[5]) or 0
local transitions = {}

local function move(to)
  if to ~= state then
    transitions[#transitions + 1] = state .. '>' .. to
    state = to
  end
  redis.call('HSET', h, 'state', to)
end

local function open()
  move('OPEN')
  openedAt = now
  halfOpenAt = nil
  redis.call('HSET', h, 'openedAt', now)
  redis.call('HDEL', h, 'halfOpenAt')
  redis.call('DEL', z)
end

local function halfOpen(at)
  move('HALF_OPEN')
  halfOpenAt = at
  redis.call('HSET', h, 'halfOpenAt', at, 'probeSeq', 0)
end

-- Closed again: automatic, counts cleared.
local function close()
  move('CLOSED')
  openedAt = nil
  halfOpenAt = nil
  redis.call('DEL', z)
  redis.call('HDEL', h, 'openedAt', 'halfOpenAt')
  redis.call('HSET', h, 'probeSeq', 0)
end

local function unforce()
  forced = false
  redis.call('HDEL', h, 'forced', 'forcedBy', 'forcedReason')
  close()
end

-- A forced state is recorded in Postgres and versioned; the newest version any
-- caller knows wins. So a force or reset whose Redis step failed, or a Redis
-- that restarted empty, is repaired by the next call of any instance.
if op == 'reset' then
  unforce()
  redis.call('HSET', h, 'forceVersion', forcedVersion)
elseif forcedVersion > knownVersion then
  redis.call('HSET', h, 'forceVersion', forcedVersion)
  if forcedState ~= '' then
    -- The version is shared by every breaker's forced state: a newer one may
    -- be about another breaker, and re-applying this one's unchanged state
    -- must keep its timestamps and probe count.
    local unchanged = forced and state == forcedState
    forced = true
    redis.call('HSET', h, 'forced', '1', 'forcedBy', ARGV[10], 'forcedReason', ARGV[11])
    if unchanged then
      -- nothing moves
    elseif forcedState == 'OPEN' then
      open()
    elseif forcedState == 'HALF_OPEN' then
      halfOpen(now)
    else
      close()
    end
  elseif forced then
    unforce()
  end
end

if not forced then
  if state == 'OPEN' then
    if openedAt == nil then
      openedAt = now
      redis.call('HSET', h, 'openedAt', now)
    end
    if now >= openedAt + openMs then halfOpen(openedAt + openMs) end
  end
  if state == 'HALF_OPEN' then
    if halfOpenAt == nil then
      halfOpenAt = now
      redis.call('HSET', h, 'halfOpenAt', now)
    end
    -- No verdict within halfOpenMs: no probe failed (none ran, or none
    -- reported), so close; the error window re-opens it within a few calls if
    -- the dependency is still broken, whereas re-opening would keep an idle
    -- breaker cycling OPEN/HALF_OPEN for ever.
    if now >= halfOpenAt + halfOpenMs then close() end
  end
end

local decision, retry = 1, 0
if op == 'admit' then
  if state == 'OPEN' then
    decision = 0
    if forced then retry = openMs else retry = openedAt + openMs - now end
  elseif state == 'HALF_OPEN' then
    -- Every 1/ratio-th call (the first one included) is a probe: exact shares,
    -- no randomness for tests to fight.
    local seq = redis.call('HINCRBY', h, 'probeSeq', 1)
    if seq == 1 or math.floor(seq * ratio) > math.floor((seq - 1) * ratio) then
      decision = 2
    else
      decision = 0
      retry = math.min(1000, math.ceil(1 / ratio) * 100)
    end
  end
elseif op == 'record' and not forced then
  local failure = ARGV[12] == 'failure'
  local probe = ARGV[13] == '1'
  if state == 'CLOSED' and failure then
    local seq = redis.call('HINCRBY', h, 'errSeq', 1)
    redis.call('ZADD', z, now, now .. ':' .. seq)
    redis.call('ZREMRANGEBYSCORE', z, '-inf', '(' .. (now - windowMs))
    redis.call('PEXPIRE', z, windowMs + 1000)
    if redis.call('ZCARD', z) >= threshold then open() end
  elseif state == 'HALF_OPEN' and probe then
    if failure then open() else close() end
  end
  -- Anything else is a late answer of a call admitted under an older state.
end

local errorCount, forcedBy, forcedReason = -1, '', ''
if op == 'peek' or op == 'reset' then
  errorCount = redis.call('ZCOUNT', z, now - windowMs, '+inf')
  local who = redis.call('HMGET', h, 'forcedBy', 'forcedReason')
  forcedBy = who[1] or ''
  forcedReason = who[2] or ''
end
local forcedFlag = 0
if forced then forcedFlag = 1 end
return {decision, state, math.max(0, math.ceil(retry)), errorCount, openedAt or -1, halfOpenAt or -1,
  forcedFlag, forcedBy, forcedReason, table.concat(transitions, ',')}
