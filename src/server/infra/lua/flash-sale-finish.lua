-- Ends a buyer's reservation: 'confirm' (the order is committed) or 'release'
-- (the purchase did not happen: the unit goes back to stock).
-- KEYS: 1 stock, 2 reservations, 3 expiries, 4 buyers. ARGV: 1 buyer, 2 mode.
-- Returns 1 if the reservation was still held, else 0.
local held = redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
if ARGV[2] == 'confirm' then
  redis.call('SADD', KEYS[4], ARGV[1])
  -- The buyers set may be new: it expires with the item's other keys.
  local at = redis.call('PEXPIRETIME', KEYS[1])
  if at > 0 then redis.call('PEXPIREAT', KEYS[4], at) end
  if held == 0 then
    -- The sweeper gave this unit back meanwhile (or Redis was re-warmed
    -- without the reservation): it is sold, so take it out again.
    local stock = tonumber(redis.call('GET', KEYS[1]) or '0')
    if stock > 0 then redis.call('DECR', KEYS[1]) end
  end
  return held
end
if held == 1 then redis.call('INCR', KEYS[1]) end
return held
