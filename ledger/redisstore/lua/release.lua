-- Release: drop reservation <id> from every counter that holds it; for a
-- lease part (lease.lua), take the part's amount off its lease once.
--
-- KEYS  counter i: KEYS[2i-1] = K, KEYS[2i] = K:x
-- ARGV  id
-- Reply 1 if any counter gave something back, else 0 (so releasing twice is
--       a no-op).
--
-- A released part leaves the marker u:<part id> in K:x, scored with its
-- lease's expiry, so that releasing it again takes nothing: Reserve evicts
-- the marker with the lease. (Settling a part needs no marker: the event's
-- own marker makes that once, and the gateway settles or releases a
-- request's reservation, never both.)

local n = #KEYS / 2
local id = ARGV[1]
local lease, part = lease_part(id)
local hid = lease or id
local field = 'r:' .. hid
local mark = 'u:' .. id

-- Phase 1: read and validate.
local c = {}
for i = 1, n do
  local k, x = KEYS[2 * i - 1], KEYS[2 * i]
  local v = redis.call('HMGET', k, 'reserved', field)
  if v[2] and not (part and redis.call('ZSCORE', x, mark)) then
    local held = int(v[2], k .. ' ' .. field)
    local e = {taken = held}
    if part then
      e.taken, e.left = take_part(held, part)
      e.exp = redis.call('ZSCORE', x, hid) or '0'
    end
    e.reserved = sub(int(v[1] or '0', k .. ' reserved'), e.taken)
    if not fits(e.reserved) then fail('reserved would overflow int64: ' .. k) end
    c[i] = e
  end
end

-- Phase 2: write.
local released = 0
for i = 1, n do
  local k, x = KEYS[2 * i - 1], KEYS[2 * i]
  local e = c[i]
  if e then
    if e.left and cmp(e.left, ZERO) > 0 then
      redis.call('HSET', k, 'reserved', str(e.reserved), field, str(e.left))
      redis.call('ZADD', x, e.exp, mark)
    else
      redis.call('HSET', k, 'reserved', str(e.reserved))
      redis.call('HDEL', k, field)
      redis.call('ZREM', x, hid)
    end
    released = 1
  elseif not part then
    redis.call('ZREM', x, id)
  end
end
return released
