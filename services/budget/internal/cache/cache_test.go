package cache

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spendledger/spendledger/ledger/money"
	"github.com/spendledger/spendledger/ledger/scope"
	"github.com/spendledger/spendledger/ledger/window"
	"github.com/spendledger/spendledger/services/budget/internal/store"
	"github.com/spendledger/spendledger/services/budget/internal/store/memstore"
)

// counting counts the reads that reach the store, and can run a hook in the
// middle of one (to race an invalidation against a fill).
type counting struct {
	*memstore.Store
	budgetReads, keyReads atomic.Int64
	principalReads        atomic.Int64
	during                func()
}

func (c *counting) BudgetsFor(ctx context.Context, s []scope.Scope) ([]store.Budget, error) {
	c.budgetReads.Add(1)
	bs, err := c.Store.BudgetsFor(ctx, s)
	if c.during != nil {
		c.during()
	}
	return bs, err
}

func (c *counting) GetPrincipal(ctx context.Context, k scope.Kind, id string) (store.Principal, error) {
	c.principalReads.Add(1)
	return c.Store.GetPrincipal(ctx, k, id)
}

func (c *counting) KeyByHash(ctx context.Context, h string) (store.AuthKey, error) {
	c.keyReads.Add(1)
	return c.Store.KeyByHash(ctx, h)
}

type clock struct{ t atomic.Pointer[time.Time] }

func (c *clock) now() time.Time      { return *c.t.Load() }
func (c *clock) set(t time.Time)     { c.t.Store(&t) }
func (c *clock) add(d time.Duration) { c.set(c.now().Add(d)) }

type env struct {
	src   *counting
	cache *Cache
	clock *clock
}

// newEnv is a cache over a memstore, listening (as if LISTEN were up), with
// the store's writes applied like store.PG.OnChange does.
func newEnv(t *testing.T) *env {
	t.Helper()
	clk := &clock{}
	clk.set(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	src := &counting{Store: memstore.New()}
	c := New(src, Options{MaxAge: 30 * time.Second, Now: clk.now})
	src.OnChange(c.Apply)
	c.setListening(true)
	return &env{src: src, cache: c, clock: clk}
}

var (
	ctx      = context.Background()
	tagA     = scope.Scope{Kind: scope.KindTag, ID: "a"}
	provider = scope.Scope{Kind: scope.KindProvider, ID: "openai"}
)

func (e *env) set(t *testing.T, s scope.Scope, dollars int64) store.Budget {
	t.Helper()
	b, err := e.src.SetBudget(ctx, store.BudgetInput{Scope: s, Limit: money.Nanos(dollars) * money.PerDollar, Duration: window.MustParse("1d")})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (e *env) limits(t *testing.T, scopes ...scope.Scope) []int64 {
	t.Helper()
	bs, err := e.cache.BudgetsFor(ctx, scopes)
	if err != nil {
		t.Fatal(err)
	}
	var out []int64
	for _, b := range bs {
		out = append(out, int64(b.Limit/money.PerDollar))
	}
	return out
}

func TestBudgetsAreCachedIncludingNone(t *testing.T) {
	e := newEnv(t)
	e.set(t, provider, 7)
	for range 3 {
		if got := e.limits(t, provider, tagA); !slices.Equal(got, []int64{7}) {
			t.Fatalf("limits %v; want [7]", got)
		}
	}
	if n := e.src.budgetReads.Load(); n != 1 {
		t.Fatalf("%d store reads for 3 lookups; want 1 (the empty team scope cached too)", n)
	}
}

func TestAWriteIsVisibleAtOnce(t *testing.T) {
	e := newEnv(t)
	e.set(t, provider, 7)
	e.limits(t, provider)
	e.set(t, provider, 9) // raised limit
	if got := e.limits(t, provider); !slices.Equal(got, []int64{9}) {
		t.Fatalf("after raising: %v; want [9]", got)
	}
}

func TestNothingIsCachedWhileNotListening(t *testing.T) {
	e := newEnv(t)
	e.cache.setListening(false)
	e.set(t, provider, 7)
	e.limits(t, provider)
	e.limits(t, provider)
	if n := e.src.budgetReads.Load(); n != 2 {
		t.Fatalf("%d store reads; want every lookup to read through while LISTEN is down", n)
	}
}

func TestAFillRacingAnInvalidationIsNotKept(t *testing.T) {
	e := newEnv(t)
	e.set(t, provider, 7)
	// While the cache reads (old value), another instance raises the limit;
	// its notification arrives before the fill stores.
	e.src.during = func() {
		e.src.during = nil
		e.set(t, provider, 9)
	}
	if got := e.limits(t, provider); !slices.Equal(got, []int64{7}) {
		t.Fatalf("racing read: %v; want the value it read, [7]", got)
	}
	if got := e.limits(t, provider); !slices.Equal(got, []int64{9}) {
		t.Fatalf("next read: %v; want [9], not the stale fill", got)
	}
}

func TestEntriesExpireAfterMaxAge(t *testing.T) {
	e := newEnv(t)
	e.limits(t, provider)
	e.clock.add(29 * time.Second)
	e.limits(t, provider)
	if n := e.src.budgetReads.Load(); n != 1 {
		t.Fatalf("%d reads within MaxAge; want 1", n)
	}
	e.clock.add(time.Second)
	e.limits(t, provider)
	if n := e.src.budgetReads.Load(); n != 2 {
		t.Fatalf("%d reads after MaxAge; want a re-read", n)
	}
}

func TestKeyChangeDropsKeyAndKeyModelBudgets(t *testing.T) {
	e := newEnv(t)
	key := scope.Scope{Kind: scope.KindKey, ID: "k"}
	km := scope.Scope{Kind: scope.KindKeyModel, ID: "k", ModelGroup: "gpt-4o"}
	e.limits(t, key, km, provider)
	e.cache.Apply([]store.Change{store.KeyChange("k")})
	e.limits(t, provider) // still cached
	if n := e.src.budgetReads.Load(); n != 1 {
		t.Fatalf("provider scope re-read after an unrelated key change")
	}
	e.limits(t, km)
	if n := e.src.budgetReads.Load(); n != 2 {
		t.Fatalf("key_model scope not dropped by its key's change")
	}
}

func TestScopeChangeDropsEveryModelGroupOfTheOwner(t *testing.T) {
	e := newEnv(t)
	a := scope.Scope{Kind: scope.KindEndUserModel, ID: "cust", ModelGroup: "a"}
	b := scope.Scope{Kind: scope.KindEndUserModel, ID: "cust", ModelGroup: "b"}
	e.limits(t, a, b)
	e.cache.Apply([]store.Change{store.ScopeChange(scope.KindEndUserModel, "cust")})
	e.limits(t, a, b)
	if n := e.src.budgetReads.Load(); n != 2 {
		t.Fatalf("%d reads; want both model groups dropped and re-read in one query", n)
	}
}

func TestKeysAreCachedAndDroppedOnKeyOrTeamChange(t *testing.T) {
	e := newEnv(t)
	if _, _, err := e.src.CreatePrincipal(ctx, store.Principal{Kind: scope.KindTeam, ID: "t"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.src.CreateKey(ctx, store.NewKey{Key: store.Key{ID: "k", TeamID: "t"}, Hash: "h"}, nil); err != nil {
		t.Fatal(err)
	}
	get := func() store.AuthKey {
		t.Helper()
		k, err := e.cache.KeyByHash(ctx, "h")
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	get()
	get()
	if n := e.src.keyReads.Load(); n != 1 {
		t.Fatalf("%d key reads; want 1", n)
	}
	if _, err := e.src.UpdatePrincipal(ctx, scope.KindTeam, "t", func(p *store.Principal) error { p.Blocked = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if !get().TeamBlocked {
		t.Fatal("blocking the team did not reach the cached key")
	}
	if _, err := e.src.UpdateKey(ctx, "k", func(k *store.Key) error { k.Blocked = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if !get().Blocked {
		t.Fatal("blocking the key did not reach the cache")
	}
	if k, err := e.cache.KeyByID(ctx, "k"); err != nil || !k.Blocked {
		t.Fatalf("by id: %v, %v", k, err)
	}
}

func TestUnknownKeysAreNotCached(t *testing.T) {
	e := newEnv(t)
	if _, err := e.cache.KeyByHash(ctx, "h"); err == nil {
		t.Fatal("want not found")
	}
	if _, _, err := e.src.CreateKey(ctx, store.NewKey{Key: store.Key{ID: "k"}, Hash: "h"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cache.KeyByHash(ctx, "h"); err != nil {
		t.Fatalf("a key created after a miss must authenticate at once: %v", err)
	}
}

func TestUnknownPayloadDropsEverything(t *testing.T) {
	e := newEnv(t)
	e.limits(t, provider)
	e.cache.applyPayload("from-the-future:xyz")
	e.limits(t, provider)
	if n := e.src.budgetReads.Load(); n != 2 {
		t.Fatal("an unreadable notification must drop everything")
	}
}

func TestOrderAndDuplicatesMatchTheStore(t *testing.T) {
	e := newEnv(t)
	e.set(t, provider, 1)
	e.set(t, tagA, 2)
	scopes := []scope.Scope{tagA, provider, tagA}
	want, _ := e.src.Store.BudgetsFor(ctx, scopes)
	for range 2 { // miss, then hit
		got, err := e.cache.BudgetsFor(ctx, scopes)
		if err != nil || len(got) != len(want) {
			t.Fatalf("got %d budgets (%v); want %d", len(got), err, len(want))
		}
		for i := range got {
			if got[i].ID != want[i].ID {
				t.Fatalf("order differs at %d: %s vs %s", i, got[i].ID, want[i].ID)
			}
		}
	}
}

func TestMaxEntriesBoundsTheCache(t *testing.T) {
	e := newEnv(t)
	e.cache.opts.MaxEntries = 4
	for i := range 10 {
		e.limits(t, scope.Scope{Kind: scope.KindTag, ID: string(rune('a' + i))})
	}
	if e.cache.nBudgets > 4 {
		t.Fatalf("%d entries; want at most 4", e.cache.nBudgets)
	}
}
