package window

import (
	"testing"
	"time"
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

// checkWindow asserts that t is in window k and that window k is [start, end).
func checkWindow(t *testing.T, s Spec, at time.Time, k int64, start, end string) {
	t.Helper()
	if got := s.Index(at); got != k {
		t.Errorf("%v: Index(%v) = %d, want %d", s, at, got, k)
	}
	gs, ge := s.Bounds(k)
	if !gs.Equal(utc(start)) || !ge.Equal(utc(end)) {
		t.Errorf("%v: Bounds(%d) = [%v, %v), want [%s, %s)", s, k, gs, ge, start, end)
	}
	if gs.Location() != time.UTC || ge.Location() != time.UTC {
		t.Errorf("%v: Bounds(%d) not in UTC", s, k)
	}
}

func TestRollingFixedWindows(t *testing.T) {
	s := Spec{Duration: MustParse("1d"), Anchor: utc("2026-03-10T15:04:05Z")}
	checkWindow(t, s, utc("2026-03-10T15:04:05Z"), 0, "2026-03-10T15:04:05Z", "2026-03-11T15:04:05Z")
	checkWindow(t, s, utc("2026-03-11T15:04:04.999999999Z"), 0, "2026-03-10T15:04:05Z", "2026-03-11T15:04:05Z")
	// The boundary instant opens the new window: that is the reset.
	checkWindow(t, s, utc("2026-03-11T15:04:05Z"), 1, "2026-03-11T15:04:05Z", "2026-03-12T15:04:05Z")
	checkWindow(t, s, utc("2026-04-10T15:04:05Z"), 31, "2026-04-10T15:04:05Z", "2026-04-11T15:04:05Z")
	if got := s.ResetAt(utc("2026-03-10T20:00:00Z")); !got.Equal(utc("2026-03-11T15:04:05Z")) {
		t.Errorf("ResetAt = %v", got)
	}
}

func TestBeforeAnchorFloorsToNegativeIndex(t *testing.T) {
	s := Spec{Duration: MustParse("1h"), Anchor: utc("2026-03-10T15:30:00Z")}
	// Truncating division would put this instant in window 0 with the hour
	// after the anchor; it belongs to the hour before.
	checkWindow(t, s, utc("2026-03-10T15:29:59.5Z"), -1, "2026-03-10T14:30:00Z", "2026-03-10T15:30:00Z")
	checkWindow(t, s, utc("2026-03-10T14:30:00Z"), -1, "2026-03-10T14:30:00Z", "2026-03-10T15:30:00Z")
	checkWindow(t, s, utc("2026-03-10T14:29:59Z"), -2, "2026-03-10T13:30:00Z", "2026-03-10T14:30:00Z")
}

func TestAnchorIsTruncatedToTheSecond(t *testing.T) {
	// Counter keys carry the anchor as Unix seconds, so the windows must not
	// depend on anything finer.
	fine := Spec{Duration: MustParse("30s"), Anchor: utc("2026-03-10T15:00:07.9Z")}
	checkWindow(t, fine, utc("2026-03-10T15:00:07Z"), 0, "2026-03-10T15:00:07Z", "2026-03-10T15:00:37Z")
	coarse := Spec{Duration: MustParse("30s"), Anchor: utc("2026-03-10T15:00:07Z")}
	if !fine.Equal(coarse) {
		t.Error("specs differing below one second are not Equal")
	}
	// Anchors before 1970 have negative Unix seconds; truncation must still
	// go toward the past, never into the next second.
	old := Spec{Duration: MustParse("1s"), Anchor: utc("1960-01-01T00:00:00.5Z")}
	checkWindow(t, old, utc("1960-01-01T00:00:00.2Z"), 0, "1960-01-01T00:00:00Z", "1960-01-01T00:00:01Z")
}

func TestCalendarFixedWindows(t *testing.T) {
	cal := func(d string) Spec {
		// A rolling anchor is present to prove Calendar ignores it.
		return Spec{Duration: MustParse(d), Anchor: utc("2026-03-10T15:04:05Z"), Calendar: true}
	}
	checkWindow(t, cal("30s"), utc("2026-03-10T15:04:29Z"), 59105168, "2026-03-10T15:04:00Z", "2026-03-10T15:04:30Z")
	checkWindow(t, cal("30s"), utc("2026-03-10T15:04:30Z"), 59105169, "2026-03-10T15:04:30Z", "2026-03-10T15:05:00Z")
	checkWindow(t, cal("1h"), utc("2026-03-10T15:59:59Z"), 492543, "2026-03-10T15:00:00Z", "2026-03-10T16:00:00Z")
	checkWindow(t, cal("1d"), utc("2026-03-10T23:59:59.999Z"), 20522, "2026-03-10T00:00:00Z", "2026-03-11T00:00:00Z")
	checkWindow(t, cal("1d"), utc("2026-03-11T00:00:00Z"), 20523, "2026-03-11T00:00:00Z", "2026-03-12T00:00:00Z")
	// 2026-03-12 is a Thursday; its week began Monday 2026-03-09.
	checkWindow(t, cal("7d"), utc("2026-03-12T12:00:00Z"), 2931, "2026-03-09T00:00:00Z", "2026-03-16T00:00:00Z")
	checkWindow(t, cal("1w"), utc("2026-03-16T00:00:00Z"), 2932, "2026-03-16T00:00:00Z", "2026-03-23T00:00:00Z")
	checkWindow(t, cal("14d"), utc("2026-03-12T12:00:00Z"), 1465, "2026-03-02T00:00:00Z", "2026-03-16T00:00:00Z")
	// Before the epoch the same alignment holds (1969-12-29 was a Monday).
	checkWindow(t, cal("7d"), utc("1970-01-01T00:00:00Z"), -1, "1969-12-29T00:00:00Z", "1970-01-05T00:00:00Z")
}

func TestCalendarMonths(t *testing.T) {
	m := Spec{Duration: MustParse("1mo"), Calendar: true}
	checkWindow(t, m, utc("2026-02-15T12:00:00Z"), 673, "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z")
	checkWindow(t, m, utc("2026-02-28T23:59:59.999Z"), 673, "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z")
	checkWindow(t, m, utc("2026-03-01T00:00:00Z"), 674, "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z")
	checkWindow(t, m, utc("2025-12-31T23:59:59Z"), 671, "2025-12-01T00:00:00Z", "2026-01-01T00:00:00Z")
	checkWindow(t, m, utc("1969-12-31T23:59:59Z"), -1, "1969-12-01T00:00:00Z", "1970-01-01T00:00:00Z")

	q := Spec{Duration: MustParse("3mo"), Calendar: true}
	checkWindow(t, q, utc("2026-05-20T00:00:00Z"), 225, "2026-04-01T00:00:00Z", "2026-07-01T00:00:00Z")
	y := Spec{Duration: MustParse("12mo"), Calendar: true}
	checkWindow(t, y, utc("2026-12-31T23:59:59Z"), 56, "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z")
}

func TestRollingMonthsClampToMonthEnd(t *testing.T) {
	s := Spec{Duration: MustParse("1mo"), Anchor: utc("2026-01-31T10:00:00Z")}
	want := []string{
		"2025-11-30T10:00:00Z", // k = -2
		"2025-12-31T10:00:00Z",
		"2026-01-31T10:00:00Z", // k = 0
		"2026-02-28T10:00:00Z",
		"2026-03-31T10:00:00Z", // back to the 31st: no drift to the 28th
		"2026-04-30T10:00:00Z",
		"2026-05-31T10:00:00Z",
	}
	for i := range len(want) - 1 {
		k := int64(i - 2)
		checkWindow(t, s, utc(want[i]), k, want[i], want[i+1])
	}
	// Just before the clamped start, t is still in the January window.
	checkWindow(t, s, utc("2026-02-28T09:59:59Z"), 0, "2026-01-31T10:00:00Z", "2026-02-28T10:00:00Z")
	checkWindow(t, s, utc("2026-02-27T23:00:00Z"), 0, "2026-01-31T10:00:00Z", "2026-02-28T10:00:00Z")

	leap := Spec{Duration: MustParse("12mo"), Anchor: utc("2024-02-29T00:00:00Z")}
	checkWindow(t, leap, utc("2025-02-28T00:00:00Z"), 1, "2025-02-28T00:00:00Z", "2026-02-28T00:00:00Z")
	checkWindow(t, leap, utc("2028-02-29T00:00:00Z"), 4, "2028-02-29T00:00:00Z", "2029-02-28T00:00:00Z")
	checkWindow(t, leap, utc("2100-02-28T12:00:00Z"), 76, "2100-02-28T00:00:00Z", "2101-02-28T00:00:00Z") // 2100 is not leap

	two := Spec{Duration: MustParse("2mo"), Anchor: utc("2026-03-15T08:30:00Z")}
	checkWindow(t, two, utc("2026-03-15T08:29:59Z"), -1, "2026-01-15T08:30:00Z", "2026-03-15T08:30:00Z")
	checkWindow(t, two, utc("2026-04-30T00:00:00Z"), 0, "2026-03-15T08:30:00Z", "2026-05-15T08:30:00Z")
	checkWindow(t, two, utc("2026-05-15T08:30:00Z"), 1, "2026-05-15T08:30:00Z", "2026-07-15T08:30:00Z")
}

func TestLocalTimeZonesAndDSTAreIrrelevant(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	// US clocks sprang forward on 2026-03-08 at 02:00 local (07:00 UTC).
	anchor := time.Date(2026, 3, 7, 12, 0, 0, 0, ny)
	for _, s := range []Spec{
		{Duration: MustParse("1d"), Anchor: anchor},
		{Duration: MustParse("1d"), Calendar: true},
		{Duration: MustParse("1mo"), Anchor: anchor},
	} {
		for _, at := range []time.Time{
			time.Date(2026, 3, 8, 1, 59, 0, 0, ny),
			time.Date(2026, 3, 8, 3, 0, 0, 0, ny),
			time.Date(2026, 3, 8, 23, 30, 0, 0, ny),
		} {
			if s.Index(at) != s.Index(at.UTC()) {
				t.Errorf("%v: Index depends on the location of %v", s, at)
			}
		}
		if s.Duration.Months() == 0 {
			start, end := s.Bounds(s.Index(anchor.AddDate(0, 0, 1)))
			if end.Sub(start) != 24*time.Hour {
				t.Errorf("%v: day across DST lasts %v", s, end.Sub(start))
			}
		}
	}
	cal := Spec{Duration: MustParse("1d"), Calendar: true}
	start, _ := cal.Bounds(cal.Index(time.Date(2026, 3, 8, 23, 30, 0, 0, ny)))
	if !start.Equal(utc("2026-03-09T00:00:00Z")) {
		t.Errorf("calendar day of 23:30 EDT starts %v, want the UTC midnight", start)
	}
}

func TestValidate(t *testing.T) {
	good := []Spec{
		{Duration: MustParse("1d"), Anchor: utc("2026-01-01T00:00:00Z")},
		{Duration: MustParse("1mo"), Calendar: true},
	}
	for _, s := range good {
		if err := s.Validate(); err != nil {
			t.Errorf("%v: %v", s, err)
		}
	}
	bad := []Spec{
		{Anchor: utc("2026-01-01T00:00:00Z")},
		{Calendar: true},
		{Duration: MustParse("1d")}, // rolling with no creation time
	}
	for _, s := range bad {
		if s.Validate() == nil {
			t.Errorf("Validate(%#v) = nil, want error", s)
		}
	}
}

func TestEqual(t *testing.T) {
	a := Spec{Duration: MustParse("24h"), Anchor: utc("2026-01-01T00:00:00Z")}
	for _, tc := range []struct {
		b    Spec
		want bool
	}{
		{Spec{Duration: MustParse("1d"), Anchor: utc("2026-01-01T00:00:00.3Z")}, true},
		{Spec{Duration: MustParse("1d"), Anchor: utc("2026-01-01T00:00:01Z")}, false},
		{Spec{Duration: MustParse("2d"), Anchor: utc("2026-01-01T00:00:00Z")}, false},
		{Spec{Duration: MustParse("1d"), Anchor: utc("2026-01-01T00:00:00Z"), Calendar: true}, false},
	} {
		if got := a.Equal(tc.b); got != tc.want {
			t.Errorf("%v.Equal(%v) = %v, want %v", a, tc.b, got, tc.want)
		}
	}
	c1 := Spec{Duration: MustParse("1d"), Calendar: true, Anchor: utc("2026-01-01T00:00:00Z")}
	c2 := Spec{Duration: MustParse("1d"), Calendar: true}
	if !c1.Equal(c2) {
		t.Error("calendar specs differing only in the ignored anchor are not Equal")
	}
}

func TestString(t *testing.T) {
	if got := (Spec{Duration: MustParse("1mo"), Calendar: true}).String(); got != "1mo@calendar" {
		t.Errorf("got %q", got)
	}
	if got := (Spec{Duration: MustParse("24h"), Anchor: utc("2026-01-31T10:00:00.7Z")}).String(); got != "1d@2026-01-31T10:00:00Z" {
		t.Errorf("got %q", got)
	}
}
