-- Exact int64 arithmetic for the scripts (rule 2 of common.lua).

local B = 1000000000
local EXACT = 9007199254740992 -- 2^53
local ZERO = 0
local I64_MAX = {9223372036, 854775807}   --  9223372036854775807
local I64_MIN = {-9223372037, 145224192}  -- -9223372036854775808

-- Values are Lua numbers while |v| < 2^53, where doubles are exact, and limb
-- pairs {hi, lo} beyond. The fast path is plain arithmetic (money below
-- 9M USD per counter, i.e. nearly always); the limbs keep it exact above.
-- Every operation checks that a number result is still below 2^53 — IEEE
-- rounding is monotone, so a rounded sum below 2^53 was exact — and
-- otherwise redoes the operation in limbs.

local function limbs(v)
  if type(v) == 'table' then return v end
  -- The quotient may round across an integer; the remainder is exact
  -- (|hi * B| <= 2^53) and puts it right.
  local hi = math.floor(v / B)
  local lo = v - hi * B
  if lo < 0 then
    hi = hi - 1; lo = lo + B
  elseif lo >= B then
    hi = hi + 1; lo = lo - B
  end
  return {hi, lo}
end

local function lcmp(a, b)
  if a[1] ~= b[1] then return a[1] < b[1] and -1 or 1 end
  if a[2] ~= b[2] then return a[2] < b[2] and -1 or 1 end
  return 0
end

local function cmp(a, b)
  if type(a) == 'number' and type(b) == 'number' then
    if a == b then return 0 end
    return a < b and -1 or 1
  end
  return lcmp(limbs(a), limbs(b))
end

local function add(a, b)
  if type(a) == 'number' and type(b) == 'number' then
    local r = a + b
    if r > -EXACT and r < EXACT then return r end
  end
  a, b = limbs(a), limbs(b)
  local hi, lo = a[1] + b[1], a[2] + b[2]
  if lo >= B then lo = lo - B; hi = hi + 1 end
  return {hi, lo}
end

local function sub(a, b)
  if type(a) == 'number' and type(b) == 'number' then
    local r = a - b
    if r > -EXACT and r < EXACT then return r end
  end
  a, b = limbs(a), limbs(b)
  local hi, lo = a[1] - b[1], a[2] - b[2]
  if lo < 0 then lo = lo + B; hi = hi - 1 end
  return {hi, lo}
end

local function fits(v)
  if type(v) == 'number' then return true end
  return lcmp(v, I64_MIN) >= 0 and lcmp(v, I64_MAX) <= 0
end

-- int parses a decimal int64 string (what the scripts store and Go sends).
-- what names the value in the error.
local function int(s, what)
  if type(s) == 'string' and #s <= 15 then
    -- Fast path: at most 15 characters is below 10^15 < 2^53.
    local v = tonumber(s)
    if v and v % 1 == 0 and v > -1e15 and v < 1e15 then return v end
    fail('not an int64: ' .. what)
  end
  if type(s) ~= 'string' or #s > 20 or not string.find(s, '^%-?%d+$') then
    fail('not an int64: ' .. what)
  end
  local neg = string.byte(s, 1) == 45 -- '-'
  local d = neg and string.sub(s, 2) or s
  local n = #d
  local hi = tonumber(string.sub(d, 1, n - 9))
  local lo = tonumber(string.sub(d, n - 8))
  if neg then
    if lo > 0 then hi = -hi - 1; lo = B - lo else hi = -hi end
  end
  local v = {hi, lo}
  if not fits(v) then fail('out of int64 range: ' .. what) end
  return v
end

-- str formats v as a canonical decimal string: what the scripts store and
-- return. (A Lua number handed to redis.call would become "1.2345e+14".)
local function str(v)
  if type(v) == 'number' then return string.format('%d', v) end
  local hi, lo = v[1], v[2]
  local sign = ''
  if hi < 0 then
    sign = '-'
    if lo > 0 then hi = -hi - 1; lo = B - lo else hi = -hi end
  end
  if hi == 0 then return sign .. string.format('%d', lo) end
  return sign .. string.format('%d%09d', hi, lo)
end
