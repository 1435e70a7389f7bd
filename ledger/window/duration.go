package window

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Duration is a window length: either a fixed number of seconds or a number
// of calendar months. The two are kept apart because a month is not a length
// of time: "1mo" from Jan 31 and "30d" are different windows.
//
// The zero Duration is invalid; obtain one from Parse. Durations are
// comparable with ==, and equal durations describe identical windows ("24h"
// and "1d" are equal, as are "1w" and "7d").
type Duration struct {
	seconds  int64 // > 0 for a fixed duration
	months   int64 // > 0 for a month duration
	lifetime bool  // one window that never resets (see Lifetime)
}

// Lifetime is the duration of a budget without budget_duration: a single
// window, index 0, that never resets. Its canonical spelling is "lifetime".
var Lifetime = Duration{lifetime: true}

// lifetimeText is Lifetime's spelling, in counter keys and in Parse.
const lifetimeText = "lifetime"

// ErrInvalidDuration is wrapped by every error Parse returns.
var ErrInvalidDuration = errors.New("window: invalid duration")

const (
	secondsPerMinute = 60
	secondsPerHour   = 60 * secondsPerMinute
	secondsPerDay    = 24 * secondsPerHour
	secondsPerWeek   = 7 * secondsPerDay

	// Caps keep every window computation (anchor + k·d in seconds, and
	// Fixed() in nanoseconds) far from int64 overflow, and turn typos such as
	// "3000000d" into errors instead of budgets that never reset.
	maxDays   = 36500
	maxMonths = 1200
)

// units maps each accepted suffix to its length in seconds; 0 marks months.
// "m" is minutes, as in LiteLLM; months are spelled "mo".
var units = map[string]int64{
	"s":  1,
	"m":  secondsPerMinute,
	"h":  secondsPerHour,
	"d":  secondsPerDay,
	"w":  secondsPerWeek,
	"mo": 0,
}

// Parse reads a duration written as a positive integer followed by a unit:
// s (seconds), m (minutes), h (hours), d (days), w (weeks) or mo (calendar
// months), e.g. "30s", "30m", "1h", "24h", "1d", "7d", "30d", "1mo". These
// are the forms LiteLLM accepts for budget_duration. Anything else —
// signs, spaces, fractions, upper case, a missing unit, zero — is an error,
// because a silently misread duration is a budget that resets at the wrong
// time.
func Parse(s string) (Duration, error) {
	if s == lifetimeText {
		return Lifetime, nil
	}
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	digits, unit := s[:i], s[i:]
	secs, ok := units[unit]
	if digits == "" || !ok {
		return Duration{}, fmt.Errorf("%w %q: want a positive integer followed by s, m, h, d, w or mo (e.g. 30s, 1h, 7d, 1mo)", ErrInvalidDuration, s)
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if n == 0 && err == nil {
		return Duration{}, fmt.Errorf("%w %q: must be greater than zero", ErrInvalidDuration, s)
	}
	if secs == 0 {
		if err != nil || n > maxMonths {
			return Duration{}, fmt.Errorf("%w %q: at most %dmo", ErrInvalidDuration, s, maxMonths)
		}
		return Duration{months: n}, nil
	}
	if err != nil || n > maxDays*secondsPerDay/secs {
		return Duration{}, fmt.Errorf("%w %q: at most %dd", ErrInvalidDuration, s, maxDays)
	}
	return Duration{seconds: n * secs}, nil
}

// MustParse is Parse for constants in tests and defaults; it panics on error.
func MustParse(s string) Duration {
	d, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return d
}

// IsLifetime reports whether d is Lifetime.
func (d Duration) IsLifetime() bool { return d.lifetime }

// IsZero reports whether d is the invalid zero Duration.
func (d Duration) IsZero() bool { return d == Duration{} }

// Months returns n for an "Nmo" duration and 0 for a fixed one.
func (d Duration) Months() int64 { return d.months }

// Fixed returns the length of a fixed duration and 0 for a month duration,
// which has no fixed length.
func (d Duration) Fixed() time.Duration { return time.Duration(d.seconds) * time.Second }

// String returns the canonical spelling: months as "Nmo", fixed durations in
// the largest of d, h, m, s that divides them ("24h" -> "1d", "1w" -> "7d").
// Equal durations always print the same, which is what lets the text stand in
// a counter key. The zero Duration prints as "0s".
func (d Duration) String() string {
	b, _ := d.AppendText(make([]byte, 0, 8))
	return string(b)
}

// AppendText appends the canonical spelling (see String) to b without
// allocating when b has room; counter keys are built on the admission path.
// It implements encoding.TextAppender and never fails.
func (d Duration) AppendText(b []byte) ([]byte, error) {
	if d.lifetime {
		return append(b, lifetimeText...), nil
	}
	if d.months > 0 {
		return append(strconv.AppendInt(b, d.months, 10), "mo"...), nil
	}
	n, unit := d.seconds, byte('s')
	switch {
	case n == 0:
	case n%secondsPerDay == 0:
		n, unit = n/secondsPerDay, 'd'
	case n%secondsPerHour == 0:
		n, unit = n/secondsPerHour, 'h'
	case n%secondsPerMinute == 0:
		n, unit = n/secondsPerMinute, 'm'
	}
	return append(strconv.AppendInt(b, n, 10), unit), nil
}

// MarshalText implements encoding.TextMarshaler with the canonical spelling.
func (d Duration) MarshalText() ([]byte, error) { return d.AppendText(nil) }

// UnmarshalText implements encoding.TextUnmarshaler with Parse's rules, so a
// config file gets the same validation as every other caller.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := Parse(string(text))
	if err != nil {
		return err
	}
	*d = v
	return nil
}
