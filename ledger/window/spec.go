package window

import (
	"errors"
	"time"
)

// Spec places a budget's windows on the time line.
//
// Rolling windows (Calendar false) start at Anchor, the budget's creation
// time, truncated to the whole second so that the anchor can be written
// exactly into a counter key as Unix seconds.
//
// Calendar windows (Calendar true) ignore Anchor and align to UTC:
//
//   - durations that are whole weeks (7d, 14d, ...) start on Monday 00:00 UTC;
//   - every other fixed duration counts from the Unix epoch, which puts days
//     at 00:00 UTC, hours on the hour, 30s on the 30-second boundary, and any
//     duration that divides a day on its natural boundary. Multi-day durations
//     that are not whole weeks (e.g. 30d) are epoch-aligned: deterministic but
//     unrelated to months — use "1mo" for monthly budgets;
//   - Nmo starts on the 1st at 00:00 UTC, in blocks of N months counted from
//     January 1970, so 3mo gives calendar quarters and 12mo calendar years.
//
// Month windows with a rolling anchor keep the anchor's day of month and time
// of day, with the day clamped to each month's length: from an anchor of
// Jan 31 10:00 the windows start Jan 31, Feb 28 (29 in leap years), Mar 31,
// Apr 30, ... always at 10:00. Every start is computed from the anchor, never
// from the previous start, so a short month does not drag later windows to
// the 28th; and unlike time.AddDate, "Jan 31 + 1 month" is never Mar 3.
//
// Two Specs describe the same windows iff Equal reports true.
type Spec struct {
	Duration Duration
	Anchor   time.Time
	Calendar bool
}

// LifetimeSpec is the spec of a budget that never resets.
func LifetimeSpec() Spec { return Spec{Duration: Lifetime, Calendar: true} }

// A lifetime window spans every instant an entry can carry; its end stands for
// "never resets" and is far enough that no real time reaches it.
var (
	lifetimeStart = time.Unix(0, 0).UTC()
	lifetimeEnd   = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
)

// 1970-01-01 was a Thursday; the first Monday after the epoch anchors
// calendar weeks.
const firstMondaySeconds = 4 * secondsPerDay

// Validate reports whether s can be used. Index and Bounds assume a valid
// Spec; check once when a budget is loaded, not per request.
func (s Spec) Validate() error {
	if s.Duration.IsZero() {
		return errors.New("window: spec has no duration")
	}
	if s.Duration.lifetime {
		if !s.Calendar {
			// One spelling per counter: a lifetime window has no anchor.
			return errors.New("window: a lifetime spec is Calendar (use LifetimeSpec)")
		}
		return nil
	}
	if !s.Calendar && s.Anchor.IsZero() {
		// A zero anchor is almost certainly a budget whose creation time was
		// never set; rolling windows from year 1 would look valid but reset
		// at an arbitrary time of day.
		return errors.New("window: rolling spec needs an anchor (the budget's creation time) or Calendar alignment")
	}
	return nil
}

// Equal reports whether s and o describe the same windows: same duration,
// same alignment, and for rolling windows the same anchor second.
func (s Spec) Equal(o Spec) bool {
	return s.Duration == o.Duration && s.Calendar == o.Calendar &&
		(s.Calendar || s.Anchor.Unix() == o.Anchor.Unix())
}

// String describes s for logs and denial messages, e.g. "1d@calendar" or
// "1mo@2026-01-31T10:00:00Z".
func (s Spec) String() string {
	if s.Calendar {
		return s.Duration.String() + "@calendar"
	}
	return s.Duration.String() + "@" + time.Unix(s.Anchor.Unix(), 0).UTC().Format(time.RFC3339)
}

// Index returns the k with t in [start_k, start_{k+1}). It is O(1): integer
// arithmetic on Unix seconds for fixed durations, one calendar decomposition
// of t for months. Seconds rather than UnixNano keep it exact for any t in
// years 1..9999 (UnixNano overflows outside 1678..2262); sub-second parts of
// t cannot matter because every boundary falls on a whole second.
//
// Index panics if s has a zero Duration; see Validate.
func (s Spec) Index(t time.Time) int64 {
	if s.Duration.lifetime {
		return 0
	}
	if s.Duration.months > 0 {
		return s.monthIndex(t)
	}
	return floorDiv(t.Unix()-s.anchorSeconds(), s.Duration.seconds)
}

// Bounds returns window k as [start, end); end is the reset time. Both are
// in UTC. Bounds(k).end == Bounds(k+1).start, so windows tile the time line.
func (s Spec) Bounds(k int64) (start, end time.Time) {
	if s.Duration.lifetime {
		return lifetimeStart, lifetimeEnd
	}
	if s.Duration.months > 0 {
		a := s.monthAnchor()
		return a.start(k, s.Duration.months), a.start(k+1, s.Duration.months)
	}
	a, d := s.anchorSeconds(), s.Duration.seconds
	return time.Unix(a+k*d, 0).UTC(), time.Unix(a+(k+1)*d, 0).UTC()
}

// ResetAt returns when the window containing t ends, for denial messages.
func (s Spec) ResetAt(t time.Time) time.Time {
	_, end := s.Bounds(s.Index(t))
	return end
}

// anchorSeconds is the Unix second where window 0 of a fixed-duration spec
// starts.
func (s Spec) anchorSeconds() int64 {
	if !s.Calendar {
		return s.Anchor.Unix()
	}
	if s.Duration.seconds%secondsPerWeek == 0 {
		return firstMondaySeconds
	}
	return 0
}

// floorDiv divides rounding toward negative infinity, so instants before the
// anchor get negative indexes instead of sharing window 0 with the first
// window after it. b must be positive.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}
