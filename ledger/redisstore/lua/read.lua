-- Read: the state of each counter, for admission diagnostics and verify.
-- Writes nothing (expired reservations are left for Reserve to evict).
--
-- KEYS  counter i: KEYS[2i-1] = K, KEYS[2i] = K:x
-- Reply per counter {exists, spent, reserved, held, live}: reserved is the
--       stored field, held the sum of every r:* field (equal to reserved in a
--       sound counter), live the sum of the unexpired ones.

local n = #KEYS / 2
local now = now_ms()
local out = {}
for i = 1, n do
  local k, x = KEYS[2 * i - 1], KEYS[2 * i]
  local h = redis.call('HGETALL', k)
  if #h == 0 then
    out[i] = {0, '0', '0', '0', '0'}
  else
    local spent, reserved, held, amounts = ZERO, ZERO, ZERO, {}
    for j = 1, #h, 2 do
      local f, v = h[j], h[j + 1]
      if f == 'spent' then
        spent = int(v, k .. ' spent')
      elseif f == 'reserved' then
        reserved = int(v, k .. ' reserved')
      elseif string.sub(f, 1, 2) == 'r:' then
        local a = int(v, k .. ' ' .. f)
        held = add(held, a)
        amounts[string.sub(f, 3)] = a
      end
    end
    local live = held
    for _, rid in ipairs(redis.call('ZRANGEBYSCORE', x, '-inf', now)) do
      if rid ~= SENTINEL and amounts[rid] then live = sub(live, amounts[rid]) end
    end
    out[i] = {1, str(spent), str(reserved), str(held), str(live)}
  end
end
return out
