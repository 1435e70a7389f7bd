package redisstore

import (
	"strconv"
	"strings"
)

// A lease is one reservation that an admitter makes for many requests and
// hands out in parts, so that most admissions need no Redis call: Reserve
// it under a LeaseID, give each request a LeasePart of it, and Release the
// part nobody took (a part of its own, n = 0) when the lease closes.
//
// A counter holds only r:<lease id>. Apply and ApplyBatch take a part's
// amount off it when the part's event is applied (not when the event is a
// duplicate or already in the seed, as a whole reservation would be: the
// lease's other parts are still live), and Release takes it off once
// (lua/lease.lua, lua/release.lua). The lease's field goes when nothing is
// left; an unsettled lease expires as a whole, like any reservation.
//
// The part's amount is in its id, so every place that carries a reservation
// id — UsageRecorded, ledger rows, the projection backlog — already carries
// what settling the part must take off.

const leasePrefix = "lease:"

// MaxPartAmount is the largest part (a billion dollars, 18 digits), so that
// the scripts read every part amount exactly (lua/lease.lua). A larger
// amount is no part: reserve it on its own.
const (
	MaxPartAmount = 999_999_999_999_999_999
	maxPartDigits = 18
)

// LeaseID is the reservation id of a lease; unique must be unique among
// leases and must not contain '/'.
func LeaseID(unique string) string { return leasePrefix + unique }

// LeasePart is the reservation id of part n (n ≥ 1; 0 is the lease's
// unused rest) of lease, holding amount nano-USD.
func LeasePart(lease string, n uint64, amount int64) string {
	return lease + "/" + strconv.FormatUint(n, 10) + "/" + strconv.FormatInt(amount, 10)
}

// ParseLeasePart splits a part id into its lease and amount; ok is false
// for any other reservation id.
func ParseLeasePart(id string) (lease string, amount int64, ok bool) {
	if !strings.HasPrefix(id, leasePrefix) {
		return "", 0, false
	}
	rest, amt, found := cut(id)
	if !found {
		return "", 0, false
	}
	lease, n, found := cut(rest)
	if !found || strings.Contains(lease, "/") || len(lease) == len(leasePrefix) {
		return "", 0, false
	}
	if _, err := strconv.ParseUint(n, 10, 64); err != nil {
		return "", 0, false
	}
	a, err := strconv.ParseInt(amt, 10, 64)
	if err != nil || a < 0 || amt[0] == '+' || len(amt) > maxPartDigits {
		return "", 0, false
	}
	return lease, a, true
}

// IsLeaseID reports whether id names a lease or a lease part, which a
// request id must not (admission mints them).
func IsLeaseID(id string) bool { return strings.HasPrefix(id, leasePrefix) }

func cut(s string) (before, after string, found bool) {
	i := strings.LastIndexByte(s, '/')
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+1:], true
}

// leaseRelease is the reservation id the fallback path may release after a
// direct apply: a whole reservation's own id, or "" for a part, whose
// failed Apply may have taken its amount already (a lost reply). The part
// then stays held until its lease expires: stricter, never looser.
func leaseRelease(id string) string {
	if _, _, ok := ParseLeasePart(id); ok {
		return ""
	}
	return id
}
