-- ReserveBatch: many Reserve requests in one call (group commit), each with
-- reserve.lua's exact semantics, applied in ARGV order as if each were its
-- own Reserve: the state one request leaves is the next one's start.
--
-- KEYS  the call's distinct counters, counter c: KEYS[2c-1] = K, KEYS[2c] = K:x
-- ARGV  per request: id, amount, ttl_ms, n, then n pairs (counter number c,
--       1-based into KEYS as above; limit), in the request's counter order
-- Reply one reply per request, in ARGV order: reserve.lua's reply
--       {code, denied, expires_ms, missing, states} with denied and missing
--       numbering the request's own counters, or {-1, message} when that
--       request raised an error (it wrote nothing; the others are unaffected).
--
-- The script is assembled (reserve_batch.go) as common + num, reserve.lua's
-- body wrapped as the function reserve_one(KEYS, ARGV), then this file. So a
-- request off the common path runs exactly reserve.lua's code.
--
-- Why: one Reserve over six counters costs Redis ~60-100 µs, nearly all of
-- it in its 18 commands (HMGET, HSET, ZADD per counter) on large hashes and
-- zsets, and capped admission near 10k/s. A batch of requests sharing
-- counters (one team, one org) reads each counter once, then writes it once
-- with one HSET and one ZADD carrying every new reservation. (The per-element
-- work of those commands stays: about half of a batch's time is the ZADDs.)
--
-- How: counters are loaded lazily into an overlay (one HMGET: spent,
-- reserved, next_expiry and the reservation fields of the requests still to
-- come). A request whose counters are all on reserve.lua's common path
-- (present, nothing due to expire, the id not held, amounts below 10^15)
-- is decided and applied in the overlay, exactly as reserve.lua's fast path
-- would. Any other request (missing counter, eviction due, a retry or a
-- duplicate id, large amounts) first writes its counters' pending overlay
-- state to Redis, then runs reserve_one on them, and its counters are
-- reloaded for later requests. reserve_one validates before it writes, so a
-- request that raises wrote nothing, and pcall confines the error to it.

local FAST_MAX = 1e15 -- int()'s fast path bound: numbers below it only

-- Decode.
local nc = #KEYS / 2
local reqs = {}
local touch = {} -- per counter: request numbers touching it, ascending
for c = 1, nc do touch[c] = {} end
local p = 1
while p <= #ARGV do
  local r = {id = ARGV[p], field = 'r:' .. ARGV[p], amount_s = ARGV[p + 1], ttl_s = ARGV[p + 2], ttl = tonumber(ARGV[p + 2]), cs = {}, limits = {}}
  local n = tonumber(ARGV[p + 3])
  if not r.ttl or not n then fail('bad reserve batch arguments') end
  p = p + 4
  for j = 1, n do
    local c = tonumber(ARGV[p])
    if not c or c < 1 or c > nc then fail('bad reserve batch counter number') end
    r.cs[j] = c
    r.limits[j] = ARGV[p + 1]
    p = p + 2
  end
  reqs[#reqs + 1] = r
  local q = #reqs
  for _, c in ipairs(r.cs) do
    local t = touch[c]
    if t[#t] ~= q then t[#t + 1] = q end
  end
end

local now = now_ms()

-- The overlay. st[c] is nil until loaded, and after it is reset: then
-- {spent, live, nxt, nxt0, held = {id = true} (fields in Redis for later
-- requests), new = {id = true}, and hset = {field, amount, ...} and
-- zadd = {expiry, id, ...} (this batch's unwritten reservations, as the
-- HSET and ZADD arguments that will write them)}. A loaded counter with no
-- spent field is {missing = true}.
local st = {}

local function load(c, from)
  local k = KEYS[2 * c - 1]
  local f = {'spent', 'reserved', 'next_expiry'}
  local ids = {}
  for _, q in ipairs(touch[c]) do
    if q >= from then
      ids[#ids + 1] = reqs[q].id
      f[#f + 1] = reqs[q].field
    end
  end
  local v = redis.call('HMGET', k, unpack(f))
  if not v[1] then
    st[c] = {missing = true}
    return
  end
  -- Only numbers below FAST_MAX stay on the overlay path (else nil: the
  -- request falls back to reserve_one, which parses and reports exactly).
  local function small(s)
    if type(s) ~= 'string' or #s > 15 then return nil end
    local x = tonumber(s)
    if x and x % 1 == 0 and x > -FAST_MAX and x < FAST_MAX then return x end
    return nil
  end
  local nx = tonumber(v[3] or '0') or 0
  local s = {spent = small(v[1]), live = small(v[2] or '0'), nxt = nx, nxt0 = nx, held = {}, new = {}, hset = {}, zadd = {}}
  for j, id in ipairs(ids) do
    if v[3 + j] then s.held[id] = true end
  end
  st[c] = s
end

-- flush writes counter c's pending overlay state, so that Redis holds what
-- the requests so far would have left, and drops it from the overlay (the
-- next request on c loads it again). Cannot fail: plain HSET and ZADD on
-- keys the load read.
local function flush(c)
  local s = st[c]
  st[c] = nil
  if not s or s.missing then return end
  local k = KEYS[2 * c - 1]
  local h = s.hset -- extended in place: s is dropped
  if #h > 0 then
    h[#h + 1] = 'reserved'
    h[#h + 1] = string.format('%d', s.live)
  end
  if s.nxt ~= s.nxt0 then
    h[#h + 1] = 'next_expiry'
    h[#h + 1] = string.format('%d', s.nxt)
  end
  if #h > 0 then redis.call('HSET', k, unpack(h)) end
  if #s.zadd > 0 then redis.call('ZADD', KEYS[2 * c], unpack(s.zadd)) end
end

-- fast decides request q in the overlay if every counter is on the common
-- path; it returns the reply, or nil to fall back.
local function fast(q, r)
  local amount = r.amount_s and #r.amount_s <= 15 and tonumber(r.amount_s)
  if not amount or amount % 1 ~= 0 or amount <= 0 or amount >= FAST_MAX then return nil end
  for _, c in ipairs(r.cs) do
    if not st[c] then load(c, q) end
    local s = st[c]
    if s.missing or not s.spent or not s.live or s.nxt <= now or s.held[r.id] or s.new[r.id] then
      return nil
    end
    if s.live + amount >= FAST_MAX then return nil end
  end
  local denied = 0
  for j, c in ipairs(r.cs) do
    local s = st[c]
    -- As reserve.lua: exact below 2^53, limbs for a large limit.
    local l = int(r.limits[j], 'limit')
    local over
    if type(l) == 'number' then
      over = s.spent + s.live + amount > l
    else
      over = cmp(add(add(s.spent, s.live), amount), l) > 0
    end
    if over then denied = j; break end
  end
  local states = {}
  if denied ~= 0 then
    -- Nothing is written: no counter held the id, nothing was due.
    for j, c in ipairs(r.cs) do
      states[2 * j - 1] = st[c].spent
      states[2 * j] = st[c].live
    end
    return {1, denied, 0, {}, states}
  end
  local expires = now + r.ttl
  for j, c in ipairs(r.cs) do
    local s = st[c]
    s.live = s.live + amount
    s.new[r.id] = true
    local h, z = s.hset, s.zadd
    h[#h + 1] = r.field
    h[#h + 1] = r.amount_s
    z[#z + 1] = expires
    z[#z + 1] = r.id
    if expires < s.nxt then s.nxt = expires end
    states[2 * j - 1] = s.spent
    states[2 * j] = s.live
  end
  return {0, 0, expires, {}, states}
end

-- slow runs reserve_one on request r's counters, after writing their
-- overlay state; they are reloaded by the next request that needs them.
local function slow(r)
  local keys, argv = {}, {r.id, r.amount_s, r.ttl_s}
  for j, c in ipairs(r.cs) do
    flush(c)
    keys[2 * j - 1] = KEYS[2 * c - 1]
    keys[2 * j] = KEYS[2 * c]
    argv[3 + j] = r.limits[j]
  end
  return reserve_one(keys, argv)
end

local out = {}
for q, r in ipairs(reqs) do
  local ok, res = pcall(fast, q, r)
  if ok and res == nil then ok, res = pcall(slow, r) end
  if ok then
    out[q] = res
  else
    -- The request's counters may be half loaded; reload them next time.
    for _, c in ipairs(r.cs) do
      if st[c] and (st[c].missing or (#st[c].hset == 0 and st[c].nxt == st[c].nxt0)) then st[c] = nil end
    end
    local msg = type(res) == 'table' and (res.err or res.ok) or tostring(res)
    out[q] = {-1, tostring(msg)}
  end
end
for c = 1, nc do flush(c) end
return out
