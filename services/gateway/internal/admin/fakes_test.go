package admin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	"github.com/spendledger/spendledger/gen/spendledger/budget/v1/budgetv1connect"
	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	ledgerv1 "github.com/spendledger/spendledger/gen/spendledger/ledger/v1"
	"github.com/spendledger/spendledger/gen/spendledger/ledger/v1/ledgerv1connect"
	"github.com/spendledger/spendledger/ledger/money"
)

const (
	masterKey = "sk-master-key-for-tests"
	userKey   = "sk-user-key-for-tests-000"
	otherKey  = "sk-other-key-for-tests-00"
)

var fixedNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func hashOf(k string) string {
	s := sha256.Sum256([]byte(k))
	return hex.EncodeToString(s[:])
}

// fakeBudget is an in-memory budget service with the semantics the admin API
// relies on (SetBudget replaces by id, or by scope and duration), recording
// every request.
type fakeBudget struct {
	budgetv1connect.BudgetServiceClient // nil: unimplemented methods panic

	mu         sync.Mutex
	keys       map[string]*budgetv1.Key // by id
	hashes     map[string]string        // hash -> id
	principals map[string]*budgetv1.Principal
	budgets    []*budgetv1.Budget
	spent      map[string]int64 // budget id -> spent nanos (counter)
	n          int
	calls      []string
	reqs       map[string][]proto.Message
	fail       map[string]error // method -> error to return
}

func newFakeBudget() *fakeBudget {
	f := &fakeBudget{keys: map[string]*budgetv1.Key{}, hashes: map[string]string{}, principals: map[string]*budgetv1.Principal{},
		spent: map[string]int64{}, reqs: map[string][]proto.Message{}, fail: map[string]error{}}
	f.addKey(&budgetv1.Key{KeyId: "key-user", KeyAlias: "mine", UserId: "u-1", TeamId: "t-1", Models: []string{"gpt-4o"}}, userKey)
	f.addKey(&budgetv1.Key{KeyId: "key-other", UserId: "u-2"}, otherKey)
	return f
}

func (f *fakeBudget) addKey(k *budgetv1.Key, clear string) {
	k.KeyAliasHint = clear[:3] + "..." + clear[len(clear)-4:]
	k.CreatedAt = timestamppb.New(fixedNow)
	f.keys[k.GetKeyId()] = k
	f.hashes[hashOf(clear)] = k.GetKeyId()
}

func (f *fakeBudget) record(method string, m proto.Message) error {
	f.calls = append(f.calls, method)
	f.reqs[method] = append(f.reqs[method], proto.Clone(m))
	return f.fail[method]
}

func (f *fakeBudget) last(method string) proto.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.reqs[method]
	if len(r) == 0 {
		return nil
	}
	return r[len(r)-1]
}

func (f *fakeBudget) count(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reqs[method])
}

func (f *fakeBudget) id(prefix string) string {
	f.n++
	return fmt.Sprintf("%s-%d", prefix, f.n)
}

func resp[T any](m *T) *connect.Response[T] { return connect.NewResponse(m) }

func (f *fakeBudget) Authenticate(_ context.Context, r *connect.Request[budgetv1.AuthenticateRequest]) (*connect.Response[budgetv1.AuthenticateResponse], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("Authenticate", r.Msg); err != nil {
		return nil, err
	}
	id, ok := f.hashes[r.Msg.GetKeyHash()]
	if !ok {
		return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("unknown key"))
	}
	k := f.keys[id]
	if k.GetBlocked() {
		return nil, connect.NewError(connect.CodePermissionDenied, fmt.Errorf("key %s: blocked", id))
	}
	return resp(&budgetv1.AuthenticateResponse{Key: k}), nil
}

func (f *fakeBudget) CreateKey(_ context.Context, r *connect.Request[budgetv1.CreateKeyRequest]) (*connect.Response[budgetv1.CreateKeyResponse], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("CreateKey", r.Msg); err != nil {
		return nil, err
	}
	k := proto.Clone(r.Msg.GetKey()).(*budgetv1.Key)
	if k.KeyId == "" {
		k.KeyId = f.id("key")
	}
	clear := r.Msg.GetClearKey()
	if clear == "" {
		clear = "sk-generated-" + k.KeyId
	}
	f.addKey(k, clear)
	for _, s := range r.Msg.GetBudgets() {
		s = proto.Clone(s).(*budgetv1.BudgetSpec)
		if s.Scope == nil {
			s.Scope = scopeOf(kindKey, k.KeyId, "")
		}
		s.Scope.Id = k.KeyId
		f.setBudget(s)
	}
	return resp(&budgetv1.CreateKeyResponse{Key: k, ClearKey: clear}), nil
}

func (f *fakeBudget) chain(k *budgetv1.Key) []*budgetv1.BudgetStatus {
	var out []*budgetv1.BudgetStatus
	for _, b := range f.budgets {
		sc := b.GetSpec().GetScope()
		match := false
		switch sc.GetKind() {
		case kindKey, kindKeyModel:
			match = sc.GetId() == k.GetKeyId()
		case eventsv1.ScopeKind_SCOPE_KIND_TEAM:
			match = sc.GetId() == k.GetTeamId()
		case eventsv1.ScopeKind_SCOPE_KIND_USER:
			match = sc.GetId() == k.GetUserId()
		}
		if match {
			out = append(out, f.status(b))
		}
	}
	return out
}

func (f *fakeBudget) status(b *budgetv1.Budget) *budgetv1.BudgetStatus {
	spent := f.spent[b.GetSpec().GetBudgetId()]
	st := &budgetv1.BudgetStatus{BudgetId: b.GetSpec().GetBudgetId(), Scope: b.GetSpec().GetScope(), LimitNanos: b.GetLimitNanos(),
		SpentNanos: spent, RemainingNanos: max(b.GetLimitNanos()-spent, 0)}
	if start, end, ok, _ := currentWindow(b, fixedNow); ok {
		st.WindowStart, st.ResetsAt = timestamppb.New(start), timestamppb.New(end)
	}
	return st
}

func (f *fakeBudget) GetKey(_ context.Context, r *connect.Request[budgetv1.GetKeyRequest]) (*connect.Response[budgetv1.GetKeyResponse], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("GetKey", r.Msg); err != nil {
		return nil, err
	}
	id := r.Msg.GetKeyId()
	if h := r.Msg.GetKeyHash(); h != "" {
		id = f.hashes[h]
	}
	k, ok := f.keys[id]
	if !ok {
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("key %q not found", r.Msg.GetKeyId()))
	}
	return resp(&budgetv1.GetKeyResponse{Key: k, Budgets: f.chain(k)}), nil
}

func (f *fakeBudget) UpdateKey(_ context.Context, r *connect.Request[budgetv1.UpdateKeyRequest]) (*connect.Response[budgetv1.UpdateKeyResponse], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("UpdateKey", r.Msg); err != nil {
		return nil, err
	}
	k, ok := f.keys[r.Msg.GetKey().GetKeyId()]
	if !ok {
		return nil, connect.NewError(connect.CodeNotFound, errors.New("key not found"))
	}
	in := r.Msg.GetKey()
	for _, fld := range r.Msg.GetUpdateFields() {
		switch fld {
		case "key_alias":
			k.KeyAlias = in.KeyAlias
		case "team_id":
			k.TeamId = in.TeamId
		case "user_id":
			k.UserId = in.UserId
		case "org_id":
			k.OrgId = in.OrgId
		case "models":
			k.Models = in.Models
		case "tags":
			k.Tags = in.Tags
		case "metadata":
			k.Metadata = in.Metadata
		case "blocked":
			k.Blocked = in.Blocked
		case "expires_at":
			k.ExpiresAt = in.ExpiresAt
		default:
			return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("update_fields: unknown %q", fld))
		}
	}
	return resp(&budgetv1.UpdateKeyResponse{Key: k}), nil
}

func (f *fakeBudget) DeleteKey(_ context.Context, r *connect.Request[budgetv1.DeleteKeyRequest]) (*connect.Response[budgetv1.DeleteKeyResponse], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("DeleteKey", r.Msg); err != nil {
		return nil, err
	}
	if _, ok := f.keys[r.Msg.GetKeyId()]; !ok {
		return nil, connect.NewError(connect.CodeNotFound, errors.New("key not found"))
	}
	delete(f.keys, r.Msg.GetKeyId())
	return resp(&budgetv1.DeleteKeyResponse{}), nil
}

func (f *fakeBudget) ListKeys(_ context.Context, r *connect.Request[budgetv1.ListKeysRequest]) (*connect.Response[budgetv1.ListKeysResponse], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("ListKeys", r.Msg); err != nil {
		return nil, err
	}
	out := &budgetv1.ListKeysResponse{}
	for _, k := range f.keys {
		if (r.Msg.TeamId == "" || k.TeamId == r.Msg.TeamId) && (r.Msg.UserId == "" || k.UserId == r.Msg.UserId) {
			out.Keys = append(out.Keys, k)
		}
	}
	slices.SortFunc(out.Keys, func(a, b *budgetv1.Key) int { return strings.Compare(a.KeyId, b.KeyId) })
	return resp(out), nil
}

func pkey(kind budgetv1.PrincipalKind, id string) string { return kind.String() + "/" + id }

var principalScope = map[budgetv1.PrincipalKind]eventsv1.ScopeKind{
	budgetv1.PrincipalKind_PRINCIPAL_KIND_TEAM:     eventsv1.ScopeKind_SCOPE_KIND_TEAM,
	budgetv1.PrincipalKind_PRINCIPAL_KIND_USER:     eventsv1.ScopeKind_SCOPE_KIND_USER,
	budgetv1.PrincipalKind_PRINCIPAL_KIND_ORG:      eventsv1.ScopeKind_SCOPE_KIND_ORG,
	budgetv1.PrincipalKind_PRINCIPAL_KIND_END_USER: eventsv1.ScopeKind_SCOPE_KIND_END_USER,
}

func (f *fakeBudget) CreatePrincipal(_ context.Context, r *connect.Request[budgetv1.CreatePrincipalRequest]) (*connect.Response[budgetv1.CreatePrincipalResponse], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("CreatePrincipal", r.Msg); err != nil {
		return nil, err
	}
	p := proto.Clone(r.Msg.GetPrincipal()).(*budgetv1.Principal)
	if _, ok := f.principals[pkey(p.Kind, p.Id)]; ok {
		return nil, connect.NewError(connect.CodeAlreadyExists, fmt.Errorf("%v %q already exists", p.Kind, p.Id))
	}
	p.CreatedAt = timestamppb.New(fixedNow)
	f.principals[pkey(p.Kind, p.Id)] = p
	for _, s := range r.Msg.GetBudgets() {
		s = proto.Clone(s).(*budgetv1.BudgetSpec)
		if s.Scope == nil {
			s.Scope = scopeOf(principalScope[p.Kind], p.Id, "")
		}
		s.Scope.Id = p.Id
		f.setBudget(s)
	}
	return resp(&budgetv1.CreatePrincipalResponse{Principal: p}), nil
}

func (f *fakeBudget) GetPrincipal(_ context.Context, r *connect.Request[budgetv1.GetPrincipalRequest]) (*connect.Response[budgetv1.GetPrincipalResponse], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("GetPrincipal", r.Msg); err != nil {
		return nil, err
	}
	p, ok := f.principals[pkey(r.Msg.Kind, r.Msg.Id)]
	if !ok {
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("%v %q not found", r.Msg.Kind, r.Msg.Id))
	}
	out := &budgetv1.GetPrincipalResponse{Principal: p}
	for _, b := range f.budgets {
		sc := b.GetSpec().GetScope()
		if sc.GetId() == p.Id && (sc.GetKind() == principalScope[p.Kind] ||
			(p.Kind == budgetv1.PrincipalKind_PRINCIPAL_KIND_END_USER && sc.GetKind() == eventsv1.ScopeKind_SCOPE_KIND_END_USER_MODEL)) {
			out.Budgets = append(out.Budgets, f.status(b))
		}
	}
	return resp(out), nil
}

func (f *fakeBudget) UpdatePrincipal(_ context.Context, r *connect.Request[budgetv1.UpdatePrincipalRequest]) (*connect.Response[budgetv1.UpdatePrincipalResponse], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("UpdatePrincipal", r.Msg); err != nil {
		return nil, err
	}
	in := r.Msg.GetPrincipal()
	p, ok := f.principals[pkey(in.Kind, in.Id)]
	if !ok {
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("%v %q not found", in.Kind, in.Id))
	}
	for _, fld := range r.Msg.GetUpdateFields() {
		switch fld {
		case "alias":
			p.Alias = in.Alias
		case "org_id":
			p.OrgId = in.OrgId
		case "metadata":
			p.Metadata = in.Metadata
		case "blocked":
			p.Blocked = in.Blocked
		default:
			return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("update_fields: unknown %q", fld))
		}
	}
	return resp(&budgetv1.UpdatePrincipalResponse{Principal: p}), nil
}

// DeletePrincipal refuses a team or user its keys still reference, as the
// budget service's foreign keys do.
func (f *fakeBudget) DeletePrincipal(_ context.Context, r *connect.Request[budgetv1.DeletePrincipalRequest]) (*connect.Response[budgetv1.DeletePrincipalResponse], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("DeletePrincipal", r.Msg); err != nil {
		return nil, err
	}
	k := pkey(r.Msg.Kind, r.Msg.Id)
	if _, ok := f.principals[k]; !ok {
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("%v %q not found", r.Msg.Kind, r.Msg.Id))
	}
	for _, key := range f.keys {
		if (r.Msg.Kind == budgetv1.PrincipalKind_PRINCIPAL_KIND_TEAM && key.TeamId == r.Msg.Id) ||
			(r.Msg.Kind == budgetv1.PrincipalKind_PRINCIPAL_KIND_USER && key.UserId == r.Msg.Id) {
			return nil, connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("%v %q: still referenced by keys", r.Msg.Kind, r.Msg.Id))
		}
	}
	delete(f.principals, k)
	return resp(&budgetv1.DeletePrincipalResponse{}), nil
}

// setBudget stores s: by budget id, or replacing the budget with the same
// scope and duration; caller holds mu.
func (f *fakeBudget) setBudget(s *budgetv1.BudgetSpec) (*budgetv1.Budget, error) {
	n, err := money.ParseLimit(s.GetLimitUsd())
	if err != nil {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("spec.limit_usd: %w", err))
	}
	for _, b := range f.budgets {
		old := b.GetSpec()
		if (s.BudgetId != "" && old.BudgetId == s.BudgetId) ||
			(s.BudgetId == "" && proto.Equal(old.Scope, s.Scope) && sameDuration(old.Duration, s.Duration)) {
			if !proto.Equal(old.Scope, s.Scope) {
				return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("scope cannot change"))
			}
			s = proto.Clone(s).(*budgetv1.BudgetSpec)
			s.BudgetId = old.BudgetId
			b.Spec, b.LimitNanos, b.UpdatedAt = s, int64(n), timestamppb.New(fixedNow)
			return b, nil
		}
	}
	if s.BudgetId != "" {
		return nil, connect.NewError(connect.CodeNotFound, errors.New("budget not found"))
	}
	s = proto.Clone(s).(*budgetv1.BudgetSpec)
	s.BudgetId = f.id("budget")
	b := &budgetv1.Budget{Spec: s, LimitNanos: int64(n), Anchor: timestamppb.New(fixedNow.Add(-time.Hour)),
		CreatedAt: timestamppb.New(fixedNow), UpdatedAt: timestamppb.New(fixedNow)}
	f.budgets = append(f.budgets, b)
	return b, nil
}

func (f *fakeBudget) SetBudget(_ context.Context, r *connect.Request[budgetv1.SetBudgetRequest]) (*connect.Response[budgetv1.SetBudgetResponse], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("SetBudget", r.Msg); err != nil {
		return nil, err
	}
	b, err := f.setBudget(r.Msg.GetSpec())
	if err != nil {
		return nil, err
	}
	return resp(&budgetv1.SetBudgetResponse{Budget: b}), nil
}

func (f *fakeBudget) DeleteBudget(_ context.Context, r *connect.Request[budgetv1.DeleteBudgetRequest]) (*connect.Response[budgetv1.DeleteBudgetResponse], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("DeleteBudget", r.Msg); err != nil {
		return nil, err
	}
	for i, b := range f.budgets {
		if b.GetSpec().GetBudgetId() == r.Msg.GetBudgetId() {
			f.budgets = slices.Delete(f.budgets, i, i+1)
			return resp(&budgetv1.DeleteBudgetResponse{}), nil
		}
	}
	return nil, connect.NewError(connect.CodeNotFound, errors.New("budget not found"))
}

func (f *fakeBudget) ListBudgets(_ context.Context, r *connect.Request[budgetv1.ListBudgetsRequest]) (*connect.Response[budgetv1.ListBudgetsResponse], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("ListBudgets", r.Msg); err != nil {
		return nil, err
	}
	want := r.Msg.GetScope()
	out := &budgetv1.ListBudgetsResponse{}
	for _, b := range f.budgets {
		sc := b.GetSpec().GetScope()
		if sc.GetKind() == want.GetKind() && sc.GetId() == want.GetId() && (want.GetModelGroup() == "" || want.GetModelGroup() == sc.GetModelGroup()) {
			out.Budgets = append(out.Budgets, b)
		}
	}
	return resp(out), nil
}

func (f *fakeBudget) budgetsOn(kind eventsv1.ScopeKind, id string) []*budgetv1.Budget {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*budgetv1.Budget
	for _, b := range f.budgets {
		if b.GetSpec().GetScope().GetKind() == kind && b.GetSpec().GetScope().GetId() == id {
			out = append(out, b)
		}
	}
	return out
}

// fakeLedger answers spend queries from fixed figures and records ranges.
type fakeLedger struct {
	ledgerv1connect.LedgerServiceClient

	mu      sync.Mutex
	spend   map[string]int64 // "kind/id" -> nanos
	groups  map[string][]*ledgerv1.ModelGroupSpend
	entries []*ledgerv1.Entry
	ranges  []*ledgerv1.TimeRange
	pages   []*ledgerv1.ListEntriesRequest
	err     error
}

func newFakeLedger() *fakeLedger {
	return &fakeLedger{spend: map[string]int64{}, groups: map[string][]*ledgerv1.ModelGroupSpend{}}
}

func skey(s *eventsv1.Scope) string { return s.GetKind().String() + "/" + s.GetId() }

func (l *fakeLedger) GetSpend(_ context.Context, r *connect.Request[ledgerv1.GetSpendRequest]) (*connect.Response[ledgerv1.GetSpendResponse], error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return nil, l.err
	}
	l.ranges = append(l.ranges, r.Msg.GetRange())
	return resp(&ledgerv1.GetSpendResponse{SpentNanos: l.spend[skey(r.Msg.GetScope())]}), nil
}

func (l *fakeLedger) SpendByModelGroup(_ context.Context, r *connect.Request[ledgerv1.SpendByModelGroupRequest]) (*connect.Response[ledgerv1.SpendByModelGroupResponse], error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return nil, l.err
	}
	return resp(&ledgerv1.SpendByModelGroupResponse{Rows: l.groups[skey(r.Msg.GetScope())]}), nil
}

func (l *fakeLedger) ListEntries(_ context.Context, r *connect.Request[ledgerv1.ListEntriesRequest]) (*connect.Response[ledgerv1.ListEntriesResponse], error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return nil, l.err
	}
	l.pages = append(l.pages, r.Msg)
	var mine []*ledgerv1.Entry
	for _, e := range l.entries {
		if e.GetCost().GetUsage().GetIdentity().GetKeyId() == r.Msg.GetKeyId() {
			mine = append(mine, e)
		}
	}
	start := 0
	if r.Msg.PageToken != "" {
		fmt.Sscan(r.Msg.PageToken, &start)
	}
	end := min(start+int(r.Msg.PageSize), len(mine))
	out := &ledgerv1.ListEntriesResponse{Entries: mine[start:end]}
	if end < len(mine) {
		out.NextPageToken = fmt.Sprint(end)
	}
	return resp(out), nil
}

// rig is an admin Handler over the fakes, served over HTTP.
type rig struct {
	t      *testing.T
	url    string
	budget *fakeBudget
	ledger *fakeLedger
	h      *Handler
}

func newRig(t *testing.T, mod func(*Config)) *rig {
	t.Helper()
	r := &rig{t: t, budget: newFakeBudget(), ledger: newFakeLedger()}
	c := Config{
		Budget: r.budget, Ledger: r.ledger, MasterKey: masterKey,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return fixedNow },
	}
	if mod != nil {
		mod(&c)
	}
	r.h = New(c)
	mux := http.NewServeMux()
	r.h.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	r.url = srv.URL
	return r
}

// do sends a request with key (Bearer) and returns the status and body.
func (r *rig) do(method, path, key, body string) (int, string) {
	r.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, r.url+path, rd)
	if err != nil {
		r.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		r.t.Fatal(err)
	}
	return res.StatusCode, string(b)
}

// ok is do that must answer 200.
func (r *rig) ok(method, path, key, body string) string {
	r.t.Helper()
	st, b := r.do(method, path, key, body)
	if st != http.StatusOK {
		r.t.Fatalf("%s %s: %d %s", method, path, st, b)
	}
	return b
}
