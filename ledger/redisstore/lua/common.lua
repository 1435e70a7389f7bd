-- Shared helpers, prepended to every script (scripts.go); num.lua and
-- snapshot.lua follow where a script needs them. Read README.md for
-- the key layout and the invariants these scripts keep.
--
-- Rules every script follows:
--
-- 1. Phase 1 reads and validates everything, phase 2 writes. Redis does not
--    roll back a script that raises an error after a write, so a script that
--    could fail half way would break "effect and marker in one atomic step".
--    Every error (bad number, wrong type, int64 overflow) is raised in phase
--    1; phase 2 only issues commands whose failure modes phase 1 ruled out.
--
-- 2. Money is exact over the whole int64 range. Lua 5.1 numbers are
--    doubles, exact only below 2^53 (= 9,007,199 USD in nano-USD: too small
--    for an org's monthly counter). Amounts travel as decimal strings, are
--    parsed into numbers below 2^53 and into two limbs {hi, lo} = hi*1e9 + lo
--    (0 <= lo < 1e9, both far below 2^53) above, and are written back with
--    str(), never as a Lua number.
--
-- 3. Every redis.call costs about a microsecond or two, and so does a little
--    Lua: the admission path (reserve.lua) is written to make few of either.

local function fail(msg)
  error({err = 'ERR spendledger: ' .. msg})
end

-- now_ms is Redis's clock, so every instance agrees on reservation expiry.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- absent is called when a counter hash has no 'spent' field: a missing
-- counter is normal (the caller reseeds it), a hash without the field is
-- corruption, which must stop the script before it writes anything.
local function absent(k)
  if redis.call('EXISTS', k) == 1 then fail('counter hash without spent: ' .. k) end
  return true
end

-- Every companion zset (K:x, K:m) holds SENTINEL at score -inf from Seed on.
-- It keeps the zset from ever becoming empty — Redis deletes an empty key,
-- and one recreated by ZADD would have no TTL — so Seed sets each
-- companion's expiry once and the hot-path scripts never have to. It sorts
-- first, so the reads the scripts make anyway tell whether it is there.
local SENTINEL = ''

-- companion_ttl restores a companion that lost its sentinel (only if Redis
-- dropped a key on its own, which maxmemory-policy noeviction rules out):
-- sentinel back, expiry = the counter's. Phase 2 only; cannot fail.
local function companion_ttl(k, comp)
  redis.call('ZADD', comp, '-inf', SENTINEL)
  local at = redis.call('PEXPIRETIME', k)
  if at > 0 then redis.call('PEXPIREAT', comp, at) end
end
