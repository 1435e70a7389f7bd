-- Leases (lease.go): an admitter reserves one amount under a lease id and
-- hands it out in parts, each with its own reservation id
-- "<lease id>/<n>/<amount>". A counter holds only r:<lease id>; settling or
-- releasing a part takes its amount off that field (and off reserved), and
-- the field goes when it reaches zero. Part ids name their amount, so every
-- store that carries a reservation id (events, ledger rows, the projection
-- backlog) carries what a part must take off, with no schema of its own.

-- lease_part returns the lease id and the part's amount when rid is a part
-- id, else nil. An amount of more than 18 digits (a billion dollars; never
-- minted) makes rid no part id rather than an error that would fail a whole
-- batch: as an ordinary id it holds nothing anywhere.
local function lease_part(rid)
  local lease, amount = string.match(rid, '^(lease:[^/]+)/%d+/(%d+)$')
  if not lease or #amount > 18 then return nil end
  return lease, int(amount, 'lease part amount')
end

-- take_part is what settling or releasing a part leaves: the amount taken
-- (at most what the lease still holds) and what the lease holds after.
local function take_part(held, amount)
  if cmp(amount, held) > 0 then amount = held end
  return amount, sub(held, amount)
end
