package cache

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"

	"github.com/spendledger/spendledger/services/budget/internal/store"
)

// ListenerAppName is the application_name of the LISTEN connection, so an
// operator (or a test) can find it in pg_stat_activity.
const ListenerAppName = "spendledger-budget-cache"

// Run LISTENs for store changes on a dedicated connection made from cfg and
// applies them until ctx is done, reconnecting with backoff whenever the
// connection fails. It returns nil once ctx is done.
func (c *Cache) Run(ctx context.Context, cfg *pgx.ConnConfig) error {
	cfg = cfg.Copy()
	cfg.RuntimeParams["application_name"] = ListenerAppName
	// A deadline, not a cancel request, ends an idle wait: a cancel request
	// racing the ping that follows could cancel the ping instead.
	cfg.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.DeadlineContextWatcherHandler{Conn: pc.Conn()}
	}
	const minWait, maxWait = 100 * time.Millisecond, 5 * time.Second
	wait := minWait
	for {
		began := time.Now()
		err := c.listen(ctx, cfg)
		c.setListening(false)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(began) > time.Minute {
			wait = minWait // it was a session, not a failing dial: retry promptly
		}
		c.opts.Log.Warn("budget cache: LISTEN connection lost; reading through to Postgres until it is back",
			"err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, maxWait)
	}
}

// listen runs one LISTEN session; it always returns an error (ctx's when ctx
// ends).
func (c *Cache) listen(ctx context.Context, cfg *pgx.ConnConfig) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{store.Channel}.Sanitize()); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	c.setListening(true)
	c.opts.Log.Info("budget cache: listening for changes", "channel", store.Channel)
	for {
		wctx, cancel := context.WithTimeout(ctx, c.opts.PingEvery)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			c.applyPayload(n.Payload)
			c.sweep()
			continue
		case ctx.Err() != nil:
			return ctx.Err()
		case !timedOut(err):
			return fmt.Errorf("wait for notification: %w", err)
		}
		// Idle: prove the connection alive. A dead peer that never sent a
		// FIN would otherwise hide lost notifications until MaxAge.
		pctx, cancel := context.WithTimeout(ctx, c.opts.PingEvery)
		err = conn.Ping(pctx)
		cancel()
		if err != nil {
			return fmt.Errorf("ping: %w", err)
		}
		c.sweep()
	}
}

func (c *Cache) applyPayload(p string) {
	ch, err := store.ParseChange(p)
	if err != nil {
		// A payload this version cannot read (a newer writer?): dropping
		// everything is always safe.
		c.opts.Log.Warn("budget cache: unknown change; dropping every entry", "err", err)
		ch = store.Change{All: true}
	}
	c.Apply([]store.Change{ch})
}

func timedOut(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) || (errors.As(err, &ne) && ne.Timeout())
}
