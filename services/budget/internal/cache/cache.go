// Package cache keeps the budget service's per-request reads in memory:
// budgets by scope (BudgetsFor, which admission calls for every request),
// keys by hash and by id (Authenticate, and admission's key lookup), and
// whether the request's end user and tags are blocked (Blocked).
//
// # Staying correct across instances
//
// Every write to the store announces what it changed with NOTIFY in its own
// transaction (see store.Change); Run LISTENs on a dedicated connection and
// drops the affected entries the moment Postgres delivers the notification,
// which is right after the writer's commit. So a raised limit or a blocked key
// takes effect on every instance within the notification's latency, not
// within a TTL; so does a blocked end user or tag, since blocking is a
// principal write like any other. This instance's own writes are also
// applied locally through store.PG.OnChange, so it reads its own writes at
// once.
//
// Three rules keep a lost notification from becoming a stale budget:
//
//   - Entries are stored only while the LISTEN connection is up. Until it is,
//     and from the moment it fails, every read goes to Postgres, and (re)
//     connecting drops everything, since changes made while nobody listened
//     were never heard.
//   - A fill stores its result only if no invalidation happened since it
//     started reading (a generation counter). Otherwise a read that raced a
//     write could store the pre-write value after the notification dropped
//     the entry, and keep it until the max age.
//   - Every entry expires after MaxAge (default 30s): the safety net for a
//     notification lost in a way the connection did not report (a half-open
//     TCP connection is probed with a ping after each idle PingEvery).
//
// Errors are never cached, and neither is "no such key": a key created a
// moment ago must authenticate at once (the gateway caches negatives itself).
// "No budget on this scope" is cached, since most scopes have none.
package cache

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/spendledger/spendledger/ledger/scope"
	"github.com/spendledger/spendledger/services/budget/internal/store"
)

// Source is where the cache reads on a miss; *store.PG implements it.
type Source interface {
	BudgetsFor(ctx context.Context, scopes []scope.Scope) ([]store.Budget, error)
	KeyByHash(ctx context.Context, hash string) (store.AuthKey, error)
	KeyByID(ctx context.Context, id string) (store.AuthKey, error)
	// GetPrincipal reads a principal; ErrNotFound when it has no row.
	GetPrincipal(ctx context.Context, kind scope.Kind, id string) (store.Principal, error)
}

// Options tune a Cache; zero values take the defaults.
type Options struct {
	// MaxAge bounds how long an entry is served without a re-read. Default 30s.
	MaxAge time.Duration
	// MaxEntries bounds each of the budget and key maps; a full map is swept
	// of expired entries and, if still full, emptied. Default 100,000.
	MaxEntries int
	// PingEvery is how long the listener waits idle before proving its
	// connection alive. Default 5s.
	PingEvery time.Duration
	Log       *slog.Logger
	Now       func() time.Time
	Metrics   *Metrics
}

// Cache is safe for concurrent use. The zero value is not usable; call New.
type Cache struct {
	src  Source
	opts Options

	mu        sync.RWMutex
	gen       uint64 // bumped by every invalidation
	listening bool   // entries are stored only while true
	budgets   map[owner]map[string]budgetEntry
	nBudgets  int
	keys      map[string]keyEntry // by key id
	byHash    map[string]string   // key hash -> key id
	// principals holds whether end users and tags are blocked (Blocked);
	// teams, users and orgs are part of their keys' AuthKey instead.
	principals map[owner]principalEntry
	lastSweep  time.Time
}

// owner groups a scope's entries by (kind, id), so a change to an owner drops
// every model group of it in one step.
type owner struct {
	kind scope.Kind
	id   string
}

type budgetEntry struct {
	budgets []store.Budget
	at      time.Time
}

type keyEntry struct {
	key store.AuthKey
	at  time.Time
}

// New returns a cache over src. It serves every read from src until Run has
// its LISTEN in place.
func New(src Source, opts Options) *Cache {
	if opts.MaxAge <= 0 {
		opts.MaxAge = 30 * time.Second
	}
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = 100_000
	}
	if opts.PingEvery <= 0 {
		opts.PingEvery = 5 * time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &Cache{src: src, opts: opts}
	c.resetLocked()
	return c
}

func (c *Cache) fresh(at, now time.Time) bool { return now.Sub(at) < c.opts.MaxAge }

// BudgetsFor returns every budget on any of scopes, ordered by scope as given
// and then by budget id, like store.Store.BudgetsFor. The returned budgets are
// shared: callers must not modify them.
func (c *Cache) BudgetsFor(ctx context.Context, scopes []scope.Scope) ([]store.Budget, error) {
	now := c.opts.Now()
	if out, ok := c.cachedBudgets(scopes, now); ok {
		c.opts.Metrics.lookup("budgets", len(scopes), 0)
		return out, nil
	}
	found := make(map[scope.Scope][]store.Budget, len(scopes))
	var missing []scope.Scope

	c.mu.RLock()
	gen := c.gen
	for _, s := range scopes {
		if _, seen := found[s]; seen {
			continue
		}
		if e, ok := c.budgets[owner{s.Kind, s.ID}][s.ModelGroup]; ok && c.fresh(e.at, now) {
			found[s] = e.budgets
			continue
		}
		found[s] = nil
		missing = append(missing, s)
	}
	c.mu.RUnlock()
	c.opts.Metrics.lookup("budgets", len(scopes)-len(missing), len(missing))

	if len(missing) > 0 {
		loaded, err := c.src.BudgetsFor(ctx, missing)
		if err != nil {
			return nil, err
		}
		for _, b := range loaded {
			found[b.Scope] = append(found[b.Scope], b)
		}
		c.storeBudgets(gen, now, missing, found)
	}

	var out []store.Budget
	for i, s := range scopes {
		if dup(scopes[:i], s) {
			continue
		}
		out = append(out, found[s]...)
	}
	return out, nil
}

// cachedBudgets answers BudgetsFor from memory when every scope is cached
// and fresh, which is nearly every request's case, without the bookkeeping
// a miss needs.
func (c *Cache) cachedBudgets(scopes []scope.Scope, now time.Time) ([]store.Budget, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]store.Budget, 0, len(scopes))
	for i, s := range scopes {
		if dup(scopes[:i], s) {
			continue
		}
		e, ok := c.budgets[owner{s.Kind, s.ID}][s.ModelGroup]
		if !ok || !c.fresh(e.at, now) {
			return nil, false
		}
		out = append(out, e.budgets...)
	}
	return out, true
}

// dup reports whether s occurs in prev (scope lists are short: one request's).
func dup(prev []scope.Scope, s scope.Scope) bool {
	for _, p := range prev {
		if p == s {
			return true
		}
	}
	return false
}

func (c *Cache) storeBudgets(gen uint64, now time.Time, scopes []scope.Scope, found map[scope.Scope][]store.Budget) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen || !c.listening {
		return // an invalidation raced the read: serve it, but do not keep it
	}
	if c.nBudgets+len(scopes) > c.opts.MaxEntries {
		c.sweepLocked(now)
		if c.nBudgets+len(scopes) > c.opts.MaxEntries {
			c.budgets, c.nBudgets = map[owner]map[string]budgetEntry{}, 0
		}
	}
	for _, s := range scopes {
		o := owner{s.Kind, s.ID}
		m := c.budgets[o]
		if m == nil {
			m = map[string]budgetEntry{}
			c.budgets[o] = m
		}
		if _, ok := m[s.ModelGroup]; !ok {
			c.nBudgets++
		}
		m[s.ModelGroup] = budgetEntry{budgets: found[s], at: now}
	}
}

// KeyByHash returns the key whose clear text hashes to hash.
func (c *Cache) KeyByHash(ctx context.Context, hash string) (store.AuthKey, error) {
	return c.key(ctx, func() (keyEntry, bool) {
		e, ok := c.keys[c.byHash[hash]]
		return e, ok && e.key.Hash == hash
	}, func() (store.AuthKey, error) { return c.src.KeyByHash(ctx, hash) })
}

// KeyByID returns the key with id.
func (c *Cache) KeyByID(ctx context.Context, id string) (store.AuthKey, error) {
	return c.key(ctx, func() (keyEntry, bool) {
		e, ok := c.keys[id]
		return e, ok
	}, func() (store.AuthKey, error) { return c.src.KeyByID(ctx, id) })
}

func (c *Cache) key(_ context.Context, lookup func() (keyEntry, bool), load func() (store.AuthKey, error)) (store.AuthKey, error) {
	now := c.opts.Now()
	c.mu.RLock()
	gen := c.gen
	e, ok := lookup()
	c.mu.RUnlock()
	if ok && c.fresh(e.at, now) {
		c.opts.Metrics.lookup("keys", 1, 0)
		return e.key, nil
	}
	c.opts.Metrics.lookup("keys", 0, 1)
	k, err := load()
	if err != nil {
		return store.AuthKey{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen == gen && c.listening {
		if len(c.keys) >= c.opts.MaxEntries {
			c.sweepLocked(now)
			if len(c.keys) >= c.opts.MaxEntries {
				c.keys, c.byHash = map[string]keyEntry{}, map[string]string{}
			}
		}
		c.keys[k.ID] = keyEntry{key: k, at: now}
		c.byHash[k.Hash] = k.ID
	}
	return k, nil
}

// Apply drops every entry the changes may have made stale. The listener calls
// it for each notification; store.PG.OnChange for this instance's writes.
func (c *Cache) Apply(changes []store.Change) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, ch := range changes {
		c.opts.Metrics.invalidated()
		switch {
		case ch.All:
			c.resetLocked()
			return
		case ch.KeyID != "":
			c.dropKeyLocked(ch.KeyID)
			c.dropOwnerLocked(owner{scope.KindKey, ch.KeyID})
			c.dropOwnerLocked(owner{scope.KindKeyModel, ch.KeyID})
		default:
			c.dropOwnerLocked(owner{ch.Kind, ch.ID})
			delete(c.principals, owner{ch.Kind, ch.ID})
			c.dropKeysOfPrincipalLocked(ch.Kind, ch.ID)
		}
	}
}

// Reset drops everything.
func (c *Cache) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.resetLocked()
}

func (c *Cache) resetLocked() {
	c.gen++
	c.budgets, c.nBudgets = map[owner]map[string]budgetEntry{}, 0
	c.keys, c.byHash = map[string]keyEntry{}, map[string]string{}
	c.principals = map[owner]principalEntry{}
}

func (c *Cache) dropOwnerLocked(o owner) {
	c.nBudgets -= len(c.budgets[o])
	delete(c.budgets, o)
}

func (c *Cache) dropKeyLocked(id string) {
	if e, ok := c.keys[id]; ok {
		delete(c.byHash, e.key.Hash)
		delete(c.keys, id)
	}
}

// dropKeysOfPrincipalLocked drops the keys of a team, user or org, whose
// blocked flag is part of every cached key of it. Principal changes are rare
// next to reads, so a scan beats keeping a second index in step.
func (c *Cache) dropKeysOfPrincipalLocked(k scope.Kind, id string) {
	if k != scope.KindTeam && k != scope.KindUser && k != scope.KindOrg {
		return
	}
	for kid, e := range c.keys {
		if (k == scope.KindTeam && e.key.TeamID == id) || (k == scope.KindUser && e.key.UserID == id) ||
			(k == scope.KindOrg && e.key.OrgID == id) {
			c.dropKeyLocked(kid)
		}
	}
}

// sweepLocked removes expired entries, so memory follows the working set.
func (c *Cache) sweepLocked(now time.Time) {
	c.lastSweep = now
	for o, m := range c.budgets {
		for mg, e := range m {
			if !c.fresh(e.at, now) {
				delete(m, mg)
				c.nBudgets--
			}
		}
		if len(m) == 0 {
			delete(c.budgets, o)
		}
	}
	for id, e := range c.keys {
		if !c.fresh(e.at, now) {
			c.dropKeyLocked(id)
		}
	}
	for o, e := range c.principals {
		if !c.fresh(e.at, now) {
			delete(c.principals, o)
		}
	}
}

// sweep runs sweepLocked at most once per MaxAge.
func (c *Cache) sweep() {
	now := c.opts.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Sub(c.lastSweep) >= c.opts.MaxAge {
		c.sweepLocked(now)
	}
}

// setListening records whether notifications are being heard. Either way it
// drops everything: when LISTEN starts, changes made before it were never
// heard; when it stops, the entries can no longer be trusted.
func (c *Cache) setListening(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.listening = on
	c.resetLocked()
	c.opts.Metrics.setListening(on)
}

// Listening reports whether the LISTEN connection is up (and so whether reads
// are being cached at all).
func (c *Cache) Listening() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.listening
}
