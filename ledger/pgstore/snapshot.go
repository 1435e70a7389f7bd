package pgstore

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// maxXID8 is the largest 64-bit transaction id Postgres accepts in a
// snapshot (MAX_64BIT_XID in xid8funcs.c).
const maxXID8 = 1<<63 - 1

// Snapshot is a parsed pg_snapshot: transactions below Xmin had finished when
// it was taken, those at or above Xmax had not started, and Xip lists the ones
// in between still in progress.
type Snapshot struct {
	Xmin, Xmax uint64
	Xip        []uint64 // ascending, each in [Xmin, Xmax)
}

// ParseSnapshot parses pg_snapshot's text form "xmin:xmax:xip1,xip2,...",
// with the checks Postgres' own input function makes, so a corrupted seed
// fails loudly instead of deciding visibility wrongly.
func ParseSnapshot(text string) (Snapshot, error) {
	bad := func(why string) (Snapshot, error) {
		return Snapshot{}, fmt.Errorf("pgstore: invalid snapshot %q: %s", text, why)
	}
	parts := strings.Split(text, ":")
	if len(parts) != 3 {
		return bad("want xmin:xmax:xip-list")
	}
	var s Snapshot
	var err error
	if s.Xmin, err = parseXID(parts[0]); err != nil {
		return bad("xmin: " + err.Error())
	}
	if s.Xmax, err = parseXID(parts[1]); err != nil {
		return bad("xmax: " + err.Error())
	}
	if s.Xmin > s.Xmax {
		return bad("xmin after xmax")
	}
	if parts[2] == "" {
		return s, nil
	}
	for _, f := range strings.Split(parts[2], ",") {
		x, err := parseXID(f)
		if err != nil {
			return bad("xip: " + err.Error())
		}
		if x < s.Xmin || x >= s.Xmax {
			return bad(fmt.Sprintf("xip %d outside [xmin, xmax)", x))
		}
		if n := len(s.Xip); n > 0 && x < s.Xip[n-1] {
			return bad("xip not ascending")
		}
		// Postgres drops repeats on input; so do we.
		if n := len(s.Xip); n == 0 || x != s.Xip[n-1] {
			s.Xip = append(s.Xip, x)
		}
	}
	return s, nil
}

func parseXID(f string) (uint64, error) {
	x, err := strconv.ParseUint(f, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a transaction id", f)
	}
	if x == 0 || x > maxXID8 {
		return 0, fmt.Errorf("%d out of range", x)
	}
	return x, nil
}

// Visible is pg_visible_in_snapshot(txid, s): whether the effects of
// transaction txid, if it committed, are seen by s. For a ledger row that
// means the row was in every read taken in s — in particular in a Sum that
// returned s.
func (s Snapshot) Visible(txid uint64) bool {
	switch {
	case txid < s.Xmin:
		return true
	case txid >= s.Xmax:
		return false
	}
	_, inProgress := slices.BinarySearch(s.Xip, txid)
	return !inProgress
}

// TxVisible parses snapshot and reports Visible(txid). The projection skips
// an entry whose TxID is visible in a counter's seed snapshot: the seed's
// Sum already counted it.
func TxVisible(snapshot string, txid uint64) (bool, error) {
	s, err := ParseSnapshot(snapshot)
	if err != nil {
		return false, err
	}
	return s.Visible(txid), nil
}
