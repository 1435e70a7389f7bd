-- ApplyDirect: the fallback when Apply fails. The same marker and seed
-- checks, and only spent += cost (HINCRBY): no reservation handling, so a
-- fault in that path cannot also stop the cost from landing. The caller
-- releases the reservation separately (Store.ApplyWithFallback).
--
-- KEYS  counter i: KEYS[2i-1] = K, KEYS[2i] = K:m
-- ARGV  event_id, stream_seq, tx_id, cost, prune_floor
-- Reply one status per counter: 2 direct, 3 duplicate, 4 in seed, 5 missing,
--       6 skipped (as in apply.lua).

local n = #KEYS / 2
local eid, seq, tx = ARGV[1], ARGV[2], ARGV[3]
local cost = int(ARGV[4], 'cost')
local floor = ARGV[5]

-- Phase 1: read, validate, decide.
local status, sentinel, any_missing = {}, {}, false
for i = 1, n do
  local k, m = KEYS[2 * i - 1], KEYS[2 * i]
  local v = redis.call('HMGET', k, 'spent', 'seed')
  if not v[1] then
    absent(k)
    status[i] = 5
    any_missing = true
  else
    local sc = redis.call('ZMSCORE', m, eid, SENTINEL)
    sentinel[i] = sc[2] ~= false
    if sc[1] then
      status[i] = 3
    elseif seen(tx, v[2]) then
      status[i] = 4
    else
      if not fits(add(int(v[1], k .. ' spent'), cost)) then fail('spent would overflow int64: ' .. k) end
      status[i] = 2
    end
  end
end
if any_missing then
  for i = 1, n do if status[i] ~= 5 then status[i] = 6 end end
  return status
end

-- Phase 2: write. Effect and marker together.
for i = 1, n do
  local k, m = KEYS[2 * i - 1], KEYS[2 * i]
  if floor ~= '0' then redis.call('ZREMRANGEBYSCORE', m, '(-inf', floor) end
  if status[i] == 2 then
    redis.call('HINCRBY', k, 'spent', ARGV[4])
    redis.call('ZADD', m, seq, eid)
  end
  if not sentinel[i] then companion_ttl(k, m) end
end
return status
