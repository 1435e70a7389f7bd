-- Postgres snapshot visibility for seeded counters.

-- ucmp compares canonical unsigned decimal strings (xid8 values up to 2^64,
-- beyond a double's exact range) without converting them to numbers: by
-- length, then 15 digits at a time. Not with Lua's '<', which is strcoll and
-- depends on the server's locale.
local function ucmp(a, b)
  if #a ~= #b then return #a < #b and -1 or 1 end
  for i = 1, #a, 15 do
    local x, y = tonumber(string.sub(a, i, i + 14)), tonumber(string.sub(b, i, i + 14))
    if x ~= y then return x < y and -1 or 1 end
  end
  return 0
end

-- seen tells whether transaction tx (canonical decimal xid8) is visible in the
-- Postgres snapshot text "xmin:xmax:xip1,xip2,..." a counter was seeded
-- with, by pg_visible_in_snapshot's rule: below xmin visible, at or above
-- xmax not, in between visible unless in progress (listed). A visible row
-- was counted by the seed's sum, so projecting it again would count it twice.
local function seen(tx, snap)
  if not snap then return false end
  local xmin, xmax, xip = string.match(snap, '^(%d+):(%d+):([%d,]*)$')
  if not xmin then fail('bad seed snapshot: ' .. snap) end
  if ucmp(tx, xmin) < 0 then return true end
  if ucmp(tx, xmax) >= 0 then return false end
  for x in string.gmatch(xip, '%d+') do
    if x == tx then return false end
  end
  return true
end
