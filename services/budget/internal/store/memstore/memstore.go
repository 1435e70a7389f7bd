// Package memstore is an in-memory store.Store for unit tests of the API, the
// cache and admission. It keeps the same invariants as the Postgres store
// (uniqueness, references, cascades, ordering; see store/README.md) and
// returns the same sentinel errors, so a test against it says something
// about the real thing. It does not persist and does not notify other
// instances; OnChange reports its writes like store.PG's.
package memstore

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/spendledger/spendledger/ledger/scope"
	"github.com/spendledger/spendledger/services/budget/internal/store"
)

// Store is safe for concurrent use.
type Store struct {
	mu         sync.Mutex
	keys       map[string]store.NewKey // by id
	principals map[pkey]store.Principal
	budgets    map[string]store.Budget // by id
	onChange   func([]store.Change)
	// Now is the clock for timestamps and anchors.
	Now func() time.Time
	// Err, when set, is returned by every method: a store that is down.
	Err error
}

type pkey struct {
	kind scope.Kind
	id   string
}

var _ store.Store = (*Store)(nil)

// New returns an empty Store.
func New() *Store {
	return &Store{keys: map[string]store.NewKey{}, principals: map[pkey]store.Principal{},
		budgets: map[string]store.Budget{}, Now: time.Now}
}

// OnChange is store.PG.OnChange.
func (s *Store) OnChange(f func([]store.Change)) { s.mu.Lock(); s.onChange = f; s.mu.Unlock() }

func (s *Store) now() time.Time { return s.Now().UTC() }

// write runs fn on a copy of the state and keeps it only if fn succeeds, so
// a failed call changes nothing (a transaction's all-or-nothing).
func (s *Store) write(fn func(w *state) error) error {
	s.mu.Lock()
	if s.Err != nil {
		s.mu.Unlock()
		return s.Err
	}
	w := &state{s: s, keys: maps.Clone(s.keys), principals: maps.Clone(s.principals), budgets: maps.Clone(s.budgets)}
	if err := fn(w); err != nil {
		s.mu.Unlock()
		return err
	}
	s.keys, s.principals, s.budgets = w.keys, w.principals, w.budgets
	hook := s.onChange
	s.mu.Unlock()
	if hook != nil {
		hook(w.changes)
	}
	return nil
}

type state struct {
	s          *Store
	keys       map[string]store.NewKey
	principals map[pkey]store.Principal
	budgets    map[string]store.Budget
	changes    []store.Change
}

func (w *state) changed(c ...store.Change) { w.changes = append(w.changes, c...) }

func notFound(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, store.ErrNotFound)...)
}

func (w *state) ensureImplicit(kind scope.Kind, id string) {
	if id == "" || !store.ImplicitKind(kind) {
		return
	}
	if _, ok := w.principals[pkey{kind, id}]; !ok {
		now := w.s.now()
		w.principals[pkey{kind, id}] = store.Principal{Kind: kind, ID: id, Metadata: map[string]string{}, CreatedAt: now, UpdatedAt: now}
	}
}

// checkRef fails like a foreign key when a referenced principal is missing.
func (w *state) checkRef(kind scope.Kind, id string) error {
	if id == "" {
		return nil
	}
	if _, ok := w.principals[pkey{kind, id}]; !ok {
		return fmt.Errorf("%v %q does not exist: %w", kind, id, store.ErrFailedPrecondition)
	}
	return nil
}

func (w *state) checkKey(k store.NewKey, self string) error {
	for id, o := range w.keys {
		switch {
		case id == self:
		case o.Hash == k.Hash:
			return fmt.Errorf("a key with this clear key already exists: %w", store.ErrAlreadyExists)
		case k.Alias != "" && o.Alias == k.Alias:
			return fmt.Errorf("key_alias is taken: %w", store.ErrAlreadyExists)
		}
	}
	w.ensureImplicit(scope.KindUser, k.UserID)
	for _, r := range []pkey{{scope.KindTeam, k.TeamID}, {scope.KindUser, k.UserID}, {scope.KindOrg, k.OrgID}} {
		if err := w.checkRef(r.kind, r.id); err != nil {
			return err
		}
	}
	return nil
}

func cloneKey(k store.Key) store.Key {
	k.Models, k.Tags, k.Metadata = slices.Clone(k.Models), slices.Clone(k.Tags), maps.Clone(k.Metadata)
	if k.Models == nil {
		k.Models = []string{}
	}
	if k.Tags == nil {
		k.Tags = []string{}
	}
	if k.Metadata == nil {
		k.Metadata = map[string]string{}
	}
	return k
}

// CreateKey implements store.Store.
func (s *Store) CreateKey(_ context.Context, nk store.NewKey, budgets []store.BudgetInput) (store.Key, []store.Budget, error) {
	var created []store.Budget
	var out store.Key
	err := s.write(func(w *state) error {
		if _, ok := w.keys[nk.ID]; ok {
			return fmt.Errorf("key_id is taken: %w", store.ErrAlreadyExists)
		}
		if err := w.checkKey(nk, nk.ID); err != nil {
			return err
		}
		now := s.now()
		nk.Key = cloneKey(nk.Key)
		nk.CreatedAt, nk.UpdatedAt = now, now
		w.keys[nk.ID] = nk
		out = cloneKey(nk.Key)
		w.changed(store.KeyChange(nk.ID))
		for _, in := range budgets {
			b, err := w.setBudget(in)
			if err != nil {
				return err
			}
			created = append(created, b)
		}
		return nil
	})
	if err != nil {
		return store.Key{}, nil, err
	}
	return out, created, nil
}

func (s *Store) read(fn func()) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return s.Err
	}
	fn()
	return nil
}

// GetKey implements store.Store.
func (s *Store) GetKey(ctx context.Context, id string) (store.Key, error) {
	a, err := s.KeyByID(ctx, id)
	return a.Key, err
}

func (s *Store) authKey(match func(store.NewKey) bool) (store.AuthKey, error) {
	var out store.AuthKey
	found := false
	err := s.read(func() {
		for _, k := range s.keys {
			if match(k) {
				found = true
				out = store.AuthKey{Key: cloneKey(k.Key), Hash: k.Hash,
					TeamBlocked: s.principals[pkey{scope.KindTeam, k.TeamID}].Blocked,
					UserBlocked: s.principals[pkey{scope.KindUser, k.UserID}].Blocked,
					OrgBlocked:  s.principals[pkey{scope.KindOrg, k.OrgID}].Blocked}
				return
			}
		}
	})
	if err == nil && !found {
		err = notFound("key")
	}
	return out, err
}

// KeyByHash implements store.Store.
func (s *Store) KeyByHash(_ context.Context, hash string) (store.AuthKey, error) {
	return s.authKey(func(k store.NewKey) bool { return k.Hash == hash })
}

// KeyByID implements store.Store.
func (s *Store) KeyByID(_ context.Context, id string) (store.AuthKey, error) {
	a, err := s.authKey(func(k store.NewKey) bool { return k.ID == id })
	if err != nil {
		return a, fmt.Errorf("key %q: %w", id, err)
	}
	return a, nil
}

// UpdateKey implements store.Store.
func (s *Store) UpdateKey(_ context.Context, id string, update func(*store.Key) error) (store.Key, error) {
	var out store.Key
	err := s.write(func(w *state) error {
		nk, ok := w.keys[id]
		if !ok {
			return notFound("key %q", id)
		}
		k := cloneKey(nk.Key)
		if err := update(&k); err != nil {
			return err
		}
		k.ID, k.AliasHint, k.CreatedAt, k.UpdatedAt = nk.ID, nk.AliasHint, nk.CreatedAt, s.now()
		next := store.NewKey{Key: cloneKey(k), Hash: nk.Hash}
		if err := w.checkKey(next, id); err != nil {
			return err
		}
		w.keys[id] = next
		out = cloneKey(k)
		w.changed(store.KeyChange(id))
		return nil
	})
	return out, err
}

// DeleteKey implements store.Store.
func (s *Store) DeleteKey(_ context.Context, id string) error {
	return s.write(func(w *state) error {
		if _, ok := w.keys[id]; !ok {
			return notFound("key %q", id)
		}
		delete(w.keys, id)
		w.cascade(scope.KindKey, id)
		w.changed(store.KeyChange(id))
		return nil
	})
}

// cascade deletes the budgets owned by (kind, id).
func (w *state) cascade(kind scope.Kind, id string) {
	for bid, b := range w.budgets {
		if k, oid, ok := store.Owner(b.Scope); ok && k == kind && oid == id {
			delete(w.budgets, bid)
		}
	}
}

// ListKeys implements store.Store.
func (s *Store) ListKeys(_ context.Context, f store.KeyFilter, p store.Page) ([]store.Key, error) {
	var out []store.Key
	err := s.read(func() {
		for _, k := range s.keys {
			if (f.TeamID == "" || k.TeamID == f.TeamID) && (f.UserID == "" || k.UserID == f.UserID) &&
				(len(p.After) == 0 || k.ID > p.After[0]) {
				out = append(out, cloneKey(k.Key))
			}
		}
	})
	slices.SortFunc(out, func(a, b store.Key) int { return cmp.Compare(a.ID, b.ID) })
	return truncate(out, p.Limit), err
}

func truncate[T any](v []T, n int) []T {
	if n > 0 && len(v) > n {
		return v[:n]
	}
	return v
}

func clonePrincipal(p store.Principal) store.Principal {
	p.Metadata = maps.Clone(p.Metadata)
	if p.Metadata == nil {
		p.Metadata = map[string]string{}
	}
	return p
}

func principalChanges(kind scope.Kind, id string) []store.Change {
	cs := []store.Change{store.ScopeChange(kind, id)}
	if kind == scope.KindEndUser {
		cs = append(cs, store.ScopeChange(scope.KindEndUserModel, id))
	}
	return cs
}

// CreatePrincipal implements store.Store.
func (s *Store) CreatePrincipal(_ context.Context, p store.Principal, budgets []store.BudgetInput) (store.Principal, []store.Budget, error) {
	var created []store.Budget
	var out store.Principal
	err := s.write(func(w *state) error {
		if _, ok := w.principals[pkey{p.Kind, p.ID}]; ok {
			return fmt.Errorf("%v %q: principal already exists: %w", p.Kind, p.ID, store.ErrAlreadyExists)
		}
		if err := w.checkRef(scope.KindOrg, p.OrgID); err != nil {
			return err
		}
		now := s.now()
		p = clonePrincipal(p)
		p.CreatedAt, p.UpdatedAt = now, now
		w.principals[pkey{p.Kind, p.ID}] = p
		out = clonePrincipal(p)
		w.changed(principalChanges(p.Kind, p.ID)...)
		for _, in := range budgets {
			b, err := w.setBudget(in)
			if err != nil {
				return err
			}
			created = append(created, b)
		}
		return nil
	})
	if err != nil {
		return store.Principal{}, nil, err
	}
	return out, created, nil
}

// GetPrincipal implements store.Store.
func (s *Store) GetPrincipal(_ context.Context, kind scope.Kind, id string) (store.Principal, error) {
	var out store.Principal
	var ok bool
	err := s.read(func() {
		var p store.Principal
		if p, ok = s.principals[pkey{kind, id}]; ok {
			out = clonePrincipal(p)
		}
	})
	if err == nil && !ok {
		err = notFound("%v %q", kind, id)
	}
	return out, err
}

// UpdatePrincipal implements store.Store.
func (s *Store) UpdatePrincipal(_ context.Context, kind scope.Kind, id string, update func(*store.Principal) error) (store.Principal, error) {
	var out store.Principal
	err := s.write(func(w *state) error {
		old, ok := w.principals[pkey{kind, id}]
		if !ok {
			return notFound("%v %q", kind, id)
		}
		p := clonePrincipal(old)
		if err := update(&p); err != nil {
			return err
		}
		p.Kind, p.ID, p.CreatedAt, p.UpdatedAt = old.Kind, old.ID, old.CreatedAt, s.now()
		if err := w.checkRef(scope.KindOrg, p.OrgID); err != nil {
			return err
		}
		w.principals[pkey{kind, id}] = p
		out = clonePrincipal(p)
		w.changed(principalChanges(kind, id)...)
		return nil
	})
	return out, err
}

// DeletePrincipal implements store.Store.
func (s *Store) DeletePrincipal(_ context.Context, kind scope.Kind, id string) error {
	return s.write(func(w *state) error {
		if _, ok := w.principals[pkey{kind, id}]; !ok {
			return notFound("%v %q", kind, id)
		}
		for _, k := range w.keys {
			if (kind == scope.KindTeam && k.TeamID == id) || (kind == scope.KindUser && k.UserID == id) ||
				(kind == scope.KindOrg && k.OrgID == id) {
				return fmt.Errorf("delete %v %q: still referenced by keys: %w", kind, id, store.ErrFailedPrecondition)
			}
		}
		for _, p := range w.principals {
			if kind == scope.KindOrg && p.OrgID == id {
				return fmt.Errorf("delete %v %q: still referenced by principals: %w", kind, id, store.ErrFailedPrecondition)
			}
		}
		delete(w.principals, pkey{kind, id})
		w.cascade(kind, id)
		w.changed(principalChanges(kind, id)...)
		return nil
	})
}

// ListPrincipals implements store.Store.
func (s *Store) ListPrincipals(_ context.Context, kind scope.Kind, p store.Page) ([]store.Principal, error) {
	var out []store.Principal
	err := s.read(func() {
		for _, pr := range s.principals {
			if (kind == 0 || pr.Kind == kind) &&
				(len(p.After) < 2 || cmp.Or(cmp.Compare(pr.Kind.String(), p.After[0]), cmp.Compare(pr.ID, p.After[1])) > 0) {
				out = append(out, clonePrincipal(pr))
			}
		}
	})
	slices.SortFunc(out, func(a, b store.Principal) int {
		return cmp.Or(cmp.Compare(a.Kind.String(), b.Kind.String()), cmp.Compare(a.ID, b.ID))
	})
	return truncate(out, p.Limit), err
}

func ownerChanges(sc scope.Scope) []store.Change {
	if sc.Kind == scope.KindKey || sc.Kind == scope.KindKeyModel {
		return []store.Change{store.KeyChange(sc.ID)}
	}
	return []store.Change{store.ScopeChange(sc.Kind, sc.ID)}
}

func cloneBudget(b store.Budget) store.Budget {
	b.SoftThresholds = slices.Clone(b.SoftThresholds)
	if b.SoftThresholds == nil {
		b.SoftThresholds = []string{}
	}
	return b
}

func (w *state) setBudget(in store.BudgetInput) (store.Budget, error) {
	if kind, id, ok := store.Owner(in.Scope); ok {
		w.ensureImplicit(kind, id)
		if kind == scope.KindKey {
			if _, ok := w.keys[id]; !ok {
				return store.Budget{}, fmt.Errorf("the budget's key does not exist: %w", store.ErrFailedPrecondition)
			}
		} else if err := w.checkRef(kind, id); err != nil {
			return store.Budget{}, err
		}
	}
	now := w.s.now()
	cal := in.Calendar && !in.Duration.IsLifetime()
	anchor := func() time.Time {
		if cal || in.Duration.IsLifetime() {
			return time.Unix(0, 0).UTC()
		}
		return now.Truncate(time.Second)
	}
	var b store.Budget
	sameSlot := func(o store.Budget) bool { return o.Scope == in.Scope && o.Duration == in.Duration }
	if in.ID != "" {
		old, ok := w.budgets[in.ID]
		if !ok {
			return store.Budget{}, notFound("budget %q", in.ID)
		}
		if old.Scope != in.Scope {
			return store.Budget{}, fmt.Errorf("budget %q is on %v; a budget's scope cannot change: %w", in.ID, old.Scope, store.ErrInvalid)
		}
		b = old
	} else {
		for _, o := range w.budgets {
			if sameSlot(o) {
				b = o
				break
			}
		}
	}
	for id, o := range w.budgets {
		if id != b.ID && sameSlot(o) {
			return store.Budget{}, fmt.Errorf("a budget with this scope and duration already exists: %w", store.ErrAlreadyExists)
		}
	}
	if b.ID == "" {
		id, err := uuid.NewV7()
		if err != nil {
			return store.Budget{}, err
		}
		b = store.Budget{ID: id.String(), Scope: in.Scope, CreatedAt: now, Anchor: anchor(), Duration: in.Duration, Calendar: cal}
	} else if b.Duration != in.Duration || b.Calendar != cal {
		b.Anchor = anchor()
	}
	b.Limit, b.Duration, b.Calendar, b.SoftThresholds, b.UpdatedAt = in.Limit, in.Duration, cal, slices.Clone(in.SoftThresholds), now
	b = cloneBudget(b)
	w.budgets[b.ID] = b
	w.changed(ownerChanges(b.Scope)...)
	return cloneBudget(b), nil
}

// SetBudget implements store.Store.
func (s *Store) SetBudget(_ context.Context, in store.BudgetInput) (store.Budget, error) {
	var out store.Budget
	err := s.write(func(w *state) error {
		var err error
		out, err = w.setBudget(in)
		return err
	})
	return out, err
}

// DeleteBudget implements store.Store.
func (s *Store) DeleteBudget(_ context.Context, id string) error {
	return s.write(func(w *state) error {
		b, ok := w.budgets[id]
		if !ok {
			return notFound("budget %q", id)
		}
		delete(w.budgets, id)
		w.changed(ownerChanges(b.Scope)...)
		return nil
	})
}

func (s *Store) sortedBudgets(match func(store.Budget) bool) ([]store.Budget, error) {
	var out []store.Budget
	err := s.read(func() {
		for _, b := range s.budgets {
			if match(b) {
				out = append(out, cloneBudget(b))
			}
		}
	})
	slices.SortFunc(out, func(a, b store.Budget) int { return cmp.Compare(a.ID, b.ID) })
	return out, err
}

// ListBudgets implements store.Store.
func (s *Store) ListBudgets(_ context.Context, f store.BudgetFilter, p store.Page) ([]store.Budget, error) {
	out, err := s.sortedBudgets(func(b store.Budget) bool {
		return (f.Kind == 0 || (b.Scope.Kind == f.Kind && b.Scope.ID == f.ID && (f.ModelGroup == "" || b.Scope.ModelGroup == f.ModelGroup))) &&
			(len(p.After) == 0 || b.ID > p.After[0])
	})
	return truncate(out, p.Limit), err
}

// BudgetsFor implements store.Store.
func (s *Store) BudgetsFor(_ context.Context, scopes []scope.Scope) ([]store.Budget, error) {
	all, err := s.sortedBudgets(func(store.Budget) bool { return true })
	var out []store.Budget
	seen := map[scope.Scope]bool{}
	for _, sc := range scopes {
		if seen[sc] {
			continue
		}
		seen[sc] = true
		for _, b := range all {
			if b.Scope == sc {
				out = append(out, b)
			}
		}
	}
	return out, err
}

// BudgetsOwnedBy implements store.Store.
func (s *Store) BudgetsOwnedBy(_ context.Context, owners []scope.Scope) ([]store.Budget, error) {
	all, err := s.sortedBudgets(func(store.Budget) bool { return true })
	slices.SortStableFunc(all, func(a, b store.Budget) int { return cmp.Compare(a.Scope.ModelGroup, b.Scope.ModelGroup) })
	var out []store.Budget
	type pair struct {
		k  scope.Kind
		id string
	}
	seen := map[pair]bool{}
	for _, o := range owners {
		if seen[pair{o.Kind, o.ID}] {
			continue
		}
		seen[pair{o.Kind, o.ID}] = true
		for _, b := range all {
			if b.Scope.Kind == o.Kind && b.Scope.ID == o.ID {
				out = append(out, b)
			}
		}
	}
	return out, err
}
