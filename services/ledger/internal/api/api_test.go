package api

import (
	"context"
	"errors"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	ledgerv1 "github.com/spendledger/spendledger/gen/spendledger/ledger/v1"
)

func code(err error) connect.Code {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce.Code()
	}
	return connect.CodeUnknown
}

// Invalid requests are refused before any query runs: the Server has no
// database here, so reaching one would panic.
func TestInvalidRequestsAreInvalidArgument(t *testing.T) {
	s := New(nil)
	ctx := context.Background()
	key := &eventsv1.Scope{Kind: eventsv1.ScopeKind_SCOPE_KIND_KEY, Id: "k"}
	now := time.Now()
	backwards := &ledgerv1.TimeRange{Start: timestamppb.New(now), End: timestamppb.New(now.Add(-time.Hour))}

	cases := map[string]func() error{
		"spend without scope": func() error {
			_, err := s.GetSpend(ctx, connect.NewRequest(&ledgerv1.GetSpendRequest{}))
			return err
		},
		"spend with end before start": func() error {
			_, err := s.GetSpend(ctx, connect.NewRequest(&ledgerv1.GetSpendRequest{Scope: key, Range: backwards}))
			return err
		},
		"by model group with per-model scope lacking model": func() error {
			_, err := s.SpendByModelGroup(ctx, connect.NewRequest(&ledgerv1.SpendByModelGroupRequest{
				Scope: &eventsv1.Scope{Kind: eventsv1.ScopeKind_SCOPE_KIND_KEY_MODEL, Id: "k"}}))
			return err
		},
		"by day with invalid timestamp": func() error {
			_, err := s.SpendByDay(ctx, connect.NewRequest(&ledgerv1.SpendByDayRequest{Scope: key,
				Range: &ledgerv1.TimeRange{Start: &timestamppb.Timestamp{Nanos: -1}}}))
			return err
		},
		"entries without key": func() error {
			_, err := s.ListEntries(ctx, connect.NewRequest(&ledgerv1.ListEntriesRequest{}))
			return err
		},
		"entries with negative page size": func() error {
			_, err := s.ListEntries(ctx, connect.NewRequest(&ledgerv1.ListEntriesRequest{KeyId: "k", PageSize: -1}))
			return err
		},
	}
	for name, call := range cases {
		if c := code(call()); c != connect.CodeInvalidArgument {
			t.Errorf("%s: code %v; want invalid_argument", name, c)
		}
	}
}
