-- Compares an item's Redis stock with what Postgres says is left, less the
-- live reservations, and (mode 'repair') sets it right.
-- KEYS: 1 stock, 2 reservations. ARGV: 1 units left in Postgres (stock − sold), 2 mode ('check' | 'repair').
-- Returns {redis stock (-1 when missing), expected, live reservations}.
local live = redis.call('HLEN', KEYS[2])
local expected = tonumber(ARGV[1]) - live
if expected < 0 then expected = 0 end
local current = tonumber(redis.call('GET', KEYS[1]) or '-1')
if ARGV[2] == 'repair' and current ~= expected and current >= 0 then
  redis.call('SET', KEYS[1], expected, 'KEEPTTL')
end
return {current, expected, live}
