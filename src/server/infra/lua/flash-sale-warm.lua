-- Loads an item into Redis (or refreshes its window and pause flag). The stock
-- counter is written only if it is missing (first warm-up, or Redis restarted
-- empty): a warm item keeps its live count. The caller loads the buyers when
-- the counter was (re)created.
-- KEYS: 1 meta, 2 stock, 3 buyers, 4 reservations, 5 expiries.
-- ARGV: 1 activityId, 2 startsAt ms, 3 endsAt ms, 4 paused (0/1), 5 price,
--       6 creditTypeId, 7 units left (stock − sold), 8 expire-at ms.
-- Returns 1 if the counter was (re)created, else 0.
redis.call('HSET', KEYS[1], 'activityId', ARGV[1], 'startsAt', ARGV[2], 'endsAt', ARGV[3],
  'paused', ARGV[4], 'price', ARGV[5], 'creditTypeId', ARGV[6])
local fresh = redis.call('SET', KEYS[2], ARGV[7], 'NX')
for i = 1, 5 do redis.call('PEXPIREAT', KEYS[i], ARGV[8]) end
if fresh then return 1 end
return 0
