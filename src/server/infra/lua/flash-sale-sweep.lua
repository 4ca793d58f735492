-- Returns the units of reservations that expired unconfirmed (their holder
-- died or gave up). KEYS: 1 stock, 2 reservations, 3 expiries. ARGV: 1 limit.
-- Returns how many units went back.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local n = 0
for _, buyer in ipairs(due) do
  redis.call('ZREM', KEYS[3], buyer)
  if redis.call('HDEL', KEYS[2], buyer) == 1 then
    redis.call('INCR', KEYS[1])
    n = n + 1
  end
end
return n
