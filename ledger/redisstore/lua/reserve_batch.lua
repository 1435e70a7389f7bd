-- ReserveBatch: many Reserve requests in one call (group commit), each with
-- reserve.lua's exact semantics, applied in ARGV order as if each were its
-- own Reserve: the state one request leaves is the next one's start.
--
-- KEYS  the call's distinct counters, counter c: KEYS[2c-1] = K, KEYS[2c] = K:x
-- ARGV  per request: id, amount, ttl_ms, n, then n pairs (counter number c,
--       1-based into KEYS as above; limit), in the request's counter order
-- Reply one flat array: per request, in ARGV order, reserve.lua's reply
--       {code, denied, expires_ms, missing, states} laid out flat as code,
--       denied, expires_ms, #missing, missing..., #states, states... (denied
--       and missing numbering the request's own counters), or -1, message
--       when that request raised an error (it wrote nothing; the others are
--       unaffected). Flat: Redis converts every nested table of a reply
--       separately (a flat reply saves ~2% of a call's time).
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
-- work of those commands stays.) Most of what remains is this interpreter:
-- every table growth, tonumber, ipairs step or number passed to redis.call
-- costs about a thousand machine instructions, so the code below avoids
-- them per request and per counter (README, "Performance").
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

-- Parsing a number (tonumber: strtod) costs more than the rest of a
-- request's decoding, and a batch repeats the same few strings (counter
-- numbers, TTLs, amounts, each counter's limit) request after request:
-- each distinct string is parsed once per call.
local parsed = {}
local function num(s)
  local v = parsed[s]
  if v == nil then
    v = tonumber(s) or false
    parsed[s] = v
  end
  return v
end
local limits = {}
local function limit(s)
  local v = limits[s]
  if v == nil then
    v = int(s, 'limit')
    limits[s] = v -- a number, or limbs that add and cmp never modify
  end
  return v
end

-- Decode.
local nc = #KEYS / 2
local reqs = {}
local touch = {} -- per counter: request numbers touching it, ascending
for c = 1, nc do touch[c] = {} end
-- Tables are built whole ({unpack(scratch, 1, n)} sizes one at once):
-- growing one element at a time reallocates it at every power of two, at
-- about a thousand instructions each.
local cs_, lim_ = {}, {}
local p = 1
local nargv = #ARGV
while p <= nargv do
  local id, ttl, n = ARGV[p], num(ARGV[p + 2]), num(ARGV[p + 3])
  if not ttl or not n then fail('bad reserve batch arguments') end
  local at = p
  p = p + 4
  for j = 1, n do
    local c = num(ARGV[p])
    if not c or c < 1 or c > nc then fail('bad reserve batch counter number') end
    cs_[j] = c
    lim_[j] = ARGV[p + 1]
    p = p + 2
  end
  local r = {id = id, field = 'r:' .. id, amount_s = ARGV[at + 1], ttl_s = ARGV[at + 2], ttl = ttl,
    cs = {unpack(cs_, 1, n)}, limits = {unpack(lim_, 1, n)}}
  reqs[#reqs + 1] = r
  local q = #reqs
  local cs = r.cs
  for j = 1, n do
    local t = touch[cs[j]]
    if t[#t] ~= q then t[#t + 1] = q end
  end
end

local now = now_ms()

-- The overlay. st[c] is nil until loaded, and after it is reset: then
-- {spent, live, nxt, nxt0, held = {id = true} (fields in Redis for later
-- requests), and hset = {field, amount, ...} (nh of them) and
-- zadd = {expiry, id, ...} (this batch's unwritten reservations, as the
-- HSET and ZADD arguments that will write them)}. A loaded counter with no
-- spent field is {missing = true}.
local st = {}
-- Reservation ids this call admitted in the overlay: a later request with
-- the same id (a retry racing its first attempt) goes to reserve_one.
local admitted = {}

-- Only numbers below FAST_MAX stay on the overlay path (else nil: the
-- request falls back to reserve_one, which parses and reports exactly).
local function small(s)
  if type(s) ~= 'string' or #s > 15 then return nil end
  local x = tonumber(s)
  if x and x % 1 == 0 and x > -FAST_MAX and x < FAST_MAX then return x end
  return nil
end

local fields_ = {'spent', 'reserved', 'next_expiry'}
local function load(c, from)
  local k = KEYS[2 * c - 1]
  local nf = 3
  local t = touch[c]
  for i = 1, #t do
    local q = t[i]
    if q >= from then
      nf = nf + 1
      fields_[nf] = reqs[q].field
    end
  end
  local v = redis.call('HMGET', k, unpack(fields_, 1, nf))
  if not v[1] then
    st[c] = {missing = true}
    return
  end
  local nx = tonumber(v[3] or '0') or 0
  local s = {spent = small(v[1]), live = small(v[2] or '0'), nxt = nx, nxt0 = nx, held = {}, hset = {}, nh = 0, zadd = {}}
  local j = 3
  for i = 1, #t do
    local q = t[i]
    if q >= from then
      j = j + 1
      if v[j] then s.held[reqs[q].id] = true end
    end
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
  local h, nh = s.hset, s.nh -- extended in place: s is dropped
  if nh > 0 then
    h[nh + 1] = 'reserved'
    h[nh + 2] = string.format('%d', s.live)
    nh = nh + 2
  end
  if s.nxt ~= s.nxt0 then
    h[nh + 1] = 'next_expiry'
    h[nh + 2] = string.format('%d', s.nxt)
    nh = nh + 2
  end
  if nh > 0 then redis.call('HSET', k, unpack(h, 1, nh)) end
  if s.nh > 0 then redis.call('ZADD', KEYS[2 * c], unpack(s.zadd, 1, s.nh)) end
end

-- The reply (see the top), and its length so far.
local out, no = {}, 0
local function emit(v)
  no = no + 1
  out[no] = v
end
local expiry_text = {}

-- fast decides request q in the overlay if every counter is on the common
-- path and emits its reply (true), or returns nil to fall back. Nothing can
-- raise once it emits.
local function fast(q, r)
  local amount = r.amount_s and #r.amount_s <= 15 and num(r.amount_s)
  if not amount or amount % 1 ~= 0 or amount <= 0 or amount >= FAST_MAX then return nil end
  local cs, id = r.cs, r.id
  local n = #cs
  for j = 1, n do
    local c = cs[j]
    if not st[c] then load(c, q) end
    local s = st[c]
    if s.missing or not s.spent or not s.live or s.nxt <= now or s.held[id] or admitted[id] then
      return nil
    end
    if s.live + amount >= FAST_MAX then return nil end
  end
  local denied = 0
  for j = 1, n do
    local s = st[cs[j]]
    -- As reserve.lua: exact below 2^53, limbs for a large limit.
    local l = limit(r.limits[j])
    local over
    if type(l) == 'number' then
      over = s.spent + s.live + amount > l
    else
      over = cmp(add(add(s.spent, s.live), amount), l) > 0
    end
    if over then denied = j; break end
  end
  if denied ~= 0 then
    -- Nothing is written: no counter held the id, nothing was due.
    emit(1); emit(denied); emit(0); emit(0); emit(2 * n)
    for j = 1, n do
      local s = st[cs[j]]
      emit(s.spent); emit(s.live)
    end
    return true
  end
  local expires = now + r.ttl
  -- The score as text: a Lua number handed to redis.call is formatted with
  -- %.14g (glibc's slow floating-point path), once per counter.
  local expires_s = expiry_text[expires]
  if not expires_s then
    expires_s = string.format('%d', expires)
    expiry_text[expires] = expires_s
  end
  admitted[id] = true
  emit(0); emit(0); emit(expires); emit(0); emit(2 * n)
  for j = 1, n do
    local s = st[cs[j]]
    s.live = s.live + amount
    local h, z, nh = s.hset, s.zadd, s.nh
    h[nh + 1] = r.field
    h[nh + 2] = r.amount_s
    z[nh + 1] = expires_s
    z[nh + 2] = id
    s.nh = nh + 2
    if expires < s.nxt then s.nxt = expires end
    emit(s.spent); emit(s.live)
  end
  return true
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

for q = 1, #reqs do
  local r = reqs[q]
  local ok, res = pcall(fast, q, r)
  if ok and res == nil then
    ok, res = pcall(slow, r)
    if ok then
      -- reserve_one's reply, flattened.
      local missing, states = res[4], res[5]
      emit(res[1]); emit(res[2]); emit(res[3]); emit(#missing)
      for i = 1, #missing do emit(missing[i]) end
      emit(#states)
      for i = 1, #states do emit(states[i]) end
    end
  end
  if not ok then
    -- The request's counters may be half loaded; reload them next time.
    for _, c in ipairs(r.cs) do
      if st[c] and (st[c].missing or (st[c].nh == 0 and st[c].nxt == st[c].nxt0)) then st[c] = nil end
    end
    local msg = type(res) == 'table' and (res.err or res.ok) or tostring(res)
    emit(-1); emit(tostring(msg))
  end
end
for c = 1, nc do flush(c) end
return out
