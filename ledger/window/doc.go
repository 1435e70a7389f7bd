// Package window defines budget windows: the time intervals over which a
// budget's spend is counted before it resets.
//
// A budget has a Duration ("30s", "1h", "1d", "7d", "1mo", ...) and a Spec
// that places its windows on the time line. Window k is the half-open interval
//
//	[start_k, start_{k+1})
//
// so an instant exactly at a boundary belongs to the new window. For fixed
// durations start_k = anchor + k·d; for months start_k is k·n calendar months
// after the anchor (see Spec for the month-end rule). k is negative before the
// anchor.
//
// Resets are never writes. The window index is part of a counter's identity
// (see package scope), so when time crosses a boundary admission simply starts
// reading a different counter; there is no "reset the counter to zero" step
// that could race with an increment or be skipped. An event is counted in the
// window of its occurred_at, which makes replay land every cent in the same
// window it landed in the first time.
//
// Everything is UTC and second-granular: anchors are truncated to whole
// seconds, and a day is always 86,400 s, so daylight saving time can never
// stretch or shrink a window. The package is pure: no clock, no I/O; callers
// pass the instant they mean.
package window
