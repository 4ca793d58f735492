-- The clock of the Redis server that holds KEYS[1]. On a Redis Cluster a bare
-- TIME goes to any node; the gate scripts judge a sale's window by the clock
-- of the node that holds the item, so that is the clock to compare with.
-- KEYS: 1 any key of the item. Returns TIME's {seconds, microseconds}.
return redis.call('TIME')
