-- Seed: create a missing counter from the ledger's sum, first writer wins.
--
-- KEYS  K, K:x, K:m
-- ARGV  spent (decimal int64), snapshot ("xmin:xmax:xip,..."), expire_at_ms
-- Reply 1 created, 0 already present (nothing written), -1 expire_at_ms is
--       not in the future (nothing written: the window is over, and a key
--       created already expired would vanish at once and be reseeded forever).

int(ARGV[1], 'spent')
if not string.find(ARGV[2], '^%d+:%d+:[%d,]*$') then fail('bad seed snapshot: ' .. ARGV[2]) end
local exp = tonumber(ARGV[3])
if not exp or exp <= now_ms() then return -1 end
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end

-- Reservations live in K; with K gone, any K:x entries are stale. Markers
-- (K:m) are kept: each names an event committed before it was applied, so
-- before this seed's snapshot was taken; it is in the sum and skipped anyway.
-- Both companions get their sentinel (common.lua) and K's expiry, here and
-- nowhere else.
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], 'spent', ARGV[1], 'reserved', '0', 'seed', ARGV[2])
redis.call('ZADD', KEYS[2], '-inf', SENTINEL)
redis.call('ZADD', KEYS[3], '-inf', SENTINEL)
for i = 1, 3 do redis.call('PEXPIREAT', KEYS[i], ARGV[3]) end
return 1
