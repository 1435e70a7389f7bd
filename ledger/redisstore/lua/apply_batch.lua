-- ApplyBatch: project many committed ledger entries onto their counters in one
-- call, each exactly once per counter, with apply.lua's per-event semantics.
--
-- KEYS  the call's distinct counters, counter c: KEYS[3c-2] = K, KEYS[3c-1] = K:x,
--       KEYS[3c] = K:m
-- ARGV  prune_floor, then per event: event_id, stream_seq, tx_id (decimal
--       xid8), cost (decimal int64), reservation_id ('' for none), n, and n
--       counter numbers c (1-based, into KEYS as above), in the event's order
-- Reply one status per (event, counter) in ARGV order, as apply.lua's:
--       1 settled, 2 direct, 3 duplicate, 4 in seed, 5 missing, 6 skipped
--       (present, but another counter of the same event is missing).
--
-- Why one call and not one Apply per event: a counter is shared by many
-- events (a team's day, a provider), so reading it once, writing it once and
-- adding all its markers in one ZADD replaces, per event, a round trip and
-- four to six commands per counter.
--
-- Events are applied in ARGV order as if each were its own Apply, the state
-- one leaves being the next one's start: a marker written for an earlier
-- event makes a later copy of it a duplicate, a reservation an earlier event
-- released is gone for a later one (a lease part takes its amount off what
-- earlier parts of the same lease left), and every intermediate spent and
-- reserved must fit int64. An event with a missing counter writes nothing on any of
-- its counters (the others report skipped); other events are not held back.
-- Markers are pruned at or below prune_floor (the minimum of the events'
-- floors, so below every event of the call), lazily as in apply.lua, before
-- this call's markers are added.
--
-- Written for Lua's cost as much as Redis's: per event, the interpreter
-- work (decoding, deciding) costs as much as the commands, so events live
-- in parallel arrays rather than a table each, and loops are numeric.

local nc = #KEYS / 3
local floor_s = ARGV[1]
local floor = tonumber(floor_s)
if not floor then fail('bad prune floor') end
local PRUNE_STEP = 1000 -- as in apply.lua

-- Decode the events into parallel arrays (one table per field, not one per
-- event: Lua table creation dominates otherwise), and per counter the ids to
-- look up: its events' ids (after the sentinel) and their reservation fields.
local E_id, E_seq, E_tx, E_cost, E_rid, E_part, E_k, E_n = {}, {}, {}, {}, {}, {}, {}, {}
local K = {} -- counter numbers of all events, flat; event i's are K[E_k[i] + 1 .. E_k[i] + E_n[i]]
local ids, nids, rfields = {}, {}, {}
for c = 1, nc do ids[c] = {SENTINEL}; nids[c] = 1 end
local argc = #ARGV
local ne, nk_all, p = 0, 0, 2
while p <= argc do
  local nk = tonumber(ARGV[p + 5])
  if not nk or p + 5 + nk > argc then fail('bad event list') end
  ne = ne + 1
  local eid, rid = ARGV[p], ARGV[p + 4]
  if rid ~= '' then
    -- A part is held under its lease's id (lease.lua).
    local lease, part = lease_part(rid)
    if lease then rid = lease; E_part[ne] = part end
  end
  E_id[ne], E_seq[ne], E_tx[ne], E_cost[ne], E_rid[ne] = eid, ARGV[p + 1], ARGV[p + 2], int(ARGV[p + 3], 'cost'), rid
  E_k[ne], E_n[ne] = nk_all, nk
  for j = 1, nk do
    local c = tonumber(ARGV[p + 5 + j])
    if not c or c < 1 or c > nc then fail('bad counter number') end
    nk_all = nk_all + 1
    K[nk_all] = c
    local n = nids[c] + 1
    nids[c] = n
    ids[c][n] = eid
    if rid ~= '' then
      local r = rfields[c]
      if not r then r = {}; rfields[c] = r end
      r['r:' .. rid] = true
    end
  end
  p = p + 6 + nk
end

-- The seed snapshot, parsed once per counter (a seeded counter's is read for
-- every event): seen() in snapshot.lua, split in two.
local function parse_snap(snap)
  local xmin, xmax, xip = string.match(snap, '^(%d+):(%d+):([%d,]*)$')
  if not xmin then fail('bad seed snapshot: ' .. snap) end
  local inprog = {}
  for x in string.gmatch(xip, '%d+') do inprog[x] = true end
  return {xmin = xmin, xmax = xmax, inprog = inprog}
end

local function seen_in(tx, s)
  if ucmp(tx, s.xmin) < 0 then return true end
  if ucmp(tx, s.xmax) >= 0 then return false end
  return not s.inprog[tx]
end

-- Phase 1: read every counter once, validate, decide every event.
local S_spent, S_res, S_seed, S_snap, S_prune, S_held, S_marked, S_sent = {}, {}, {}, {}, {}, {}, {}, {}
local missing = {}
for c = 1, nc do
  local k = KEYS[3 * c - 2]
  local rf = rfields[c]
  local v
  local fl
  if rf then
    fl = {}
    for f in pairs(rf) do fl[#fl + 1] = f end
    v = redis.call('HMGET', k, 'spent', 'reserved', 'seed', 'pruned', unpack(fl))
  else
    v = redis.call('HMGET', k, 'spent', 'reserved', 'seed', 'pruned')
  end
  if not v[1] then
    absent(k)
    missing[c] = true
  else
    S_spent[c] = int(v[1], k .. ' spent')
    S_res[c] = int(v[2] or '0', k .. ' reserved')
    S_seed[c] = v[3]
    S_prune[c] = floor > 0 and floor - (tonumber(v[4] or '0') or 0) >= PRUNE_STEP
    if fl then
      local held = {}
      for i = 1, #fl do
        local x = v[4 + i]
        if x then held[fl[i]] = int(x, k .. ' ' .. fl[i]) end
      end
      S_held[c] = held
    end
    local l = ids[c]
    local sc = redis.call('ZMSCORE', KEYS[3 * c], unpack(l))
    S_sent[c] = sc[1] ~= false
    local marked = {}
    for i = 2, nids[c] do
      if sc[i] then marked[l[i]] = true end
    end
    S_marked[c] = marked
  end
end

local status, ns = {}, 0
local adds, released, touched, lefts = {}, {}, {}, {}
for i = 1, ne do
  local k0, n = E_k[i], E_n[i]
  local miss = false
  for j = k0 + 1, k0 + n do
    if missing[K[j]] then miss = true end
  end
  if miss then
    for j = k0 + 1, k0 + n do
      ns = ns + 1
      status[ns] = missing[K[j]] and 5 or 6
    end
  else
    local eid, rid, part = E_id[i], E_rid[i], E_part[i]
    local rfield = rid ~= '' and ('r:' .. rid) or nil
    for j = k0 + 1, k0 + n do
      local c = K[j]
      touched[c] = true
      local held = rfield and S_held[c] and S_held[c][rfield]
      ns = ns + 1
      local st
      if S_marked[c][eid] then
        st = 3
      else
        local snap = S_snap[c]
        if not snap and S_seed[c] then snap = parse_snap(S_seed[c]); S_snap[c] = snap end
        if snap and seen_in(E_tx[i], snap) then
          st = 4
        else
          local s = add(S_spent[c], E_cost[i])
          if not fits(s) then fail('spent would overflow int64: ' .. KEYS[3 * c - 2]) end
          S_spent[c] = s
          S_marked[c][eid] = true
          local a = adds[c]
          if not a then a = {}; adds[c] = a end
          a[#a + 1] = E_seq[i]
          a[#a + 1] = eid
        end
      end
      -- A reservation is released in every case, as in apply.lua: its
      -- request is over. A part only when its event is applied now.
      if held and (not part or not st) then
        local taken, left = held, nil
        if part then taken, left = take_part(held, part) end
        local r = sub(S_res[c], taken)
        if not fits(r) then fail('reserved would overflow int64: ' .. KEYS[3 * c - 2]) end
        S_res[c] = r
        if left and cmp(left, ZERO) > 0 then
          S_held[c][rfield] = left
          local l = lefts[c]
          if not l then l = {}; lefts[c] = l end
          l[rfield] = true
        else
          S_held[c][rfield] = nil
          local l = released[c]
          if not l then l = {}; released[c] = l end
          l[#l + 1] = rid
        end
      else
        held = nil
      end
      status[ns] = st or (held and 1 or 2)
    end
  end
end

-- Phase 2: write, per counter that an event reached. Every effect with its
-- marker, or (on a crash) none: the script is one atomic step.
for c = 1, nc do
  if touched[c] then
    local k, x, m = KEYS[3 * c - 2], KEYS[3 * c - 1], KEYS[3 * c]
    local a, rel, lf = adds[c], released[c], lefts[c]
    local hset = {}
    if a then hset[#hset + 1] = 'spent'; hset[#hset + 1] = str(S_spent[c]) end
    if rel or lf then hset[#hset + 1] = 'reserved'; hset[#hset + 1] = str(S_res[c]) end
    if lf then
      for f in pairs(lf) do
        local v = S_held[c][f]
        if v then hset[#hset + 1] = f; hset[#hset + 1] = str(v) end
      end
    end
    if S_prune[c] then hset[#hset + 1] = 'pruned'; hset[#hset + 1] = floor_s end
    if #hset > 0 then redis.call('HSET', k, unpack(hset)) end
    if rel then
      local f = {}
      for i = 1, #rel do f[i] = 'r:' .. rel[i] end
      redis.call('HDEL', k, unpack(f))
      redis.call('ZREM', x, unpack(rel))
    end
    if S_prune[c] then redis.call('ZREMRANGEBYSCORE', m, '(-inf', floor_s) end
    if a then redis.call('ZADD', m, unpack(a)) end
    if not S_sent[c] then companion_ttl(k, m) end
  end
end
return status
