package serve

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Start runs a start-up step (migrations, stream creation) in the background,
// retrying with backoff until it succeeds or ctx ends. The service is not ready
// until every step has succeeded, but it serves /healthz meanwhile, so start
// order between a service and its stores does not matter. done, when given, is
// closed once the step has succeeded.
func (s *Server) Start(ctx context.Context, name string, fn func(context.Context) error) (done <-chan struct{}) {
	st := s.NewStep(name)
	ch := make(chan struct{})
	go func() {
		if err := s.Retry(ctx, name, fn); err != nil {
			s.log.Error("start-up step abandoned", "step", name, "err", err)
			return
		}
		st.Done()
		close(ch)
	}()
	return ch
}

// Retry calls fn until it succeeds or ctx ends, backing off up to 2s between
// attempts and logging each failure.
func (s *Server) Retry(ctx context.Context, what string, fn func(context.Context) error) error {
	wait := 100 * time.Millisecond
	for {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", what, errors.Join(err, ctx.Err()))
		}
		s.log.Warn("retrying", "step", what, "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, errors.Join(err, ctx.Err()))
		case <-time.After(wait):
		}
		wait = min(wait*2, 2*time.Second)
	}
}
