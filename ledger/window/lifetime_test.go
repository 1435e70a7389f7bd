package window

import (
	"testing"
	"time"
)

func TestLifetimeIsOneWindowThatNeverResets(t *testing.T) {
	s := LifetimeSpec()
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, at := range []time.Time{time.Unix(0, 0), time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC), time.Date(2500, 1, 1, 0, 0, 0, 0, time.UTC)} {
		if k := s.Index(at); k != 0 {
			t.Fatalf("Index(%v) = %d; want 0", at, k)
		}
		start, end := s.Bounds(0)
		if at.Before(start) || !at.Before(end) {
			t.Fatalf("%v outside the lifetime window [%v, %v)", at, start, end)
		}
	}
}

func TestLifetimeSpellingRoundTrips(t *testing.T) {
	d, err := Parse(Lifetime.String())
	if err != nil || d != Lifetime || !d.IsLifetime() || d.IsZero() {
		t.Fatalf("Parse(%q) = %v, %v", Lifetime.String(), d, err)
	}
	if Lifetime.String() != "lifetime" {
		t.Fatalf("spelling %q", Lifetime.String())
	}
}

func TestLifetimeSpecMustBeCalendar(t *testing.T) {
	if err := (Spec{Duration: Lifetime, Anchor: time.Now()}).Validate(); err == nil {
		t.Fatal("an anchored lifetime spec would give one budget two spellings; want an error")
	}
}
