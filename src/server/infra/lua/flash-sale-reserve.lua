-- Reserves one unit of a flash-sale item for a buyer, atomically.
-- KEYS: 1 meta (hash), 2 stock (string), 3 reservations (hash buyer → expiry ms),
--       4 expiries (zset buyer by expiry), 5 buyers (set) — one {hash tag}, one slot.
-- ARGV: 1 buyer, 2 reservation TTL ms.
-- Returns {code, n}: 1 reserved (n = units left), 0 sold out, -1 not warmed,
-- -2 paused, -3 not started (n = ms until start), -4 ended, -5 bought already,
-- -6 a reservation of this buyer is live (n = ms it has left).
local meta = redis.call('HMGET', KEYS[1], 'startsAt', 'endsAt', 'paused')
if not meta[1] then return {-1, 0} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if meta[3] == '1' then return {-2, 0} end
local starts, ends = tonumber(meta[1]), tonumber(meta[2])
if now < starts then return {-3, starts - now} end
if now >= ends then return {-4, 0} end
if redis.call('SISMEMBER', KEYS[5], ARGV[1]) == 1 then return {-5, 0} end
local held = redis.call('HGET', KEYS[3], ARGV[1])
if held then
  local left = tonumber(held) - now
  if left > 0 then return {-6, left} end
  -- Expired and not swept yet: its unit goes back first.
  redis.call('HDEL', KEYS[3], ARGV[1])
  redis.call('ZREM', KEYS[4], ARGV[1])
  redis.call('INCR', KEYS[2])
end
local stock = tonumber(redis.call('GET', KEYS[2]) or '0')
if stock <= 0 then return {0, 0} end
local expires = now + tonumber(ARGV[2])
redis.call('DECR', KEYS[2])
redis.call('HSET', KEYS[3], ARGV[1], expires)
redis.call('ZADD', KEYS[4], expires, ARGV[1])
return {1, stock - 1}
