package window

import (
	"math/rand/v2"
	"testing"
	"time"
)

// propertyDurations covers every unit and the month-end cases; the fuzz
// target picks among them by index so the fuzzer explores times and anchors.
var propertyDurations = []Duration{
	MustParse("1s"), MustParse("30s"), MustParse("7m"), MustParse("1h"),
	MustParse("1d"), MustParse("7d"), MustParse("30d"), MustParse("36500d"),
	MustParse("1mo"), MustParse("2mo"), MustParse("3mo"), MustParse("12mo"),
	MustParse("1200mo"),
}

// Keep generated instants inside years 1..9999, the range Spec documents.
const (
	minSec = -62135596800 // 0001-01-01T00:00:00Z
	maxSec = 253402300799 // 9999-12-31T23:59:59Z
	// Anchors stay a few centuries inside so that window k+1 of a 100-year
	// window is still in range.
	minAnchor = minSec + 200*365*secondsPerDay
	maxAnchor = maxSec - 200*365*secondsPerDay
)

func clampSec(v, lo, hi int64) int64 {
	if v >= lo && v <= hi {
		return v
	}
	span := uint64(hi - lo + 1)
	return lo + int64(uint64(v)%span)
}

func buildSpec(di uint8, anchorSec int64, cal bool) Spec {
	return Spec{
		Duration: propertyDurations[int(di)%len(propertyDurations)],
		Anchor:   time.Unix(clampSec(anchorSec, minAnchor, maxAnchor), 0),
		Calendar: cal,
	}
}

// checkContains asserts Bounds(Index(t)) contains t, and that Index agrees
// with Bounds at both edges: this is what lets a denial's reset time, the
// reseed query's range and the counter a request lands in all agree.
func checkContains(t *testing.T, s Spec, at time.Time) {
	t.Helper()
	k := s.Index(at)
	start, end := s.Bounds(k)
	if at.Before(start) || !at.Before(end) {
		t.Fatalf("%v: t=%v Index=%d Bounds=[%v, %v) does not contain t", s, at, k, start, end)
	}
	if got := s.Index(start); got != k {
		t.Fatalf("%v: Index(start of %d) = %d", s, k, got)
	}
	if got := s.Index(end); got != k+1 {
		t.Fatalf("%v: Index(end of %d) = %d, want %d", s, k, got, k+1)
	}
	if got := s.Index(end.Add(-time.Nanosecond)); got != k {
		t.Fatalf("%v: Index(end-1ns of %d) = %d", s, k, got)
	}
	if nextStart, _ := s.Bounds(k + 1); !nextStart.Equal(end) {
		t.Fatalf("%v: window %d ends %v but %d starts %v", s, k, end, k+1, nextStart)
	}
}

func checkMonotonic(t *testing.T, s Spec, a, b time.Time) {
	t.Helper()
	if b.Before(a) {
		a, b = b, a
	}
	if s.Index(a) > s.Index(b) {
		t.Fatalf("%v: Index(%v)=%d > Index(%v)=%d", s, a, s.Index(a), b, s.Index(b))
	}
}

// TestIndexBoundsProperty runs the fuzz properties on a fixed pseudo-random
// sample so they are exercised by every plain `go test`.
func TestIndexBoundsProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		s := buildSpec(uint8(r.IntN(256)), r.Int64(), r.IntN(2) == 0)
		a := time.Unix(clampSec(r.Int64(), minAnchor, maxAnchor), r.Int64N(1e9))
		// Half the time stay near the anchor, where the month-end rule bites.
		if r.IntN(2) == 0 {
			a = s.Anchor.Add(time.Duration(r.Int64N(int64(400*24*time.Hour))) - 200*24*time.Hour)
		}
		b := a.Add(time.Duration(r.Int64N(int64(90 * 24 * time.Hour))))
		checkContains(t, s, a)
		checkMonotonic(t, s, a, b)
	}
}

func FuzzIndexBounds(f *testing.F) {
	f.Add(uint8(8), int64(1769853600), false, int64(1772272799), int64(0), int64(1))   // Jan 31 anchor, Feb 28 09:59:59
	f.Add(uint8(5), int64(0), true, int64(1773316800), int64(999999999), int64(86400)) // calendar week
	f.Add(uint8(1), int64(1773155100), false, int64(-1), int64(5), int64(-30))         // before the epoch
	f.Fuzz(func(t *testing.T, di uint8, anchorSec int64, cal bool, sec, nsec, delta int64) {
		s := buildSpec(di, anchorSec, cal)
		at := time.Unix(clampSec(sec, minAnchor, maxAnchor), clampSec(nsec, 0, 1e9-1))
		checkContains(t, s, at)
		checkMonotonic(t, s, at, at.Add(time.Duration(delta)))
	})
}

func BenchmarkIndex(b *testing.B) {
	at := time.Date(2026, 3, 10, 15, 4, 5, 0, time.UTC)
	anchor := time.Date(2026, 1, 31, 10, 0, 0, 0, time.UTC)
	for _, bc := range []struct {
		name string
		s    Spec
	}{
		{"1d", Spec{Duration: MustParse("1d"), Anchor: anchor}},
		{"7d-calendar", Spec{Duration: MustParse("7d"), Calendar: true}},
		{"1mo", Spec{Duration: MustParse("1mo"), Anchor: anchor}},
		{"1mo-calendar", Spec{Duration: MustParse("1mo"), Calendar: true}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var sink int64
			for i := 0; b.Loop(); i++ {
				sink += bc.s.Index(at.Add(time.Duration(i) * time.Second))
			}
			_ = sink
		})
	}
}
