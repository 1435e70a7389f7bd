package api

import (
	"sync/atomic"
	"time"
)

// workers runs functions on goroutines that outlive them. AdmitBatch runs
// each item on its own goroutine; a fresh goroutine starts with a small
// stack and grows it (copying) on the way down Admit's call chain, which
// measured 8% of the budget binary's CPU under batched load. Kept workers
// keep their grown stacks. There is no bound: a worker is started whenever
// none is idle, as a bare go statement would, and one idle for idleFor
// exits.
type workers struct {
	tasks   chan func()
	idleFor time.Duration
	live    atomic.Int64 // workers running now (for tests)
}

func newWorkers(idleFor time.Duration) *workers {
	return &workers{tasks: make(chan func()), idleFor: idleFor}
}

// run runs f on an idle worker, or on a new one.
func (w *workers) run(f func()) {
	select {
	case w.tasks <- f:
	default:
		w.live.Add(1)
		go w.work(f)
	}
}

func (w *workers) work(f func()) {
	defer w.live.Add(-1)
	f()
	idle := time.NewTimer(w.idleFor)
	defer idle.Stop()
	for {
		select {
		case f := <-w.tasks:
			f()
			idle.Reset(w.idleFor)
		case <-idle.C:
			return
		}
	}
}
