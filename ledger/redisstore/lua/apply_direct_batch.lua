-- ApplyDirectBatch: the fallback when ApplyBatch fails, as apply_direct.lua
-- is Apply's. The same marker and seed checks per (event, counter), and only
-- spent += cost: no reservation handling, so a fault in that path cannot
-- also stop the costs from landing. The caller releases the reservations
-- separately (Store.ApplyBatchWithFallback).
--
-- KEYS  the call's distinct counters, counter c: KEYS[2c-1] = K, KEYS[2c] = K:m
-- ARGV  prune_floor, then per event: event_id, stream_seq, tx_id, cost, n, and
--       n counter numbers c (1-based, into KEYS as above)
-- Reply one status per (event, counter) in ARGV order: 2 direct, 3 duplicate,
--       4 in seed, 5 missing, 6 skipped (as in apply_batch.lua).
--
-- Events apply in ARGV order, each as its own ApplyDirect would (see
-- apply_batch.lua). spent is written once per counter as the exact sum
-- computed in phase 1 (HSET), not with HINCRBY by the summed costs: that sum
-- could leave int64 on its way even when every step stays inside, and then
-- HINCRBY would fail after other writes.

local nc = #KEYS / 2
local floor = ARGV[1]
if not tonumber(floor) then fail('bad prune floor') end

local ev = {}
local ids = {}
for c = 1, nc do ids[c] = {SENTINEL} end
local p = 2
while p <= #ARGV do
  local nk = tonumber(ARGV[p + 4])
  if not nk or p + 4 + nk > #ARGV then fail('bad event list') end
  local e = {eid = ARGV[p], seq = ARGV[p + 1], tx = ARGV[p + 2], cost = int(ARGV[p + 3], 'cost'), ks = {}}
  for j = 1, nk do
    local c = tonumber(ARGV[p + 4 + j])
    if not c or c < 1 or c > nc then fail('bad counter number') end
    e.ks[j] = c
    local l = ids[c]; l[#l + 1] = e.eid
  end
  ev[#ev + 1] = e
  p = p + 5 + nk
end

-- Phase 1: read, validate, decide.
local st = {}
for c = 1, nc do
  local k, m = KEYS[2 * c - 1], KEYS[2 * c]
  local v = redis.call('HMGET', k, 'spent', 'seed')
  if not v[1] then
    absent(k)
    st[c] = false
  else
    local s = {spent = int(v[1], k .. ' spent'), seed = v[2], marked = {}, adds = {}}
    local sc = redis.call('ZMSCORE', m, unpack(ids[c]))
    s.sentinel = sc[1] ~= false
    for i = 2, #sc do
      if sc[i] then s.marked[ids[c][i]] = true end
    end
    st[c] = s
  end
end

local status = {}
for _, e in ipairs(ev) do
  local missing = false
  for _, c in ipairs(e.ks) do
    if not st[c] then missing = true end
  end
  if missing then
    for _, c in ipairs(e.ks) do status[#status + 1] = st[c] and 6 or 5 end
  else
    for _, c in ipairs(e.ks) do
      local s = st[c]
      s.touched = true
      if s.marked[e.eid] then
        status[#status + 1] = 3
      elseif seen(e.tx, s.seed) then
        status[#status + 1] = 4
      else
        s.spent = add(s.spent, e.cost)
        if not fits(s.spent) then fail('spent would overflow int64: ' .. KEYS[2 * c - 1]) end
        s.marked[e.eid] = true
        s.adds[#s.adds + 1] = e.seq
        s.adds[#s.adds + 1] = e.eid
        status[#status + 1] = 2
      end
    end
  end
end

-- Phase 2: write. Effects and markers together.
for c = 1, nc do
  local s = st[c]
  if s and s.touched then
    local k, m = KEYS[2 * c - 1], KEYS[2 * c]
    if floor ~= '0' then redis.call('ZREMRANGEBYSCORE', m, '(-inf', floor) end
    if #s.adds > 0 then
      redis.call('HSET', k, 'spent', str(s.spent))
      redis.call('ZADD', m, unpack(s.adds))
    end
    if not s.sentinel then companion_ttl(k, m) end
  end
end
return status
