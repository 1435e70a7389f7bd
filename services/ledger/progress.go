package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// progress draws one line on stderr, rewritten in place with \r, so a long
// command shows it is alive and how far it has to go: the count, the rate,
// and, when the total is known, the share done and the time left. It redraws
// at most every progressEvery, from a goroutine of its own, so callers on a
// hot path pay one atomic add per item; several goroutines may count at once.
// Results go to stdout and progress to stderr, so `ledger ... > report.txt`
// keeps the report clean.
type progress struct {
	w     io.Writer
	label string
	total atomic.Int64 // 0: unknown
	n     atomic.Int64
	start time.Time
	now   func() time.Time

	mu    sync.Mutex // serializes drawing
	width int        // length of the last line drawn, to blank its tail
	drawn bool

	stop     chan struct{}
	stopped  chan struct{}
	stopOnce sync.Once
}

// progressEvery is the redraw interval: often enough to look live, rarely
// enough to cost nothing and not flood a log file that captures stderr.
const progressEvery = 250 * time.Millisecond

// newProgress starts a progress line; total 0 means unknown (count and rate
// only). Call done when finished.
func newProgress(w io.Writer, label string, total int64) *progress {
	p := &progress{w: w, label: label, start: time.Now(), now: time.Now,
		stop: make(chan struct{}), stopped: make(chan struct{})}
	p.total.Store(total)
	go p.loop()
	return p
}

func (p *progress) loop() {
	defer close(p.stopped)
	t := time.NewTicker(progressEvery)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.draw(false)
		}
	}
}

// set records that n items are done.
func (p *progress) set(n int) { p.n.Store(int64(n)) }

// add records k more items done.
func (p *progress) add(k int) { p.n.Add(int64(k)) }

// setTotal changes the total once it is known.
func (p *progress) setTotal(total int64) { p.total.Store(total) }

// done draws the final line and ends it with a newline, if a line was drawn
// at all: a command that finished within one interval prints nothing.
func (p *progress) done() {
	p.stopOnce.Do(func() {
		close(p.stop)
		<-p.stopped
		p.draw(true)
	})
}

func (p *progress) draw(final bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if final && !p.drawn {
		return
	}
	line := formatProgress(p.label, p.n.Load(), p.total.Load(), p.now().Sub(p.start))
	pad := ""
	if len(line) < p.width {
		pad = strings.Repeat(" ", p.width-len(line))
	}
	p.width = len(line)
	end := ""
	if final {
		end = "\n"
	}
	fmt.Fprintf(p.w, "\r%s%s%s", line, pad, end)
	p.drawn = true
}

// logf prints a message line on the progress writer without garbling the
// progress line: it blanks the line drawn, prints, and lets the next redraw
// start a fresh one. A nil progress just prints to w.
func (p *progress) logf(w io.Writer, format string, args ...any) {
	if p == nil {
		fmt.Fprintf(w, format+"\n", args...)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.width > 0 {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.width))
		p.width = 0
	}
	fmt.Fprintf(p.w, format+"\n", args...)
}

// formatProgress renders one progress line: "label: 1,234/5,000 (24.7%)
// 2,468/s, ETA 2s" with a total, "label: 1,234 (2,468/s)" without. Pure, so
// it is unit-tested.
func formatProgress(label string, n, total int64, elapsed time.Duration) string {
	rate := 0.0
	if elapsed > 0 {
		rate = float64(n) / elapsed.Seconds()
	}
	if total <= 0 {
		return fmt.Sprintf("%s: %s (%s/s)", label, groupDigits(n), groupDigits(int64(rate)))
	}
	shown := min(n, total)
	pct := 100 * float64(shown) / float64(total)
	eta := "?"
	switch {
	case shown >= total:
		eta = "0s"
	case rate > 0:
		eta = formatETA(time.Duration(float64(total-shown) / rate * float64(time.Second)))
	}
	return fmt.Sprintf("%s: %s/%s (%.1f%%) %s/s, ETA %s",
		label, groupDigits(shown), groupDigits(total), pct, groupDigits(int64(rate)), eta)
}

// formatETA rounds to what a person reads: seconds under a minute, then
// minutes and seconds, then hours and minutes.
func formatETA(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int64((d + time.Second - 1).Seconds()))
	case d < time.Hour:
		d = d.Round(time.Second)
		return fmt.Sprintf("%dm%02ds", int64(d/time.Minute), int64(d%time.Minute/time.Second))
	default:
		d = d.Round(time.Minute)
		return fmt.Sprintf("%dh%02dm", int64(d/time.Hour), int64(d%time.Hour/time.Minute))
	}
}

// groupDigits writes n with thousands separators (1234567 → "1,234,567").
func groupDigits(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
