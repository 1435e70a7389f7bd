package budget

import (
	"context"
	"errors"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
)

// Cached is a Service whose Authenticate answers are kept for a short TTL.
// Only definite answers are cached: a key, or "invalid key" (for a shorter
// negative TTL, so a flood of bad keys does not reach the budget service but a
// key created a moment ago works almost at once). An unavailable budget service
// is never cached. Blocking or deleting a key takes effect within the TTL.
type Cached struct {
	Service
	ttl, negTTL time.Duration
	now         func() time.Time

	mu sync.RWMutex
	m  map[string]cacheEntry
	// sf collapses concurrent misses for one key into one RPC, so a burst on a
	// fresh or just-expired key does not stampede the budget service.
	sf singleflight.Group
}

type cacheEntry struct {
	key     *budgetv1.Key
	err     error
	expires time.Time
}

// maxCacheEntries bounds the cache; past it, expired entries are swept and,
// if still full, the cache starts over.
const maxCacheEntries = 100_000

// authTimeout bounds one Authenticate RPC.
const authTimeout = 5 * time.Second

// NewCached wraps s.
func NewCached(s Service, ttl, negTTL time.Duration) *Cached {
	return &Cached{Service: s, ttl: ttl, negTTL: negTTL, now: time.Now, m: map[string]cacheEntry{}}
}

// Authenticate implements Service.
func (c *Cached) Authenticate(ctx context.Context, keyHash string) (*budgetv1.Key, error) {
	now := c.now()
	c.mu.RLock()
	e, ok := c.m[keyHash]
	c.mu.RUnlock()
	if ok && now.Before(e.expires) {
		return e.key, e.err
	}
	v, err, _ := c.sf.Do(keyHash, func() (any, error) {
		// Detached from one caller's cancellation: the answer serves them all.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), authTimeout)
		defer cancel()
		key, err := c.Service.Authenticate(actx, keyHash)
		var be *Error
		switch {
		case err == nil:
			c.put(keyHash, cacheEntry{key: key, expires: now.Add(c.ttl)})
		case errors.As(err, &be) && be.Kind == KindInvalidKey:
			c.put(keyHash, cacheEntry{err: err, expires: now.Add(c.negTTL)})
		}
		return key, err
	})
	key, _ := v.(*budgetv1.Key)
	return key, err
}

func (c *Cached) put(k string, e cacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxCacheEntries {
		now := c.now()
		for k, v := range c.m {
			if !now.Before(v.expires) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= maxCacheEntries {
			clear(c.m)
		}
	}
	c.m[k] = e
}
