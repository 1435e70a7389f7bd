package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestFormatProgress(t *testing.T) {
	for _, c := range []struct {
		n, total int64
		elapsed  time.Duration
		want     string
	}{
		{1234, 0, 2 * time.Second, "x: 1,234 (617/s)"},
		{0, 0, 0, "x: 0 (0/s)"},
		{250, 1000, time.Second, "x: 250/1,000 (25.0%) 250/s, ETA 3s"},
		{1000, 1000, 4 * time.Second, "x: 1,000/1,000 (100.0%) 250/s, ETA 0s"},
		// More done than the estimated total (the stream grew): clamp, never over 100%.
		{1200, 1000, 4 * time.Second, "x: 1,000/1,000 (100.0%) 300/s, ETA 0s"},
		{0, 1000, time.Second, "x: 0/1,000 (0.0%) 0/s, ETA ?"},
		{1, 1_000_000, time.Second, "x: 1/1,000,000 (0.0%) 1/s, ETA 277h47m"},
	} {
		if got := formatProgress("x", c.n, c.total, c.elapsed); got != c.want {
			t.Errorf("formatProgress(%d, %d, %v) = %q, want %q", c.n, c.total, c.elapsed, got, c.want)
		}
	}
}

func TestFormatETA(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                                 "0s",
		1500 * time.Millisecond:           "2s",
		59 * time.Second:                  "59s",
		61 * time.Second:                  "1m01s",
		59*time.Minute + 59*time.Second:   "59m59s",
		2*time.Hour + 30*time.Minute + 20: "2h30m",
	} {
		if got := formatETA(d); got != want {
			t.Errorf("formatETA(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestGroupDigits(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", -1234567: "-1,234,567", 100000: "100,000"} {
		if got := groupDigits(n); got != want {
			t.Errorf("groupDigits(%d) = %q, want %q", n, got, want)
		}
	}
}

// The line is redrawn in place with \r, a shorter line blanks the tail of the
// longer one before it, and done ends the line.
func TestProgressDrawsInPlace(t *testing.T) {
	var buf bytes.Buffer
	p := &progress{w: &buf, label: "x", stop: make(chan struct{}), stopped: make(chan struct{})}
	close(p.stopped) // no ticker goroutine: draws are driven by hand
	clock := time.Unix(0, 0)
	p.start, p.now = clock, func() time.Time { return clock }
	p.total.Store(100)

	clock = clock.Add(time.Second)
	p.set(10)
	p.draw(false)
	p.total.Store(0)
	p.draw(false)
	p.done()
	lines := strings.Split(buf.String(), "\r")
	want := []string{"", "x: 10/100 (10.0%) 10/s, ETA 9s", "x: 10 (10/s)" + strings.Repeat(" ", 18), "x: 10 (10/s)\n"}
	if len(lines) != len(want) {
		t.Fatalf("output %q: want %d draws", buf.String(), len(want)-1)
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("draw %d = %q, want %q", i, lines[i], want[i])
		}
	}
}

// A command that finishes before the first redraw prints nothing at all.
func TestProgressSilentWhenQuick(t *testing.T) {
	var buf bytes.Buffer
	p := newProgress(&buf, "x", 10)
	p.add(10)
	p.done()
	p.done() // twice is harmless
	if buf.Len() != 0 {
		t.Fatalf("quick command printed %q", buf.String())
	}
}

// A message printed during a progress line blanks the line first, so the two
// never run together; the next redraw starts a new line.
func TestProgressLogf(t *testing.T) {
	var buf bytes.Buffer
	p := &progress{w: &buf, label: "x", stop: make(chan struct{}), stopped: make(chan struct{}), now: time.Now, start: time.Now()}
	close(p.stopped)
	p.set(5)
	p.draw(false)
	p.logf(&buf, "skipped %d", 7)
	want := "\rx: 5 (" // then the rate, which depends on the clock
	if !strings.HasPrefix(buf.String(), want) {
		t.Fatalf("output %q", buf.String())
	}
	line := strings.Split(buf.String(), "\r")[1]
	if got := strings.TrimPrefix(buf.String(), "\r"+line); got != "\r"+strings.Repeat(" ", len(line))+"\rskipped 7\n" {
		t.Fatalf("after the line: %q", got)
	}
	var plain bytes.Buffer
	(*progress)(nil).logf(&plain, "no bar %s", "yet")
	if plain.String() != "no bar yet\n" {
		t.Fatalf("nil progress: %q", plain.String())
	}
}
