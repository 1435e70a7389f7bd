-- Reserve: check every counter, then reserve on all or on none.
--
-- KEYS  counter i: KEYS[2i-1] = K (hash), KEYS[2i] = K:x (expiry zset)
-- ARGV  id, amount, ttl_ms, limit_1 .. limit_n   (amounts: decimal int64)
-- Reply {code, denied, expires_ms, missing, states}
--       code 0 admitted, 1 denied (denied = 1-based counter), 2 missing
--       (missing = 1-based counters; nothing written); states = spent_1,
--       reserved_1, spent_2, ... after the operation, each an integer or,
--       beyond 2^53, a decimal string.
--
-- Idempotence is per counter: a counter that already holds r:<id> (from an
-- earlier attempt with this id) is not checked or charged again. That keeps
-- reserved == sum of r:* even when only some counters hold the id (a counter
-- was reseeded, or an earlier attempt covered other counters).
--
-- The admission hot path, so the common case is kept short: per counter one
-- HMGET, one HSET, one ZADD and a little arithmetic. K:x is scanned only
-- when K's next_expiry — a lower bound on the expiries in K:x, lowered
-- whenever one is added and recomputed by each scan — says something may
-- be due, or when the request already holds this counter (a retry).

local n = #KEYS / 2
local id = ARGV[1]
local field = 'r:' .. id
local amount = int(ARGV[2], 'amount')
local now = now_ms()
local expires = now + tonumber(ARGV[3])
-- Bounded so one call's work is bounded; leftovers are evicted by later
-- calls and until then only make admission stricter.
local EVICT_MAX = 256
local NO_EXPIRY = EXACT - 1

-- Per counter i: spent, stored reserved, live reserved (after eviction),
-- next_expiry (as it will be, and as read); on the slow path also held (the
-- amount this id already holds there), held_exp, gone (expired ids to
-- evict) and repair flags.
local spent, stored, live, nxt, nxt0 = {}, {}, {}, {}, {}
local held, held_exp, gone, repair, sentinel_lost = {}, {}, {}, {}, {}

-- slow handles counter i when something may have expired or the id is
-- already held: evicts in memory (phase 2 writes) and recomputes the bound.
local function slow(i, k, x, own_value)
  local own = own_value and redis.call('ZSCORE', x, id)
  local own_expired = own and tonumber(own) <= now
  if nxt[i] <= now or own_expired then
    local g = redis.call('ZRANGEBYSCORE', x, '-inf', now, 'LIMIT', 0, EVICT_MAX)
    local truncated = #g == EVICT_MAX
    sentinel_lost[i] = g[1] ~= SENTINEL
    if not sentinel_lost[i] then table.remove(g, 1) end
    if own_expired then
      -- Our own expired reservation may lie beyond EVICT_MAX.
      local listed = false
      for _, rid in ipairs(g) do if rid == id then listed = true end end
      if not listed then g[#g + 1] = id end
    end
    local evicted = ZERO
    for _, rid in ipairs(g) do
      local rv = rid == id and own_value or redis.call('HGET', k, 'r:' .. rid)
      if rv then evicted = add(evicted, int(rv, k .. ' r:' .. rid)) end
    end
    if #g > 0 then gone[i] = g end
    live[i] = sub(live[i], evicted)
    if truncated then
      nxt[i] = 0 -- more may be due: scan again next time
    else
      local nx = redis.call('ZRANGEBYSCORE', x, '(' .. string.format('%d', now), '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
      nxt[i] = nx[2] and tonumber(nx[2]) or NO_EXPIRY
    end
  end
  if own_value and not own_expired then
    held[i] = int(own_value, k .. ' ' .. field)
    -- Without an expiry entry (should not happen) it is still in
    -- reserved: count it as held, and give it an expiry in phase 2.
    if own then held_exp[i] = tonumber(own) else repair[i] = true end
  end
end

-- Phase 1: read and decide. simple stays true while every counter is on
-- the common path (nothing to evict, not held, all amounts below 10^15):
-- then phase 2 is the short loop at the end.
local missing
local simple = type(amount) == 'number'
for i = 1, n do
  local k = KEYS[2 * i - 1]
  local v = redis.call('HMGET', k, 'spent', 'reserved', 'next_expiry', field)
  if not v[1] then
    absent(k)
    missing = missing or {}
    missing[#missing + 1] = i
  elseif not missing then
    spent[i] = int(v[1], k .. ' spent')
    stored[i] = int(v[2] or '0', k .. ' reserved')
    live[i] = stored[i]
    local nx = tonumber(v[3] or '0') or 0
    nxt[i], nxt0[i] = nx, nx
    if v[4] or nx <= now then
      slow(i, k, KEYS[2 * i], v[4])
      simple = false
    elseif type(spent[i]) ~= 'number' or type(live[i]) ~= 'number' then
      simple = false
    end
  end
end
if missing then return {2, 0, 0, missing, {}} end

local denied = 0
for i = 1, n do
  if not held[i] then
    local s, r, l = spent[i], live[i], int(ARGV[3 + i], 'limit')
    local over
    if type(s) == 'number' and type(r) == 'number' and type(l) == 'number' and type(amount) == 'number' then
      -- Exact: below 2^53 the sum is exact, and if it rounds, it rounds
      -- to at least 2^53, above any number limit.
      over = s + r + amount > l
    else
      simple = false
      over = cmp(add(add(s, r), amount), l) > 0
    end
    if over then denied = i; break end
  end
end

if simple and denied == 0 then
  -- Phase 2, common case: live + amount < 2 * 10^15 is exact and fits.
  local states = {}
  for i = 1, n do
    local k, f = KEYS[2 * i - 1], live[i] + amount
    if expires < nxt[i] then
      redis.call('HSET', k, 'reserved', string.format('%d', f), field, ARGV[2], 'next_expiry', string.format('%d', expires))
    else
      redis.call('HSET', k, 'reserved', string.format('%d', f), field, ARGV[2])
    end
    redis.call('ZADD', KEYS[2 * i], expires, id)
    states[2 * i - 1] = spent[i]
    states[2 * i] = f
  end
  return {0, 0, expires, {}, states}
end

-- The general case. Final reserved per counter, checked before any write.
local final = {}
for i = 1, n do
  if denied == 0 and not held[i] then
    final[i] = add(live[i], amount)
  elseif denied ~= 0 and held[i] then
    final[i] = sub(live[i], held[i]) -- a denied id holds nothing afterwards
  else
    final[i] = live[i]
  end
  if not fits(final[i]) then fail('reserved would overflow int64: ' .. KEYS[2 * i - 1]) end
end

-- Phase 2, general case: write. reserved is written as the exact value
-- computed above.
local min_exp = 0
local states = {}
for i = 1, n do
  local k, x = KEYS[2 * i - 1], KEYS[2 * i]
  local g = gone[i]
  if g then
    local fields = {}
    for j, rid in ipairs(g) do fields[j] = 'r:' .. rid end
    redis.call('HDEL', k, unpack(fields))
    redis.call('ZREM', x, unpack(g))
  end
  local h = held[i]
  local add_new = denied == 0 and (not h or repair[i])
  if add_new and expires < nxt[i] then nxt[i] = expires end
  local hset = {}
  if cmp(final[i], stored[i]) ~= 0 then hset[1] = 'reserved'; hset[2] = str(final[i]) end
  if denied == 0 and not h then hset[#hset + 1] = field; hset[#hset + 1] = ARGV[2] end
  if nxt[i] ~= nxt0[i] then hset[#hset + 1] = 'next_expiry'; hset[#hset + 1] = string.format('%d', nxt[i]) end
  if #hset > 0 then redis.call('HSET', k, unpack(hset)) end
  if add_new then
    redis.call('ZADD', x, expires, id)
    held_exp[i] = expires
  end
  if denied == 0 then
    if min_exp == 0 or held_exp[i] < min_exp then min_exp = held_exp[i] end
  elseif h then
    redis.call('HDEL', k, field)
    redis.call('ZREM', x, id)
  end
  if sentinel_lost[i] then companion_ttl(k, x) end
  local s, f = spent[i], final[i]
  states[2 * i - 1] = type(s) == 'number' and s or str(s)
  states[2 * i] = type(f) == 'number' and f or str(f)
end
if denied ~= 0 then return {1, denied, 0, {}, states} end
return {0, 0, min_exp, {}, states}
