package cache

import (
	"context"
	"errors"
	"time"

	"github.com/spendledger/spendledger/ledger/scope"
	"github.com/spendledger/spendledger/services/budget/internal/store"
)

// principalEntry is whether a principal is blocked. A principal with no row
// is cached as not blocked: end users and tags are named freely by requests,
// most never get a row, and creating one announces it (store.Change) like
// any other write, so the entry is dropped the moment it could be wrong.
type principalEntry struct {
	blocked bool
	at      time.Time
}

// Blocked returns the first of principals (in the order given) that is
// blocked, and ok false if none is. Admission asks it for the request's end
// user and tags on every request, so it is a map lookup once warm; blocking
// or unblocking is a principal write, which every instance hears through
// LISTEN and applies by dropping the entry.
func (c *Cache) Blocked(ctx context.Context, principals []scope.Scope) (blocked scope.Scope, ok bool, err error) {
	now := c.opts.Now()
	var missing []scope.Scope
	c.mu.RLock()
	gen := c.gen
	for _, p := range principals {
		e, hit := c.principals[owner{p.Kind, p.ID}]
		switch {
		case !hit || !c.fresh(e.at, now):
			missing = append(missing, p)
		case e.blocked && !ok:
			blocked, ok = p, true
		}
	}
	c.mu.RUnlock()
	c.opts.Metrics.lookup("principals", len(principals)-len(missing), len(missing))
	if len(missing) == 0 {
		return blocked, ok, nil
	}

	loaded := make(map[owner]bool, len(missing))
	for _, p := range missing {
		o := owner{p.Kind, p.ID}
		if _, done := loaded[o]; done {
			continue
		}
		row, err := c.src.GetPrincipal(ctx, p.Kind, p.ID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return scope.Scope{}, false, err
		}
		loaded[o] = err == nil && row.Blocked
	}
	c.storePrincipals(gen, now, loaded)

	// Answer in the order given, mixing cached and loaded flags.
	for _, p := range principals {
		o := owner{p.Kind, p.ID}
		b, fromLoad := loaded[o]
		if !fromLoad {
			b = blocked == p && ok
		}
		if b {
			return p, true, nil
		}
	}
	return scope.Scope{}, false, nil
}

func (c *Cache) storePrincipals(gen uint64, now time.Time, loaded map[owner]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen || !c.listening {
		return // an invalidation raced the read: serve it, but do not keep it
	}
	if len(c.principals)+len(loaded) > c.opts.MaxEntries {
		c.sweepLocked(now)
		if len(c.principals)+len(loaded) > c.opts.MaxEntries {
			c.principals = map[owner]principalEntry{}
		}
	}
	for o, b := range loaded {
		c.principals[o] = principalEntry{blocked: b, at: now}
	}
}
