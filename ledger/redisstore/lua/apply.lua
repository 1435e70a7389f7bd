-- Apply: project one committed ledger entry onto its counters, exactly once.
--
-- KEYS  counter i: KEYS[3i-2] = K, KEYS[3i-1] = K:x, KEYS[3i] = K:m
-- ARGV  event_id, stream_seq, tx_id (decimal xid8), cost (decimal int64),
--       reservation_id ('' for none), prune_floor
-- Reply one status per counter: 1 settled, 2 direct, 3 duplicate, 4 in seed,
--       5 missing, 6 skipped (present, but another counter is missing, and a
--       call writes all of its counters or none).
--
-- Per counter: missing -> report; marker present -> duplicate; tx visible in
-- the seed snapshot -> in seed; else spent += cost and the marker is written
-- in this same script (settling r:<reservation> if present). A leftover
-- r:<reservation> is released in every case: its request is over. A lease
-- part (lease.lua) is different: it takes its amount off r:<lease> only when
-- the event is applied now, since the lease's other parts are still live.

local n = #KEYS / 3
local eid, seq, tx = ARGV[1], ARGV[2], ARGV[3]
local cost = int(ARGV[4], 'cost')
local rid = ARGV[5]
local lease, part
if rid ~= '' then lease, part = lease_part(rid) end
local hid = lease or rid -- the reservation a counter holds
local rfield = rid ~= '' and ('r:' .. hid) or 'spent'
local floor = tonumber(ARGV[6])
-- Markers are pruned when the floor has moved PRUNE_STEP sequences past
-- the last prune of this counter (K's pruned field): the deletion costs a
-- call, and markers a little past the floor are merely kept longer.
local PRUNE_STEP = 1000

-- Phase 1: read, validate, decide.
local c, status, any_missing = {}, {}, false
for i = 1, n do
  local k, m = KEYS[3 * i - 2], KEYS[3 * i]
  local v = redis.call('HMGET', k, 'spent', 'reserved', 'seed', 'pruned', rfield)
  if not v[1] then
    absent(k)
    status[i] = 5
    any_missing = true
  else
    local e = {spent = int(v[1], k .. ' spent'), reserved = int(v[2] or '0', k .. ' reserved')}
    e.prune = floor > 0 and floor - (tonumber(v[4] or '0') or 0) >= PRUNE_STEP
    local held = rid ~= '' and v[5] and int(v[5], k .. ' ' .. rfield)
    local sc = redis.call('ZMSCORE', m, eid, SENTINEL)
    e.sentinel = sc[2] ~= false
    if sc[1] then
      status[i] = 3
    elseif seen(tx, v[3]) then
      status[i] = 4
    else
      e.spent = add(e.spent, cost)
      if not fits(e.spent) then fail('spent would overflow int64: ' .. k) end
    end
    if held and (not part or not status[i]) then
      local taken = held
      if part then taken, e.left = take_part(held, part) end
      e.held = taken
      e.reserved = sub(e.reserved, taken)
      if not fits(e.reserved) then fail('reserved would overflow int64: ' .. k) end
    end
    status[i] = status[i] or (e.held and 1 or 2)
    c[i] = e
  end
end
if any_missing then
  for i = 1, n do if status[i] ~= 5 then status[i] = 6 end end
  return status
end

-- Phase 2: write. Effect and marker together, or (on a crash) neither.
-- spent and reserved are written as the exact values computed above.
for i = 1, n do
  local k, x, m = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  local e = c[i]
  local apply = status[i] <= 2
  local hset = {}
  if apply then hset[#hset + 1] = 'spent'; hset[#hset + 1] = str(e.spent) end
  if e.held then hset[#hset + 1] = 'reserved'; hset[#hset + 1] = str(e.reserved) end
  if e.prune then hset[#hset + 1] = 'pruned'; hset[#hset + 1] = ARGV[6] end
  if #hset > 0 then redis.call('HSET', k, unpack(hset)) end
  if e.left and cmp(e.left, ZERO) > 0 then
    redis.call('HSET', k, rfield, str(e.left))
  elseif e.held then
    redis.call('HDEL', k, rfield)
    redis.call('ZREM', x, hid)
  end
  if e.prune then redis.call('ZREMRANGEBYSCORE', m, '(-inf', ARGV[6]) end
  if apply then redis.call('ZADD', m, seq, eid) end
  if not e.sentinel then companion_ttl(k, m) end
end
return status
