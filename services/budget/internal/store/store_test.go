package store

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/spendledger/spendledger/ledger/scope"
	"github.com/spendledger/spendledger/ledger/window"
)

func TestChangePayloadRoundTrips(t *testing.T) {
	for _, c := range []Change{
		KeyChange("0190-abc"),
		KeyChange("id:with:colons"),
		ScopeChange(scope.KindTeam, "t1"),
		ScopeChange(scope.KindEndUserModel, "cust:9 x"),
		{All: true},
	} {
		got, err := ParseChange(c.Payload())
		if err != nil || got != c {
			t.Errorf("%+v -> %q -> %+v, %v", c, c.Payload(), got, err)
		}
	}
	for _, bad := range []string{"", "key:", "scope:team:", "scope:squad:x", "scope:team", "hello"} {
		if _, err := ParseChange(bad); err == nil {
			t.Errorf("ParseChange(%q): want an error", bad)
		}
	}
}

func TestOwnerChangesCoverCascades(t *testing.T) {
	if got := principalChanges(scope.KindEndUser, "c"); len(got) != 2 || got[1] != ScopeChange(scope.KindEndUserModel, "c") {
		t.Errorf("end user changes %v; want its end_user_model budgets covered", got)
	}
	if got := ownerChanges(scope.Scope{Kind: scope.KindKeyModel, ID: "k", ModelGroup: "m"}); got[0] != KeyChange("k") {
		t.Errorf("key_model change %v; want the key's", got)
	}
}

func TestOwner(t *testing.T) {
	for _, tc := range []struct {
		s    scope.Scope
		kind scope.Kind
		ok   bool
	}{
		{scope.Scope{Kind: scope.KindKeyModel, ID: "k", ModelGroup: "m"}, scope.KindKey, true},
		{scope.Scope{Kind: scope.KindEndUserModel, ID: "c", ModelGroup: "m"}, scope.KindEndUser, true},
		{scope.Scope{Kind: scope.KindTag, ID: "x"}, scope.KindTag, true},
		{scope.Scope{Kind: scope.KindProvider, ID: "openai"}, 0, false},
		{scope.Scope{Kind: scope.KindDeployment, ID: "d"}, 0, false},
	} {
		k, id, ok := Owner(tc.s)
		if k != tc.kind || ok != tc.ok || (ok && id != tc.s.ID) {
			t.Errorf("Owner(%v) = %v %q %v", tc.s, k, id, ok)
		}
	}
}

func TestBudgetWindowIsValid(t *testing.T) {
	anchor := time.Date(2026, 1, 31, 10, 0, 0, 0, time.UTC)
	for _, b := range []Budget{
		{Duration: window.Lifetime, Anchor: time.Unix(0, 0)},
		{Duration: window.MustParse("1mo"), Anchor: anchor},
		{Duration: window.MustParse("7d"), Calendar: true, Anchor: time.Unix(0, 0)},
	} {
		if err := b.Window().Validate(); err != nil {
			t.Errorf("%v: %v", b.Duration, err)
		}
	}
}

func TestClassify(t *testing.T) {
	pg := func(code, constraint string) error {
		return &pgconn.PgError{Code: code, ConstraintName: constraint, Message: "boom"}
	}
	for _, tc := range []struct {
		err  error
		want error
	}{
		{pgx.ErrNoRows, ErrNotFound},
		{pg("23505", "virtual_keys_alias_key"), ErrAlreadyExists},
		{pg("23503", "virtual_keys_team_fkey"), ErrFailedPrecondition},
		{pg("23514", "budgets_check"), ErrInvalid},
		{pg("57P01", ""), ErrUnavailable},
		{pg("08006", ""), ErrUnavailable},
		{&pgconn.ConnectError{}, ErrUnavailable},
		{io.ErrUnexpectedEOF, ErrUnavailable},
		{context.DeadlineExceeded, context.DeadlineExceeded},
	} {
		if got := classify("op", tc.err); !errors.Is(got, tc.want) {
			t.Errorf("classify(%v) = %v; want %v", tc.err, got, tc.want)
		}
	}
	if got := classify("op", pg("23505", "virtual_keys_alias_key")).Error(); got != "op: key_alias is taken: already exists" {
		t.Errorf("message %q names the index, not the field", got)
	}
	if got := classify("op", errors.New("syntax")); isSentinel(got) {
		t.Errorf("a query bug was classified: %v", got)
	}
}

func TestForeignKeyMessageNamesTheMissingID(t *testing.T) {
	err := classify("create key", &pgconn.PgError{Code: "23503", ConstraintName: "virtual_keys_team_fkey",
		Detail: `Key (team_ref_kind, team_ref)=(team, t-typo) is not present in table "principals".`})
	if want := `create key: team does not exist ("t-typo"): failed precondition`; err.Error() != want {
		t.Fatalf("%q; want %q", err, want)
	}
	err = classify("set budget", &pgconn.PgError{Code: "23503", ConstraintName: "budgets_owner_key_fkey",
		Detail: `Key (owner_key)=(k9) is not present in table "virtual_keys".`})
	if !strings.Contains(err.Error(), `("k9")`) {
		t.Fatalf("%q does not name the key", err)
	}
}
