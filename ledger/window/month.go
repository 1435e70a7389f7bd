package window

import "time"

// monthAnchor is a month spec's anchor split into the parts the month-end
// rule needs: window k starts in month number (month + k·n), on day
// min(day, days in that month), at sec seconds into the day.
type monthAnchor struct {
	month int64 // months since January of year 0: year·12 + (month-1)
	day   int
	sec   int
}

func (s Spec) monthAnchor() monthAnchor {
	if s.Calendar {
		return monthAnchor{month: 1970 * 12, day: 1}
	}
	a := s.Anchor.UTC()
	y, m, d := a.Date()
	hh, mm, ss := a.Clock()
	return monthAnchor{
		month: int64(y)*12 + int64(m) - 1,
		day:   d,
		sec:   hh*secondsPerHour + mm*secondsPerMinute + ss,
	}
}

// start is the first instant of window k for windows of n months.
func (a monthAnchor) start(k, n int64) time.Time {
	y, m := splitMonth(a.month + k*n)
	day := min(a.day, daysIn(y, m))
	return time.Date(int(y), time.Month(m), day, 0, 0, a.sec, 0, time.UTC)
}

// monthIndex finds k without building any time.Time. Window k starts in month
// a.month + k·n, so floor((month(t) - a.month) / n) is right unless t falls in
// the very month where that window starts but before its (clamped) start day
// and time — then t is still in window k-1. Window k+1 starts n ≥ 1 months
// later, so it can never already have begun.
func (s Spec) monthIndex(t time.Time) int64 {
	a, n := s.monthAnchor(), s.Duration.months
	t = t.UTC()
	y, m, d := t.Date()
	delta := int64(y)*12 + int64(m) - 1 - a.month
	k := floorDiv(delta, n)
	if delta != k*n {
		return k
	}
	startDay := min(a.day, daysIn(int64(y), int64(m)))
	if d != startDay {
		if d < startDay {
			return k - 1
		}
		return k
	}
	hh, mm, ss := t.Clock()
	if hh*secondsPerHour+mm*secondsPerMinute+ss < a.sec {
		return k - 1
	}
	return k
}

// splitMonth turns a month number back into a year and a 1-based month.
func splitMonth(month int64) (year, m int64) {
	year = floorDiv(month, 12)
	return year, month - year*12 + 1
}

// daysIn returns the length of month m (1-based) of year y in the proleptic
// Gregorian calendar that package time uses.
func daysIn(y, m int64) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	default:
		return 31
	}
}
