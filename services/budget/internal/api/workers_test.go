package api

import (
	"sync"
	"testing"
	"time"
)

func TestWorkersReuseIdleGoroutinesAndLetThemGo(t *testing.T) {
	w := newWorkers(time.Hour)
	for range 100 {
		done := make(chan struct{})
		w.run(func() { close(done) })
		<-done
	}
	// One after another: an idle worker takes each later task (one may be
	// between tasks when run looks, and a few start; never one per task).
	if n := w.live.Load(); n < 1 || n > 10 {
		t.Fatalf("%d workers for 100 sequential tasks; want them reused", n)
	}

	// Tasks that wait on each other all run at once: nothing queues
	// behind a busy worker.
	w = newWorkers(time.Millisecond)
	var all sync.WaitGroup
	all.Add(50)
	var wg sync.WaitGroup
	wg.Add(50)
	for range 50 {
		w.run(func() {
			defer wg.Done()
			all.Done()
			all.Wait()
		})
	}
	wg.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for w.live.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d workers still running after their idle time", w.live.Load())
		}
		time.Sleep(time.Millisecond)
	}
}
