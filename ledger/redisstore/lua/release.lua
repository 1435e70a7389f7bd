-- Release: drop reservation <id> from every counter that holds it.
--
-- KEYS  counter i: KEYS[2i-1] = K, KEYS[2i] = K:x
-- ARGV  id
-- Reply 1 if any counter held it, else 0 (so releasing twice is a no-op).

local n = #KEYS / 2
local id = ARGV[1]
local field = 'r:' .. id

-- Phase 1: read and validate.
local c = {}
for i = 1, n do
  local k = KEYS[2 * i - 1]
  local v = redis.call('HMGET', k, 'reserved', field)
  if v[2] then
    local held = int(v[2], k .. ' ' .. field)
    local final = sub(int(v[1] or '0', k .. ' reserved'), held)
    if not fits(final) then fail('reserved would overflow int64: ' .. k) end
    c[i] = final
  end
end

-- Phase 2: write.
local released = 0
for i = 1, n do
  local k, x = KEYS[2 * i - 1], KEYS[2 * i]
  if c[i] then
    redis.call('HSET', k, 'reserved', str(c[i]))
    redis.call('HDEL', k, field)
    released = 1
  end
  redis.call('ZREM', x, id)
end
return released
